#!/usr/bin/env bash
# The hostile-input scripts against a live server: scripts/hostile_ingest.py (the
# ingestion matrix) and scripts/hostile_surfaces.py (scopes, formulas in the CSV
# exports, and the surfaces added to it since). Any failing case or 5xx fails the run.
#
# It migrates the database DATABASE_URL names (or, unset, a throwaway SQLite file),
# creates an API key of each kind (every scope; read, finance:read, admin and
# events:write alone) and a superuser (the admin's CSVs), starts gunicorn
# (scripts/_live_server.sh, as scripts/schema_check.sh does) and the folder, runs
# both scripts, stops them and says what failed.
# The scripts write to that database: give it one of its own. Exit status: 0 clean,
# 1 on any failure.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_hostile bash scripts/hostile_check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh
venv_setup
# shellcheck source=scripts/_live_server.sh
. scripts/_live_server.sh

py=.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/hostile-check.XXXXXX")
server_pid=
folder_pid=
cleanup() {
    for pid in $server_pid $folder_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf -- "$work"
}
trap cleanup EXIT

# As scripts/schema_check.sh: the server as in production, nothing leaving the
# machine, and the rate limits off (the matrix sends bursts).
live_server_env "$work"
# The ingestion matrix tells a case's events apart by a group each (`gid`, up to 1,000
# a customer): above the default limit of distinct values (500). The groups surface
# reads the same variable and sends past it.
export BILLING_GROUP_VALUES_LIMIT=${BILLING_GROUP_VALUES_LIMIT:-2000}
gunicorn_workers=2
if [[ -z ${DATABASE_URL:-} ]]; then
    echo "== DATABASE_URL unset: a throwaway SQLite database under $work"
    gunicorn_workers=1
fi
echo "DATABASE_URL=${DATABASE_URL:-(SQLite, throwaway)}"

echo "== migrating, creating an API key of each kind"
"$py" manage.py migrate --noinput >"$work/migrate.log" || {
    cat "$work/migrate.log"
    exit 1
}
key() { "$py" manage.py create_api_key --name "hostile $1" ${2:+--scopes $2} 2>/dev/null; }
all_key=$(key all)
read_key=$(key read read)
finance_key=$(key finance finance:read)
admin_key=$(key admin admin)
events_key=$(key events events:write)
staff_password="hostile-$RANDOM$RANDOM$RANDOM"
DJANGO_SUPERUSER_PASSWORD=$staff_password "$py" manage.py createsuperuser --noinput \
    --username hostile --email hostile@example.com >/dev/null
keys_file="$work/keys.json"
(umask 077 && printf '{"all": "%s", "read": "%s", "finance:read": "%s", "admin": "%s", "events:write": "%s", "staff": {"username": "hostile", "password": "%s"}}\n' \
    "$all_key" "$read_key" "$finance_key" "$admin_key" "$events_key" "$staff_password" >"$keys_file")

server_log="$work/server.log"
echo "== starting the folder"
"$py" manage.py fold_usage --every 1 >"$work/folder.log" 2>&1 &
folder_pid=$!
live_server_start "$gunicorn_workers" "$server_log"

failed=()
echo "== scripts/hostile_ingest.py"
"$py" scripts/hostile_ingest.py --url "$base_url" --key "$all_key" </dev/null ||
    failed+=("hostile_ingest.py (exit $?)")
echo "== scripts/hostile_surfaces.py"
"$py" scripts/hostile_surfaces.py --url "$base_url" --keys-file "$keys_file" </dev/null ||
    failed+=("hostile_surfaces.py (exit $?)")

if grep -q "Traceback" "$server_log"; then
    echo "== server errors (tracebacks in the server log)"
    grep -B2 -A30 "Traceback" "$server_log" | head -n 200
fi
if ((${#failed[@]})); then
    printf 'error: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "== hostile checks passed"

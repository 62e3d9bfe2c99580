#!/usr/bin/env bash
# Schema-driven API test: runs schemathesis against a live server and fails on any 5xx
# or any response the OpenAPI schema does not describe (status, content type, body).
#
# It migrates the database DATABASE_URL names (or, unset, a throwaway SQLite file),
# loads the demo catalog, creates an API key, starts gunicorn on a free localhost port,
# runs every operation with bounded examples, stops the server and prints the figures.
# Requests write to that database (POST, PUT, PATCH are fuzzed too): give it one of its
# own, never one whose data matters. Exit status: 0 clean, 1 on any failure.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_schema bash scripts/schema_check.sh
#
# SCHEMA_CHECK_MAX_EXAMPLES (default 30), SCHEMA_CHECK_WORKERS (1), SCHEMA_CHECK_TIMEOUT
# (seconds for the whole schemathesis run, default 1200: about 300 on a quiet 2-core
# machine, three times that when other work shares it) and SCHEMA_CHECK_SEED bound it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh
venv_setup
# shellcheck source=scripts/_live_server.sh
. scripts/_live_server.sh

py=.venv/bin/python
max_examples=${SCHEMA_CHECK_MAX_EXAMPLES:-30}
# One: Hypothesis, which generates the requests, is not thread-safe, and a second
# worker makes rare draws fail inside it (a FlakyFailure, not an API failure).
workers=${SCHEMA_CHECK_WORKERS:-1}
run_timeout=${SCHEMA_CHECK_TIMEOUT:-1200}

work=$(mktemp -d "${TMPDIR:-/tmp}/schema-check.XXXXXX")
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT

# The server as it runs in production, nothing leaving the machine, no rate limits.
live_server_env "$work"
gunicorn_workers=2
if [[ -z ${DATABASE_URL:-} ]]; then
    echo "== DATABASE_URL unset: a throwaway SQLite database under $work"
    gunicorn_workers=1 # one writer at a time on SQLite
fi
echo "DATABASE_URL=${DATABASE_URL:-(SQLite, throwaway)}"

echo "== migrating, loading the demo catalog, creating an API key"
"$py" manage.py migrate --noinput >"$work/migrate.log" || {
    cat "$work/migrate.log"
    exit 1
}
"$py" manage.py load_demo
api_key=$("$py" manage.py create_api_key --name schema-check)
echo "== subscriptions, closed periods and invoices to test against"
"$py" scripts/schema_check_data.py "$work/schemathesis.toml"

access_log="$work/access.log"
server_log="$work/server.log"
live_server_start "$gunicorn_workers" "$server_log" \
    --access-logfile "$access_log" --access-logformat '%(s)s %(m)s %(U)s'

echo "== schemathesis: every operation, at most $max_examples examples each"
report="$work/report.json"
st_status=0
timeout --kill-after=30 "$run_timeout" .venv/bin/schemathesis \
    --config-file "$work/schemathesis.toml" run "$base_url/api/schema/" \
    --header "Authorization: Bearer $api_key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$max_examples" \
    --workers "$workers" \
    --request-timeout 60 \
    --max-response-time 30 \
    --generation-database none \
    ${SCHEMA_CHECK_SEED:+--seed "$SCHEMA_CHECK_SEED"} \
    --report json --report-json-path "$report" \
    --no-color </dev/null || st_status=$?

kill -TERM "$server_pid" 2>/dev/null || true
wait "$server_pid" 2>/dev/null || true
server_pid=

if ((st_status == 124 || st_status == 137)); then
    echo "error: schemathesis did not finish within ${run_timeout}s" >&2
fi
if grep -q "Traceback" "$server_log"; then
    echo "== server errors (tracebacks in the server log)"
    grep -B2 -A30 "Traceback" "$server_log" | head -n 200
fi

# The figures: operations and failures from schemathesis' report, requests and 5xx
# from the server's own access log.
"$py" - "$report" "$access_log" "$st_status" <<'EOF'
import json
import re
import sys
from collections import Counter
from pathlib import Path

report_path, access_log, st_status = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
# One line a request ("status method path"); split on newlines only, as a path may
# hold any other line separator.
statuses = [
    line.split(" ", 1)[0]
    for line in access_log.read_text(errors="replace").split("\n")
    if re.match(r"[0-9]{3} ", line)
]
server_errors = sum(1 for s in statuses if s.startswith("5"))
# A run stopped by the timeout may leave the report empty.
report_text = report_path.read_text() if report_path.exists() else ""
report = json.loads(report_text) if report_text.strip() else {}
operations = report.get("operations") or {}
failures = report.get("failures") or []
# Anything but a 5xx or a slow answer is a response the schema does not describe.
not_schema = {"ServerError", "ContentTypeServerError", "ResponseTimeExceeded"}
schema_failures = sum(f["count"] for f in failures if f.get("type") not in not_schema)
errors = sum(e["count"] for e in report.get("errors") or [])
print()
print("== schema check figures")
print(f"operations:      {operations.get('tested', '?')} tested of {operations.get('total', '?')}")
print(f"test cases:      {(report.get('test_cases') or {}).get('generated', '?')}")
print(f"requests:        {len(statuses)}")
print("  by status:     " + ", ".join(f"{s} x{n}" for s, n in sorted(Counter(statuses).items())))
print(f"5xx responses:   {server_errors}")
print(f"schema failures: {schema_failures}")
for failure in failures:
    print(f"  {failure.get('type')}: {failure.get('title')} x{failure['count']}")
    for operation in failure.get("operations", [])[:10]:
        print(f"    {operation}")
print(f"errors:          {errors}")
print(f"schemathesis:    exit {st_status}")
failed = st_status != 0 or server_errors or schema_failures or errors or not report
sys.exit(1 if failed else 0)
EOF

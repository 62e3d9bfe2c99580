#!/usr/bin/env bash
# The README's "run" command: installs requirements.lock into .venv if needed, migrates,
# sets up the admin roles, loads the demo catalog, makes sure a dev superuser and a dev
# API key exist, then runs the web server, three Celery workers (the urgent, default and
# bulk queues'), Celery beat, the folder (fold_usage --every 1, as in production)
# and the metrics server until Ctrl-C or SIGTERM, which stops them all. One that dies
# (a worker when Redis restarts, a crash) is started again after a short backoff, with
# a line here and in its log (scripts/_supervise.sh).
# The environment passes through: DATABASE_URL, CELERY_BROKER_URL, ... (see README.md).
# With LOG_FORMAT=json every line it and they write is a JSON object (docs/running.md,
# Logs): its own messages (scripts/_log.sh), the setup's, the services' logs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_log.sh
. scripts/_log.sh
log_format_check
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh
# shellcheck source=scripts/_fonts.sh
. scripts/_fonts.sh
# What pip and apt-get say, if they run, as the format asks.
log_output INFO setup venv_setup >&2
log_output INFO setup fonts_setup >&2

py=.venv/bin/python
# The translation catalogs (.mo) are build output: compiled from the .po files.
log_output INFO compilemessages "$py" scripts/compilemessages.py
port=${PORT:-8000}
base_url="http://127.0.0.1:$port"
# The links in e-mails (the portal's, a reminder's pay link) lead to this run's port.
export BILLING_PUBLIC_URL=${BILLING_PUBLIC_URL:-$base_url}
# The same directory settings.py uses for the SQLite file and the broker.
var_dir=${BILLING_VAR_DIR:-var}
log_dir="$var_dir/log"
key_file="$var_dir/dev-api-key.txt"
mkdir -p "$log_dir"
# Every process counts its metrics in files of its own here (config/settings.py); none
# runs yet, so the counts of runs before are dropped (never empty it under running ones).
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$var_dir/metrics}
rm -rf -- "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
metrics_port=${METRICS_PORT:-9464}

# The run is the product as its users meet it: DEBUG off, so a wrong address is a
# plain "Page not found", never Django's debug page listing every URL. It serves
# plain http on this machine, so what DEBUG off would make https-only is turned
# back to http here; mail is printed to the workers' logs. Each is overridable, and
# DEBUG=1 brings the debug pages back for development.
export DEBUG=${DEBUG:-0}
# The settings read DEBUG as on for 1/true/yes/on only (config.settings.env_bool).
case "${DEBUG,,}" in
1 | true | yes | on) ;;
*)
    if [[ -z ${SECRET_KEY:-} ]]; then
        secret_file="$var_dir/secret-key.txt"
        if [[ ! -s $secret_file ]]; then
            (umask 077 && "$py" -c 'import secrets; print(secrets.token_urlsafe(50))' >"$secret_file")
        fi
        SECRET_KEY=$(<"$secret_file")
        export SECRET_KEY
    fi
    export ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}
    export SECURE_SSL_REDIRECT=${SECURE_SSL_REDIRECT:-0}
    export SESSION_COOKIE_SECURE=${SESSION_COOKIE_SECURE:-0}
    export CSRF_COOKIE_SECURE=${CSRF_COOKIE_SECURE:-0}
    export SECURE_HSTS_SECONDS=${SECURE_HSTS_SECONDS:-0}
    export SECURE_HSTS_INCLUDE_SUBDOMAINS=${SECURE_HSTS_INCLUDE_SUBDOMAINS:-0}
    export SECURE_HSTS_PRELOAD=${SECURE_HSTS_PRELOAD:-0}
    export EMAIL_BACKEND=${EMAIL_BACKEND:-django.core.mail.backends.console.EmailBackend}
    ;;
esac

log_line INFO run.sh "== migrating the database"
"$py" manage.py migrate --noinput
log_line INFO run.sh "== setting up the admin roles (Finance, Operations, Support)"
"$py" manage.py setup_roles
log_line INFO run.sh "== loading the demo catalog"
"$py" manage.py load_demo
log_line INFO run.sh "== creating the periodic tasks (Celery beat)"
"$py" manage.py setup_periodic_tasks

admin_password=$("$py" manage.py ensure_dev_admin --username admin \
    --password-file "$var_dir/admin-password.txt")

# The dev key's secret is kept in the key file (only its digest is stored): reused while
# this database knows it, made again only after a reset or on another database.
api_key=$("$py" manage.py ensure_dev_api_key --name dev --key-file "$key_file")

banner=$(
    cat <<EOF
Usage billing is starting on $base_url
  admin:    $base_url/admin/  user admin, password ${admin_password:-(unknown, see above)}
  API docs: $base_url/api/docs/ (Swagger UI), $base_url/api/redoc/ (ReDoc)
  API key:  $key_file
            curl -H "Authorization: Bearer $api_key" $base_url/api/v1/plans
  health:   $base_url/healthz, $base_url/readyz
  metrics:  http://127.0.0.1:$metrics_port/metrics (Prometheus; this machine only)
  logs:     workers $log_dir/worker-urgent.log, $log_dir/worker-default.log and
            $log_dir/worker-bulk.log,
            beat $log_dir/beat.log, folder $log_dir/folder.log,
            metrics $log_dir/metrics.log
Stop with Ctrl-C.
EOF
)
if [[ $log_format == json ]]; then
    printf '%s\n' "$banner" | json_lines INFO run.sh
else
    printf '\n%s\n\n' "$banner"
fi

# Each service runs under its supervisor (scripts/_supervise.sh: started again when it
# exits), the two in a session of their own (setsid), so that Ctrl-C reaches only this
# script, which then stops each one and makes sure no process of their groups is left.
# The supervisors write their restart lines here too (descriptor 3).
exec 3>&2
pids=()
names=()
start() {
    local name=$1
    shift
    if command -v setsid >/dev/null 2>&1; then
        setsid bash scripts/_supervise.sh "$name" "$@" &
    else
        bash scripts/_supervise.sh "$name" "$@" &
    fi
    pids+=("$!")
    names+=("$name")
}

stop_all() {
    local pid alive
    # SIGTERM to each main process: a worker stops its own pool after the current task.
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # Wait for whole process groups; whatever is left after 20 s is killed.
    for _ in {1..40}; do
        alive=0
        for pid in "${pids[@]}"; do
            if kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null; then
                alive=1
            fi
        done
        ((alive)) || break
        sleep 0.5
    done
    for pid in "${pids[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}

on_signal() {
    trap '' INT TERM
    [[ $log_format == json ]] || echo
    log_line INFO run.sh "== stopping the web server, workers, beat, folder and metrics server"
    stop_all
    exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# Celery's banner (its ASCII art and settings) is no log line: left out with json.
celery=(.venv/bin/celery -A config)
[[ $log_format == json ]] && celery+=(-q)
# --insecure: runserver serves the static files (the admin's CSS, the API docs'
# Swagger UI and ReDoc) with DEBUG off too; production serves them from collectstatic.
start web "$py" manage.py runserver --noreload --insecure "127.0.0.1:$port"
# Two workers, a queue each (config.celery; docs/running.md, Queues): the urgent one
# (usage checks, alerts, threshold invoices) never waits behind PDFs, emails or the close.
start worker-urgent "${celery[@]}" worker -Q urgent -n urgent@%h -l info \
    --concurrency 1 >>"$log_dir/worker-urgent.log" 2>&1
start worker-default "${celery[@]}" worker -Q default -n default@%h -l info \
    --concurrency 1 >>"$log_dir/worker-default.log" 2>&1
# The bulk queue's (PDFs, their emails, plan migrations, simulations): a huge render
# never holds up the beat's close on default.
start worker-bulk "${celery[@]}" worker -Q bulk -n bulk@%h -l info \
    --concurrency 1 >>"$log_dir/worker-bulk.log" 2>&1
start beat "${celery[@]}" beat -l info >>"$log_dir/beat.log" 2>&1
# The folder service (docs/running.md): the usage events into the rollups every second
# on PostgreSQL; on SQLite, which writes the rollups as events are stored, it idles.
start folder "$py" manage.py fold_usage --every 1 >>"$log_dir/folder.log" 2>&1
start metrics "$py" manage.py serve_metrics --host 127.0.0.1 --port "$metrics_port" \
    >>"$log_dir/metrics.log" 2>&1

# A supervisor exits only when told to: one that did anyway stops the run.
status=0
wait -n || status=$?
trap '' INT TERM
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        log_line ERROR run.sh "error: the supervisor of ${names[$i]} exited (status $status);" \
            "stopping the others" >&2
    fi
done
stop_all
exit $((status == 0 ? 1 : status))

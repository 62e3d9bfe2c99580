#!/bin/sh
# The image's entrypoint (Containerfile): one image, a role per container.
#
#   migrate          migrate, setup_roles, setup_periodic_tasks, then exit (run once,
#                    before the others, at every install and upgrade)
#   web              granian on $PORT (default 8000), serving /static/ too
#   worker-urgent    the Celery worker of the urgent queue (checks, alerts, payments)
#   worker-default   the Celery worker of the default queue
#   worker-bulk      the Celery worker of the bulk queue (PDFs, closes, migrations)
#   beat             Celery beat: run exactly one
#   folder           manage.py fold_usage --every 1
#   metrics          manage.py serve_metrics on 0.0.0.0:9464 (keep it private)
#   manage ARGS...   manage.py ARGS (createsuperuser, create_api_key, close_periods, ...)
#   anything else    run as given
#
# Every role but migrate and manage waits until the database has every migration
# this image knows (the migrate container applies them), so an upgrade never serves
# from a half-migrated database and a first boot needs no start order. The image
# knows its migrations: the leaf of each app, written at build time
# (/app/migration-leaves.txt, scripts/container_wait.py).
set -eu

role=${1:-web}
[ "$#" -gt 0 ] && shift

# What must be set: compose.yaml names the secrets of its .env; by default, what the
# settings need with DEBUG off.
missing=""
for name in ${BILLING_REQUIRED_ENV:-SECRET_KEY DATABASE_URL CELERY_BROKER_URL ALLOWED_HOSTS}; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || missing="$missing $name"
done
# The entrypoint's own lines, as LOG_FORMAT says (plain, or a JSON object a line).
say() {
    python /app/scripts/container_wait.py say "$@"
}

if [ -n "$missing" ]; then
    say error "error: not set:$missing. With compose: cp .env.example .env, fill it in," \
        "then 'podman-compose up -d' (docs/running.md, With compose). Without it, pass" \
        "them with -e or --env-file."
    exit 64
fi

# Each container counts its processes' metrics in a folder of its own on the shared
# metrics volume; the metrics server adds up every folder (config.metrics_export).
metrics_root=${BILLING_METRICS_ROOT:-/var/lib/billing/metrics}
if [ "$role" = metrics ]; then
    export PROMETHEUS_MULTIPROC_DIR="$metrics_root"
else
    export PROMETHEUS_MULTIPROC_DIR="$metrics_root/$(hostname)"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
fi
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
echo "$role" >"${BILLING_VAR_DIR:-/var/lib/billing}/role"

# LOG_FORMAT=json (docs/running.md, Logs): granian's own lines through the project's
# JSON formatter (config/json_logging.json), and Celery's banner left out (-q).
json_logs() {
    [ "$(printf %s "${LOG_FORMAT:-}" | tr -d '[:space:]' | tr '[:upper:]' '[:lower:]')" = json ]
}

manage() {
    python /app/manage.py "$@"
}

# The waits: one cheap query at a time with a backoff (scripts/container_wait.py),
# never a Django start-up, so that the services waiting on a first boot or an upgrade
# leave the CPU to the migrations they wait for.
wait_for_database() {
    python /app/scripts/container_wait.py database
}

wait_for_migrations() {
    python /app/scripts/container_wait.py migrations
}

case "$role" in
migrate)
    wait_for_database
    manage migrate --noinput
    manage setup_roles
    manage setup_periodic_tasks
    say info "migrations applied; roles and periodic tasks set"
    ;;
manage)
    exec python /app/manage.py "$@"
    ;;
web)
    wait_for_migrations
    exec granian --interface wsgi --host 0.0.0.0 --port "${PORT:-8000}" \
        --workers "${WEB_WORKERS:-2}" --blocking-threads 1 \
        --blocking-threads-idle-timeout 600 \
        --static-path-route /static --static-path-mount /var/lib/billing/static \
        $(json_logs && echo --log-config /app/config/json_logging.json) \
        "$@" config.wsgi:application
    ;;
worker-urgent | worker-default | worker-bulk)
    queue=${role#worker-}
    wait_for_migrations
    concurrency=${WORKER_CONCURRENCY:-2}
    exec celery -A config $(json_logs && echo -q) worker -Q "$queue" -n "$queue@%h" --concurrency "$concurrency" -l info "$@"
    ;;
beat)
    wait_for_migrations
    exec celery -A config $(json_logs && echo -q) beat -l info "$@"
    ;;
folder)
    wait_for_migrations
    exec python /app/manage.py fold_usage --every 1 "$@"
    ;;
metrics)
    wait_for_migrations
    exec python /app/manage.py serve_metrics --host 0.0.0.0 --port "${METRICS_PORT:-9464}" "$@"
    ;;
*)
    exec "$role" "$@"
    ;;
esac

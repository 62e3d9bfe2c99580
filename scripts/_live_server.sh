# Sourced by scripts/schema_check.sh and scripts/hostile_check.sh; not run on its own.
#
# live_server_env WORK: the environment of a server run as in production (DEBUG off:
# JSON 404s, no debug pages) with nothing that leaves the machine (no Stripe, mail
# kept in memory) and the rate limits off (the checks send bursts); files under WORK.
# live_server_start WORKERS LOG [gunicorn args...]: gunicorn on a free localhost port,
# logging to LOG; sets base_url and server_pid, and returns once the server answers
# (1, the log printed, if it never does). The caller stops it (kill -TERM $server_pid).

live_server_env() {
    export DEBUG=0
    export SECRET_KEY="live-check-$RANDOM$RANDOM$RANDOM"
    export ALLOWED_HOSTS=127.0.0.1,localhost
    export SECURE_SSL_REDIRECT=0 # plain HTTP on localhost; TLS is a proxy's in production
    export EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend
    export STRIPE_API_KEY="" STRIPE_WEBHOOK_SECRET="" STRIPE_API_BASE=""
    # Rate limits (common.throttling) would turn the checks' bursts into 429s.
    export API_THROTTLE_RATE=off API_AUTH_FAILURE_RATE=off
    export BILLING_VAR_DIR="$1/var"
}

live_server_start() {
    local workers=$1 log=$2 port
    shift 2
    port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    base_url="http://127.0.0.1:$port"
    echo "== starting gunicorn on $base_url ($workers workers)"
    .venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$port" --workers "$workers" \
        --timeout 120 --error-logfile "$log" "$@" >>"$log" 2>&1 &
    server_pid=$!
    for _ in {1..60}; do
        if _live_server_answers || ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        sleep 1
    done
    if ! _live_server_answers; then
        echo "error: gunicorn did not answer on $base_url" >&2
        cat "$log" >&2
        return 1
    fi
}

_live_server_answers() {
    .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
        "$base_url/api/schema/" 2>/dev/null
}

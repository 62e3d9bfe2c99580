#!/usr/bin/env bash
# scripts/_supervise.sh NAME COMMAND...: runs COMMAND, and starts it again whenever it
# exits, after a backoff: 1 s, doubled at each exit up to 30 s, back to 1 s once a run
# has lasted a minute. Each exit is a line on standard error (the process's log, as
# scripts/run.sh redirects it) and on descriptor 3 when that is open and elsewhere
# (run.sh's terminal). SIGTERM stops COMMAND (SIGTERM, waiting for it) and then this
# script. How run.sh keeps a worker, beat or the folder running when one dies (a Redis
# restart, a crash); in production a service manager does it (docs/running.md). The
# lines are JSON objects with LOG_FORMAT=json (scripts/_log.sh).
set -uo pipefail
# shellcheck source=scripts/_log.sh
. "$(dirname "${BASH_SOURCE[0]}")/_log.sh"

name=$1
shift
stopping=0
child=
trap 'stopping=1; [[ -n $child ]] && kill -TERM "$child" 2>/dev/null' TERM
trap '' INT # Ctrl-C is run.sh's, which stops every process with SIGTERM

say() {
    local line
    if [[ $log_format == json ]]; then
        line=$(log_line WARNING supervise "$*")
    else
        line="$(date '+%Y-%m-%d %H:%M:%S') supervise: $*"
    fi
    echo "$line" >&2
    if { true >&3; } 2>/dev/null && ! [[ /dev/fd/2 -ef /dev/fd/3 ]]; then
        echo "$line" >&3
    fi
}

delay=1
restarts=0
while :; do
    started=$SECONDS
    "$@" &
    child=$!
    ((stopping)) && kill -TERM "$child" 2>/dev/null
    # wait returns early when a trapped signal arrives: wait again until the child is gone
    while :; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || break
    done
    child=
    ((stopping)) && exit 0
    ran=$((SECONDS - started))
    ((ran >= 60)) && delay=1
    restarts=$((restarts + 1))
    say "$name exited (status $status) after ${ran} s; starting it again in ${delay} s (restart $restarts)"
    sleep "$delay" &
    child=$!
    wait "$child"
    child=
    ((stopping)) && exit 0
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
done

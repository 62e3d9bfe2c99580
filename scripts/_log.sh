# Sourced by scripts/run.sh and scripts/_supervise.sh; not run on its own.
#
# Their own messages in LOG_FORMAT's format (docs/running.md, Logs): the lines as they
# always were with plain (the default); with json one JSON object a line, as the
# Python processes write theirs (common.logs): time (UTC), level, logger,
# message, pid.

# LOG_FORMAT as the settings read it: blank is plain, case and spaces do not matter.
log_format=${LOG_FORMAT:-}
log_format=${log_format,,}
log_format=${log_format//[[:space:]]/}
log_format=${log_format:-plain}

# log_format_check: refuse a LOG_FORMAT the settings would refuse, before anything runs.
log_format_check() {
    case "$log_format" in
    plain | json) ;;
    *)
        echo "error: LOG_FORMAT must be plain or json, got '${LOG_FORMAT}'" >&2
        return 64
        ;;
    esac
}

# json_quote TEXT: TEXT as a JSON string, in REPLY.
json_quote() {
    local text=$1 char code i
    text=${text//\\/\\\\}
    text=${text//\"/\\\"}
    text=${text//$'\n'/\\n}
    text=${text//$'\r'/\\r}
    text=${text//$'\t'/\\t}
    # Any other control character (an escape sequence's ESC, a backspace): \u00XX.
    if [[ $text == *[[:cntrl:]]* ]]; then
        local escaped=""
        for ((i = 0; i < ${#text}; i++)); do
            char=${text:i:1}
            if [[ $char == [[:cntrl:]] ]]; then
                printf -v code '\\u%04x' "'$char"
                escaped+=$code
            else
                escaped+=$char
            fi
        done
        text=$escaped
    fi
    REPLY="\"$text\""
}

# log_line LEVEL LOGGER MESSAGE...: MESSAGE on standard output, as it is (plain) or
# as a JSON object (json).
log_line() {
    local level=$1 logger=$2 now seconds fraction
    shift 2
    if [[ $log_format != json ]]; then
        printf '%s\n' "$*"
        return
    fi
    # The time to the millisecond where bash tells it (5.0 and later), else the second.
    seconds=${EPOCHREALTIME:-}
    if [[ -n $seconds ]]; then
        fraction=${seconds#*[.,]}000
        seconds=${seconds%[.,]*}
        TZ=UTC printf -v now '%(%Y-%m-%dT%H:%M:%S)T.%sZ' "$seconds" "${fraction:0:3}"
    else
        TZ=UTC printf -v now '%(%Y-%m-%dT%H:%M:%S)TZ' -1
    fi
    json_quote "$*"
    printf '{"time": "%s", "level": "%s", "logger": "%s", "message": %s, "pid": %s}\n' \
        "$now" "$level" "$logger" "$REPLY" "$$"
}

# json_lines LEVEL LOGGER: copies standard input to standard output, each line a JSON
# object with json (blank lines left out), as it is with plain. For what run.sh runs
# that writes lines of its own (pip, apt-get, the catalogs' compiler).
json_lines() {
    local level=$1 logger=$2 line
    if [[ $log_format != json ]]; then
        cat
        return
    fi
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ -n ${line//[[:space:]]/} ]] && log_line "$level" "$logger" "$line"
    done
    return 0
}

# log_output LEVEL LOGGER COMMAND...: runs COMMAND; with json, what it writes (either
# stream) comes out on standard output as JSON objects (json_lines). As it is with plain.
log_output() {
    local level=$1 logger=$2
    shift 2
    if [[ $log_format != json ]]; then
        "$@"
        return
    fi
    "$@" 2>&1 | json_lines "$level" "$logger"
}

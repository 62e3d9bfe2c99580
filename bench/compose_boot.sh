#!/usr/bin/env bash
# The first boot of compose.yaml on empty volumes, as docs/running.md has it, measured
# (docs/scaling.md; figures in bench/RESULTS.md). Prints:
#   - the image's build time and size, and the dangling images the build left;
#   - the seconds from `podman-compose up -d` to the migrate container's exit (the
#     migrations applied) and to /readyz 200;
#   - each container's CPU seconds until the migrate container exited: what the
#     services waiting for the migrations took from them.
#
#   bash bench/compose_boot.sh                          build this checkout, then boot it
#   bash bench/compose_boot.sh --image TAG --no-build   boot an image built before
#
# Needs podman and podman-compose (installed as scripts/compose_check.sh installs them);
# a project of its own (bench-boot) on ports 28000/29464, removed with its volumes after.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
image=localhost/usage-billing:bench
build=1
while (($#)); do
    case $1 in
    --image) image=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: bash bench/compose_boot.sh [--image TAG] [--no-build]" >&2; exit 64 ;;
    esac
done
project=bench-boot
http_port=${BENCH_HTTP_PORT:-28000}
ca_bundle=${PROXY_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

# shellcheck source=scripts/_podman.sh
. scripts/_podman.sh
podman_setup >/dev/null

if ((build)); then
    dangling_before=$(podman images -q --filter dangling=true | wc -l)
    began=$SECONDS
    secret=()
    [[ -s $ca_bundle ]] && secret=(--secret "id=proxy_ca,src=$ca_bundle")
    podman build -q --format docker "${secret[@]}" -t "$image" . >/dev/null
    echo "image: built in $((SECONDS - began)) s"
    echo "dangling images the build left: $(($(podman images -q --filter dangling=true | wc -l) - dangling_before))"
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image $image: $((size / 1000000)) MB"

work=$(mktemp -d /tmp/compose-boot.XXXXXX)
compose() { "$compose_tool" -f "$work/compose.yaml" -p "$project" "$@"; }
cleanup() {
    compose down -v >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cp compose.yaml "$work/"
secret_value() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
{
    sed -e "s/^SECRET_KEY=$/SECRET_KEY=$(secret_value)/" \
        -e "s/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=$(secret_value)/" \
        -e "s/^REDIS_PASSWORD=$/REDIS_PASSWORD=$(secret_value)/" .env.example
    echo "BILLING_IMAGE=$image"
    echo "BILLING_HTTP_PORT=$http_port"
    echo "BILLING_METRICS_PORT=${BENCH_METRICS_PORT:-29464}"
} >"$work/.env"
compose down -v >/dev/null 2>&1 || true

began=$SECONDS
compose up -d >/dev/null 2>&1
declare -A cpu
migrated=""
ready=""
while ((SECONDS - began < 1200)); do
    status=$(podman inspect -f '{{.State.Status}}' "${project}_migrate_1" 2>/dev/null || echo missing)
    if [[ -z $migrated ]]; then
        # A container's CPU only grows; an exited one reads 0: keep the most seen.
        while read -r name time; do
            [[ -n $name && $time =~ ^[0-9]+$ ]] && ((time > ${cpu[$name]:-0})) && cpu[$name]=$time
        done < <(podman stats --no-stream --format '{{.Name}} {{.CPUNano}}' 2>/dev/null |
            awk -v p="${project}_" 'index($1, p) == 1' || true)
        if [[ $status == exited ]]; then
            migrated=$((SECONDS - began))
            code=$(podman inspect -f '{{.State.ExitCode}}' "${project}_migrate_1")
            echo "migrate exited $code, $migrated s after up"
        fi
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz" || true) == 200 ]]; then
        ready=$((SECONDS - began))
        break
    fi
    sleep 2
done
[[ -n $ready ]] || { echo "error: /readyz never answered 200"; exit 1; }
echo "/readyz 200 $ready s after up"
echo "CPU seconds of each container until migrate exited:"
waiting=0
for name in $(printf '%s\n' "${!cpu[@]}" | sort); do
    s=$(python3 -c "print(round(${cpu[$name]} / 1e9, 1))")
    printf '  %-28s %6s s\n' "${name#"${project}_"}" "$s"
    case $name in *_migrate_1 | *_db_1 | *_redis_1) ;; *) waiting=$(python3 -c "print(round($waiting + $s, 1))") ;; esac
done
echo "  the waiting services together: $waiting s"

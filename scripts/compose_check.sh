#!/usr/bin/env bash
# The image and the compose stack used as an operator uses them (CI's "Containers"
# step; run by hand the same way): builds the image (its build time and size
# printed), boots compose.yaml once without an .env (refused, saying what to set),
# then with one, from a folder holding only compose.yaml and .env as
# docs/running.md's compose section has it, and from outside the containers:
# /readyz 200, an API key made in the web container, a French customer, events,
# `check`, a close, the invoice's PDF read back in French; then the broker drill
# (Redis stopped and started under ingestion and checks: every acknowledged event
# stored, every worker consuming again, a close made during the outage rendered);
# then an upgrade to an image with one more migration: nothing lost; then a backup
# (pg_dump and the documents volume), every volume dropped, the restore with
# `after_restore`, and the same data and PDF again.
#
# Reads the PDFs with the project's .venv (pypdf): run after scripts/test.sh or run.sh
# made it. Needs podman and podman-compose (installed here with apt-get and pip when missing
# and running as root) and, on a machine with no registry, the base images built
# from Debian's packages (../CONTAINERS.md): debootstrap for debian:bookworm-slim,
# .ci/images/ for stand-ins of postgres:15-bookworm and redis:7-bookworm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

project=${COMPOSE_CHECK_PROJECT:-billingcheck}
http_port=${COMPOSE_CHECK_HTTP_PORT:-18000}
metrics_port=${COMPOSE_CHECK_METRICS_PORT:-19464}
image=localhost/usage-billing:check
next_image=localhost/usage-billing:check-next
ca_bundle=${PROXY_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
base=http://127.0.0.1:$http_port
started=$SECONDS

say() { printf '\n---- %s (at %ss)\n' "$*" "$((SECONDS - started))"; }
fail() {
    echo "compose check FAILED: $*" >&2
    exit 1
}

# ---- tools and base images (scripts/_podman.sh) ------------------------------------
# shellcheck source=scripts/_podman.sh
. scripts/_podman.sh
say "Tools and base images: podman, podman-compose, the stand-ins of .ci/images"
podman_setup
tools=$(dirname "$(dirname "$compose_tool")")
podman --version
"$compose_tool" --version | tail -n 1

# ---- the image -------------------------------------------------------------------
say "Image: podman build (the proxy's CA given as a build secret)"
build_started=$SECONDS
podman build -q --format docker --secret "id=proxy_ca,src=$ca_bundle" -t "$image" . >/dev/null
build_seconds=$((SECONDS - build_started))
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image $image built in ${build_seconds}s; size $((size / 1000000)) MB"

work=$(mktemp -d /tmp/compose-check.XXXXXX)
compose() { "$tools/bin/podman-compose" -f "$work/compose.yaml" -p "$project" "$@"; }
# A command's output without podman's systemd noise (`time=` lines), read from a file
# once the command has exited: a process it leaves running (conmon, a healthcheck
# timer) may hold on to what it inherited, and a pipe's reader would wait for that
# process forever (a CI run once hung after the upgrade's last line).
quiet() {
    local out status=0
    out=$(mktemp "$work/out.XXXXXX")
    "$@" >"$out" 2>&1 </dev/null || status=$?
    grep -v '^time=' "$out" || true
    rm -f "$out"
    return "$status"
}
cleanup() {
    status=$?
    if ((status != 0)); then
        echo "---- the services' last log lines"
        for service in migrate web worker-urgent worker-default worker-bulk beat folder metrics; do
            echo "-- $service"
            podman logs --tail 15 "${project}_${service}_1" 2>&1 | grep -v '^time=' || true
        done
    fi
    if ((status != 0)) && [[ -n ${COMPOSE_CHECK_KEEP:-} ]]; then
        echo "kept for a look (COMPOSE_CHECK_KEEP): $tools/bin/podman-compose -f $work/compose.yaml -p $project ..."
        return
    fi
    compose down -v >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cp compose.yaml .env.example "$work/"

say "First boot without .env: refused, saying what to set"
set +e
# The image built above (compose.yaml's default name may not exist on this machine: then
# compose would build it, from a folder holding only compose.yaml).
refusal=$(BILLING_IMAGE=$image compose run --rm --no-deps migrate 2>&1)
code=$?
set -e
echo "$refusal" | grep -v '^time=' | tail -n 2
((code == 64)) || fail "migrate without .env exited $code, not 64"
grep -q "not set: SECRET_KEY POSTGRES_PASSWORD REDIS_PASSWORD" <<<"$refusal" || fail "no message naming the secrets"
! grep -q Traceback <<<"$refusal" || fail "a stack trace on the first boot without .env"

say "Up: .env from .env.example, then podman-compose up -d"
secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
{
    sed -e "s/^SECRET_KEY=$/SECRET_KEY=$(secret)/" \
        -e "s/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=$(secret)/" \
        -e "s/^REDIS_PASSWORD=$/REDIS_PASSWORD=$(secret)/" .env.example
    echo "BILLING_IMAGE=$image"
    echo "BILLING_HTTP_PORT=$http_port"
    echo "BILLING_METRICS_PORT=$metrics_port"
    # Logs as an operator ships them: a JSON object a line from every container.
    echo "LOG_FORMAT=json"
} >"$work/.env"
up_started=$SECONDS
quiet compose up -d | tail -n 3

ready() {
    local limit=$1 code=000
    for ((i = 0; i < limit; i += 3)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz" || true)
        [[ $code == 200 ]] && return 0
        sleep 3
    done
    echo "readyz answered $code after ${limit}s" >&2
    return 1
}
ready 900 || fail "the stack never became ready"
echo "/readyz 200, $((SECONDS - up_started))s after up (migrations included)"
podman ps --filter "name=${project}_" --format '{{.Names}} {{.Status}}'

say "Smoke: API key, catalog, a French customer, events, check, close, PDF"
key=$(compose exec -T web python manage.py create_api_key --name compose-check 2>/dev/null | tail -n 1)
[[ $key == sk_* ]] || fail "no API key made in the web container"
compose exec -T web python manage.py load_demo --catalog-only 2>/dev/null | cut -c1-80
api() { # METHOD PATH [BODY] -> body; fails on a status outside 2xx
    local out code
    out=$(curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' ${3:+-d "$3"} "$base/api/v1$2")
    code=${out##*$'\n'}
    [[ $code == 2* ]] || fail "$1 $2 answered $code: ${out%$'\n'*}"
    printf '%s' "${out%$'\n'*}"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
# Subscribed since the first of last month, so that last month's period has ended.
last_month=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m-01T00:00:00Z)
late_last_month=$(date -u -d "$(date -u +%Y-%m-01) -2 hours" +%Y-%m-%dT%H:%M:%SZ)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
api POST /customers '{"external_id": "lumiere", "name": "Lumière SARL", "currency": "USD",
    "email": "compta@lumiere.test", "locale": "fr", "timezone": "UTC",
    "address": {"line1": "3 rue de la Paix", "city": "Paris", "postal_code": "75002", "country": "FR"}}' >/dev/null
api POST /subscriptions "{\"customer\": \"lumiere\", \"plan\": \"ai_assistant\", \"start\": \"$last_month\"}" >/dev/null
accepted=$(api POST /events "{\"events\": [
    {\"id\": \"smoke-1\", \"customer\": \"lumiere\", \"event_name\": \"prompt\", \"timestamp\": \"$late_last_month\"},
    {\"id\": \"smoke-2\", \"customer\": \"lumiere\", \"event_name\": \"prompt\", \"timestamp\": \"$now\"}]}" | json "d['accepted']")
[[ $accepted == 2 ]] || fail "events: $accepted accepted of 2"
allowed=$(api POST /customers/lumiere/check '{"meter": "prompts", "quantity": "1"}' | json "d['allowed'], d['used']")
echo "events accepted: $accepted; check: (allowed, used) = $allowed"
[[ $allowed == "(True, '1')" ]] || fail "check answered $allowed"
compose exec -T web python manage.py close_periods 2>/dev/null | tail -n 1
invoice=$(api GET "/invoices?customer=lumiere" | json "[i for i in d['results'] if i['status'] == 'finalized'][0]['id']")
pdf=$work/invoice.pdf
for ((i = 0; i < 120; i += 2)); do
    code=$(curl -s -o "$pdf" -w '%{http_code}' -H "Authorization: Bearer $key" "$base/api/v1/invoices/$invoice/pdf")
    [[ $code == 200 ]] && break
    sleep 2
done
[[ $code == 200 ]] || fail "the invoice's PDF answered $code"
pdf_text() { .venv/bin/python -c 'import sys; from pypdf import PdfReader; print("\n".join(p.extract_text() for p in PdfReader(sys.argv[1]).pages))' "$1"; }
text=$(pdf_text "$pdf")
grep -q "Facture" <<<"$text" || fail "the French customer's PDF is not in French"
echo "invoice $invoice: PDF of $(wc -c <"$pdf") bytes, read back: $(grep -m1 -E '^(Facture|Invoice)' <<<"$text"), $(grep -m1 -E 'INV-' <<<"$text")"
pdf_sum=$(sha256sum "$pdf" | cut -d' ' -f1)

fingerprint() {
    compose exec -T web python manage.py shell -c \
        "exec(open('/app/scripts/compose_fingerprint.py').read())" 2>/dev/null | tail -n 1
}

say "Broker drill: Redis stopped and started under ingestion and checks"
drill_log=$work/drill.log
: >"$drill_log"
(
    batch=0
    end=$((SECONDS + 45))
    while ((SECONDS < end)); do
        batch=$((batch + 1))
        events=""
        for j in $(seq 1 20); do
            events+="${events:+,}{\"id\": \"drill-$batch-$j\", \"customer\": \"lumiere\", \"event_name\": \"prompt\", \"timestamp\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}"
        done
        out=$(curl -s -m 20 -w '\n%{http_code}' -H "Authorization: Bearer $key" \
            -H 'Content-Type: application/json' -d "{\"events\": [$events]}" "$base/api/v1/events" || true)
        code=${out##*$'\n'}
        if [[ $code == 202 ]]; then
            n=$(printf '%s' "${out%$'\n'*}" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["accepted"] + d["duplicates"])')
            echo "events $code $n" >>"$drill_log"
        else
            echo "events $code 0" >>"$drill_log"
        fi
        code=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
            -H 'Content-Type: application/json' -d '{"meter": "prompts", "quantity": "1"}' \
            "$base/api/v1/customers/lumiere/check" || true)
        echo "check $code" >>"$drill_log"
    done
) &
load=$!
sleep 10
quiet compose stop redis | tail -n 1
echo "Redis stopped"
# A close during the outage: its invoice's finalization and PDF are tasks the broker
# cannot take now; they must be done once it is back.
api POST /customers '{"external_id": "outage", "name": "Outage GmbH", "currency": "USD", "locale": "de"}' >/dev/null
api POST /subscriptions "{\"customer\": \"outage\", \"plan\": \"ai_assistant\", \"start\": \"$last_month\"}" >/dev/null
compose exec -T web python manage.py close_periods 2>/dev/null | tail -n 1
sleep 8
quiet compose start redis | tail -n 1
echo "Redis started"
wait "$load"
acknowledged=$(awk '$1 == "events" && $2 == 202 {n += $3} END {print n + 0}' "$drill_log")
refused=$(awk '$1 == "events" && $2 != 202 {n++} END {print n + 0}' "$drill_log")
checks_ok=$(awk '$1 == "check" && $2 == 200 {n++} END {print n + 0}' "$drill_log")
server_errors=$(awk '$2 ~ /^5/ {n++} END {print n + 0}' "$drill_log")
stored=$(compose exec -T web python manage.py shell -c \
    "from billing.usage_models import UsageEvent; print(UsageEvent.objects.filter(event_id__startswith='drill-').count())" 2>/dev/null | tail -n 1)
echo "events acknowledged $acknowledged, stored $stored; batches refused $refused; checks answered 200: $checks_ok; 5xx: $server_errors"
# Every acknowledged event is stored. A batch refused or left unanswered (curl's 20 s)
# may have been stored all the same (its answer lost, not its events): a client sends it
# again and its ids make it a duplicate. Beyond those, nothing more may be stored.
((stored >= acknowledged)) || fail "$((acknowledged - stored)) acknowledged events lost"
((stored <= acknowledged + 20 * refused)) || fail "$((stored - acknowledged)) events stored that no batch sent"
((acknowledged > 0)) || fail "no event acknowledged during the drill"
outage_invoice=$(api GET "/invoices?customer=outage" | json "[i['id'] for i in d['results'] if i['status'] == 'finalized'][0]")
for ((i = 0; i < 300; i += 3)); do
    code=$(curl -s -o "$work/outage.pdf" -w '%{http_code}' -H "Authorization: Bearer $key" "$base/api/v1/invoices/$outage_invoice/pdf")
    [[ $code == 200 ]] && break
    sleep 3
done
[[ $code == 200 ]] || fail "the invoice closed during the outage has no PDF after 300 s (answered $code)"
grep -q Rechnung <<<"$(pdf_text "$work/outage.pdf")" || fail "the outage invoice's PDF is not the German one"
echo "the invoice closed during the outage: its PDF rendered once Redis was back (there ${i}s after the load ended)"
replies=$(compose exec -T worker-default celery -A config inspect ping --timeout 10 2>/dev/null | grep -c 'pong' || true)
echo "workers answering a ping after the outage: $replies of 3"
((replies == 3)) || fail "only $replies of 3 workers consume again"

say "Logs: LOG_FORMAT=json, every line every container wrote a JSON object (the Redis restart included)"
for service in migrate web worker-urgent worker-default worker-bulk beat folder metrics; do
    podman logs "${project}_${service}_1" >"$work/log-$service.txt" 2>&1
done
python3 - "$work" <<'PY' || fail "a container wrote lines that are not JSON objects"
import json, pathlib, sys
bad, counts = [], {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("log-*.txt")):
    lines = path.read_text(errors="replace").splitlines()
    counts[path.stem[4:]] = len(lines)
    for line in lines:
        try:
            record = json.loads(line)
            assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record)
        except (ValueError, AssertionError):
            bad.append(f"{path.stem[4:]}: {line[:160]}")
print("lines by container:", ", ".join(f"{name} {n}" for name, n in counts.items()), f"; not JSON: {len(bad)}")
for line in bad[:5]:
    print("  not JSON:", line)
sys.exit(1 if bad or not all(counts.values()) else 0)
PY

say "Upgrade: an image from the same tree with one more migration"
before=$(fingerprint)
leaf=$(podman run --rm --entrypoint sh "$image" -c \
    'ls /app/customers/migrations | grep -E "^[0-9]{4}_.*[.]py$" | sort | tail -n 1')
mkdir -p "$work/next"
cat >"$work/next/0999_upgrade_probe.py" <<PY
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "${leaf%.py}")]
    operations = [
        migrations.RunSQL(
            "CREATE TABLE upgrade_probe (applied_at timestamptz NOT NULL DEFAULT now());"
            "INSERT INTO upgrade_probe DEFAULT VALUES",
            "DROP TABLE upgrade_probe",
        )
    ]
PY
# The image knows its migrations (scripts/container_wait.py): written again with it.
cat >"$work/next/Containerfile" <<CONTAINERFILE
FROM $image
USER root
COPY 0999_upgrade_probe.py /app/customers/migrations/
RUN DEBUG=1 BILLING_VAR_DIR=/tmp/build-var CELERY_BROKER_URL=memory:// \\
    python scripts/container_wait.py write-leaves && rm -rf /tmp/build-var
USER billing
CONTAINERFILE
podman build -q --format docker -t "$next_image" "$work/next" >/dev/null
sed -i "s|^BILLING_IMAGE=.*|BILLING_IMAGE=$next_image|" "$work/.env"
# As docs/running.md's upgrade has it: scripts/compose_upgrade.sh, the app's services
# one at a time, the database and Redis left running; the API asked twice a second
# throughout, from outside.
availability=$work/availability.log
: >"$availability"
(
    while [[ -e $availability ]]; do
        printf '%s %s\n' "$(date +%s.%N)" "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$base/healthz" || true)" >>"$availability"
        sleep 0.5
    done
) &
prober=$!
started() { for service in "$@"; do podman inspect -f '{{.State.StartedAt}}' "${project}_${service}_1"; done | tr '\n' ' '; }
kept_running=$(started db redis)
upgrade_started=$SECONDS
COMPOSE="$compose_tool" quiet timeout 1200 \
    bash scripts/compose_upgrade.sh -f "$work/compose.yaml" -p "$project" ||
    fail "scripts/compose_upgrade.sh failed (or took over 20 minutes)"
ready 900 || fail "the upgraded stack never became ready"
upgrade_seconds=$((SECONDS - upgrade_started))
cp "$availability" "$work/availability.done"
rm -f "$availability"
wait "$prober" 2>/dev/null || true
read -r probes failed longest < <(awk '
    { n++; if ($2 == 200) { if (down) { gap = $1 - since; if (gap > longest) longest = gap; down = 0 } }
      else { bad++; if (!down) { down = 1; since = $1 } } }
    END { if (down) { gap = $1 - since; if (gap > longest) longest = gap }; printf "%d %d %.1f\n", n, bad, longest }' \
    "$work/availability.done")
echo "upgraded in ${upgrade_seconds}s: /healthz asked $probes times, $failed not 200, the longest gap ${longest}s (the web container's restart)"
[[ $(started db redis) == "$kept_running" ]] || fail "the upgrade restarted the database or Redis"
echo "the database and Redis kept running (started $kept_running)"
applied=$(compose exec -T web python manage.py showmigrations customers 2>/dev/null | grep -c '\[X\] 0999_upgrade_probe' || true)
((applied == 1)) || fail "the new migration is not applied"
after=$(fingerprint)
echo "before: $before"
echo "after:  $after"
[[ $before == "$after" ]] || fail "the upgrade changed what was stored"
code=$(curl -s -o "$work/after.pdf" -w '%{http_code}' -H "Authorization: Bearer $key" "$base/api/v1/invoices/$invoice/pdf")
[[ $code == 200 && $(sha256sum "$work/after.pdf" | cut -d' ' -f1) == "$pdf_sum" ]] ||
    fail "the invoice's PDF changed or is gone after the upgrade ($code)"
api POST /customers/lumiere/check '{"meter": "prompts", "quantity": "1"}' >/dev/null
echo "nothing lost: the same rows, numbers and totals, the same PDF; the API answers"

say "Backup and restore as docs/running.md has it for compose: every volume lost"
compose exec -T db pg_dump -U billing -Fc billing >"$work/billing.dump"
compose exec -T web tar -C /var/lib/billing/media -cf - . >"$work/documents.tar"
echo "backup: dump $(wc -c <"$work/billing.dump") bytes, documents $(tar -tf "$work/documents.tar" | grep -c '[.]pdf$') PDFs and $(tar -tf "$work/documents.tar" | grep -c 'outbound-record') record"
before=$(fingerprint)
quiet compose down -v | tail -n 1
quiet compose up -d db redis | tail -n 1
# The docs' `until ... pg_isready -h 127.0.0.1 ...; do sleep 1; done`, given up after 120 s.
# Over TCP: the image's first start answers on its socket alone while it creates the
# database, then restarts.
for ((i = 0; i < 120; i++)); do
    compose exec -T db pg_isready -h 127.0.0.1 -U billing -d billing >/dev/null 2>&1 && break
    sleep 1
done
compose exec -T db pg_restore -U billing -d billing --exit-on-error --no-owner <"$work/billing.dump"
media=/var/lib/billing/media
# Into the volume compose makes (its labels on it: a later `down -v` removes it).
compose run --rm --no-deps --user root -v "$work:/backup:ro" --entrypoint tar web \
    -C "$media" -xf /backup/documents.tar
# Drop the invoice's PDF, as a documents copy older than its render would lack it.
stored=$(compose exec -T db psql -U billing -d billing -Atc \
    "SELECT pdf_file FROM invoices_invoice WHERE id = $invoice")
[[ -n $stored ]] || fail "the invoice has no stored PDF to drop"
compose run --rm --no-deps --entrypoint rm web "$media/$stored"
echo "dropped from the documents: $stored"
restored=$(quiet compose run --rm --no-deps web manage after_restore)
echo "$restored" | tail -n 8
grep -q "1 missing and rendered again byte-identical" <<<"$restored" ||
    fail "after_restore did not render the dropped PDF again, identical"
grep -q "sending: PAUSED since" <<<"$restored" || fail "after_restore did not pause sending"
quiet compose up -d | tail -n 1
ready 900 || fail "the restored stack never became ready"
curl -s "$base/readyz" | grep -q '"outbound": "paused"' || fail "/readyz does not say sending is paused"
after=$(fingerprint)
[[ $before == "$after" ]] || fail "the restore changed what was stored: $before / $after"
code=$(curl -s -o "$work/restored.pdf" -w '%{http_code}' -H "Authorization: Bearer $key" "$base/api/v1/invoices/$invoice/pdf")
[[ $code == 200 && $(sha256sum "$work/restored.pdf" | cut -d' ' -f1) == "$pdf_sum" ]] ||
    fail "the invoice's PDF differs after the restore ($code)"
echo "restored: the same rows, numbers and totals; the invoice's PDF the same bytes"
status=$(quiet compose exec -T web python manage.py after_restore --status)
echo "$status" | head -n 2
grep -q "sending: PAUSED since" <<<"$status" || fail "after_restore --status does not say sending is paused"
resumed=$(quiet compose exec -T web python manage.py after_restore --resume)
echo "$resumed" | tail -n 1
grep -q "sending: RESUMED at" <<<"$resumed" || fail "after_restore --resume did not resume sending"
curl -s "$base/readyz" | grep -q '"outbound": "ok"' || fail "/readyz still says sending is paused"
echo "sending resumed after the periods billed again were listed"

say "Down with its volumes, as docs/running.md has it: nothing of the project left"
quiet compose down -v | tail -n 1
left=$(podman volume ls --format '{{.Name}}' | grep -c "^${project}_" || true)
((left == 0)) || fail "down -v left $left volume(s) of the project: $(podman volume ls --format '{{.Name}}' | grep "^${project}_" | tr '\n' ' ')"
echo "no volume of the project left (the documents volume made by the restore included)"

printf '\ncompose check passed in %ss (image built in %ss, %s MB)\n' \
    "$((SECONDS - started))" "$build_seconds" "$((size / 1000000))"

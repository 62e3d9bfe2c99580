#!/usr/bin/env bash
# An upgrade of a running compose stack that restarts only the app's containers, one
# service at a time, never the database or Redis (docs/running.md, "Upgrades"):
#
#   podman build --format docker -t localhost/usage-billing:latest .   (or pull it)
#   bash scripts/compose_upgrade.sh                       # in the folder of compose.yaml
#   bash scripts/compose_upgrade.sh -f /srv/billing/compose.yaml -p usage-billing
#
# The arguments go to every compose command (COMPOSE chooses the tool: podman-compose
# by default, or "docker compose"). In order:
#   1. the workers, beat and the folder stop (warm: the tasks in hand finish; the rest
#      wait in the broker), so that no task of the old code runs on the new tables;
#   2. the migrations run in a one-off `migrate` container of the new image, while the
#      old web process goes on serving the API (it takes events and checks throughout);
#      if they fail, the stopped services start again on the old image and the script
#      exits non-zero, the data as the last good migration left it;
#   3. the workers, beat, the folder and the metrics server are recreated on the new
#      image, one at a time;
#   4. the web server last, and the script waits until /readyz answers in it.
# Safe to run again; with nothing to migrate, step 2 is a no-op.
set -euo pipefail

read -r -a compose_tool <<<"${COMPOSE:-podman-compose}"
compose() { "${compose_tool[@]}" "$@"; }
args=("$@")
began=$SECONDS
say() { printf '%s upgrade: %s (at %ss)\n' "$(date -u +%H:%M:%S)" "$*" "$((SECONDS - began))"; }

background=(worker-urgent worker-default worker-bulk beat folder)

say "stopping ${background[*]} (their tasks wait in the broker)"
compose "${args[@]}" stop "${background[@]}" >/dev/null

say "migrating with the new image (the web server goes on serving)"
if ! compose "${args[@]}" run --rm --no-deps migrate; then
    say "the migrations failed: starting ${background[*]} again on the image they ran"
    compose "${args[@]}" start "${background[@]}" >/dev/null
    exit 1
fi

for service in "${background[@]}" metrics; do
    say "recreating $service on the new image"
    compose "${args[@]}" up -d --no-deps --force-recreate "$service" >/dev/null
done

say "recreating web on the new image"
compose "${args[@]}" up -d --no-deps --force-recreate web >/dev/null
for ((i = 0; i < 120; i++)); do
    if compose "${args[@]}" exec -T web python3 /app/scripts/container_healthcheck.py >/dev/null 2>&1; then
        say "done: /readyz answers 200 in the new web container"
        exit 0
    fi
    sleep 1
done
say "the new web container does not answer /readyz after 120 s (compose logs web)"
exit 1

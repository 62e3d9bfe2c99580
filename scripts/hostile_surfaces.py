"""Hostile cases beyond ingestion, against a live server: what a key of each scope may
call, what a spreadsheet would run in the CSV exports, money and dates out of bounds,
distinct property values without end, and what gateways and exporters send.
scripts/hostile_ingest.py is the ingestion matrix; scripts/hostile_check.sh runs both in CI.

    .venv/bin/python scripts/hostile_surfaces.py --url http://127.0.0.1:8000 \
        --keys-file var/hostile-keys.json

The keys file maps a key's kind to its secret: "all" (every scope), "read",
"finance:read", "admin" and "events:write" (each that scope alone), as
scripts/hostile_check.sh makes them with `manage.py create_api_key`; and "staff" to a
superuser's {"username", "password"}, for the admin's CSV downloads.

A surface is a module of cases: a function of the World that returns Cases, each a
name and a function that calls the server and returns its problems (an empty list
when the server did as the contract says). To add one,
write scripts/hostile_<surface>_cases.py with `def cases(world) -> list[Case]` and
add it to SURFACES below. Every case runs, even after a failure; the table says
which failed and why. Exit status: 0 clean; 1 on any failing case or 5xx; 2 when
the server cannot be set up.

Standard library only.
"""

import argparse
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime

import hostile_bounds_cases
import hostile_csv_cases
import hostile_gateway_cases
import hostile_groups_cases
import hostile_scope_cases
from hostile_ingest import Client
from hostile_world import Case, World

SURFACES = [
    hostile_scope_cases,
    hostile_csv_cases,
    hostile_bounds_cases,
    hostile_groups_cases,
    hostile_gateway_cases,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BILLING_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--keys-file", default="var/hostile-keys.json")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        with open(args.keys_file) as file:
            keys = json.load(file)
    except (OSError, ValueError) as exc:
        print(f"error: the keys file {args.keys_file}: {exc}", file=sys.stderr)
        return 2
    staff = keys.pop("staff", None)
    clients = {kind: Client(args.url, secret, args.timeout) for kind, secret in keys.items()}
    run = "hs" + datetime.now(UTC).strftime("%H%M%S") + secrets.token_hex(2)
    world = World(run=run, clients=clients, staff=staff and {"url": args.url, **staff})
    cases: list[Case] = []
    try:
        for surface in SURFACES:
            cases += surface.cases(world)
    except SystemExit as refused:
        print(f"error: setting up the run: {refused}", file=sys.stderr)
        return 2
    print(f"== run {run}: {len(cases)} cases against {args.url}")
    started = time.monotonic()
    failed = 0
    print(f"{'case':<72} verdict")
    for case in cases:
        try:
            problems = case.check()
        except Exception as exc:  # a case that cannot finish is a failure, not a stop
            problems = [f"{type(exc).__name__}: {exc}"]
        failed += bool(problems)
        verdict = "ok" if not problems else "FAIL: " + "; ".join(problems)
        print(f"{case.name[:72]:<72} {verdict}")
    print()
    print(f"cases:          {len(cases)} in {time.monotonic() - started:.1f}s")
    print(f"5xx:            {world.server_errors}")
    print(f"cases failing:  {failed}")
    return 1 if failed or world.server_errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""Every benchmark in one go, then one table of the headline figures beside their
targets (issue 21). Each benchmark prints its own figures as it runs.

    .venv/bin/python bench/all.py [--quick]

--quick runs each at a reduced size (a smoke run, not the figures to quote).
Needs PostgreSQL and Redis as the benchmarks do (docs/development.md); takes
10 to 30 minutes in full on 2 cores, as fast as the machine is that day. Run it
on a quiet machine: the figures are wall-clock.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, arguments in full, arguments with --quick)
BENCHMARKS = [
    ("ingest", [], ["--events", "40000", "--big", "100000", "--rounds", "1"]),
    ("check", [], ["--requests", "500", "--events-per-customer", "5000"]),
    ("close", [], ["--subscriptions", "1000"]),
    ("pdf", [], ["--invoices", "30"]),
    ("pdf_download", [], ["--documents", "12", "--rounds", "3"]),
    ("margins", [], ["--customers", "1000", "--rounds", "3"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a smoke run")
    args = parser.parse_args()
    rows = []
    failed = []
    with tempfile.TemporaryDirectory() as folder:
        for name, full, quick in BENCHMARKS:
            summary = Path(folder) / f"{name}.jsonl"
            command = [
                sys.executable,
                str(ROOT / "bench" / f"{name}.py"),
                *(quick if args.quick else full),
            ]
            print(f"\n===== bench/{name}.py {' '.join(command[2:])}", flush=True)
            started = time.monotonic()
            done = subprocess.run(
                command, cwd=ROOT, env={**os.environ, "BENCH_SUMMARY": str(summary)}
            )
            print(
                f"===== bench/{name}.py: {time.monotonic() - started:.0f} s, exit {done.returncode}"
            )
            if done.returncode != 0:
                failed.append(name)
            if summary.exists():
                rows += [(name, json.loads(line)) for line in summary.read_text().splitlines()]
    print("\n| benchmark | figure | measured | target | met |")
    print("|---|---|---|---|---|")
    for name, row in rows:
        target = (
            "" if row["target"] is None else f"{'>=' if row['higher'] else '<='} {row['target']:g}"
        )
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        print(
            f"| {name} | {row['figure']} | {row['value']:,.2f} {row['unit']} | {target} | {met} |"
        )
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The admin dashboard's projected revenue (billing.dashboard.projected_revenue)
over subscriptions whose projection does not depend on their usage (issue 93): the
grouped path, counted once per (version, status, seats), and a calendar month's
first partial periods, each prorated as its invoices bill it.

Two fixed-fee plans (a base fee, and a base fee with seats at 1 to 5 seats), USD.
`--subscriptions` customers, one live subscription each, written in bulk (the
dashboard reads only the subscription rows): half anniversary-anchored from 1 Nov
2026, half calendar-anchored from a moment of their own in November (a first
partial period). The clock at 27 Nov 12:00. Prints the median and best wall-clock
time and the queries of `--repeat` calls, and the projection; asserts nothing.

    .venv/bin/python bench/dashboard.py [--subscriptions 2000] [--repeat 9]
        [--database billing_bench_dashboard]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); creates
its own database (dropped first).
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_setup, fresh_database

DB_NAME = "billing_bench_dashboard"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def load(count: int) -> None:
    from django.core.management import call_command

    from billing.models import Subscription
    from customers.models import Customer
    from plans.services import plan_create
    from plans.validation import VersionSpec

    call_command("migrate", verbosity=0)
    versions = [
        plan_create(
            code="flat",
            name="Flat",
            version=VersionSpec(currency="USD", base_fee=Decimal("9.00")),
            publish=True,
        ),
        plan_create(
            code="team",
            name="Team",
            version=VersionSpec(
                currency="USD", base_fee=Decimal("20.00"), seat_price=Decimal("10.00")
            ),
            publish=True,
        ),
    ]
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"cust_{i:05d}", name=f"Customer {i}", currency="USD")
        for i in range(count)
    )
    rows = []
    for i, customer in enumerate(customers):
        calendar = i % 2 == 1
        # A calendar subscription's first period starts when it does (any minute of
        # 1 to 26 Nov) and ends with the month.
        start = NOV_1 + timedelta(minutes=(i * 7919) % (26 * 24 * 60)) if calendar else NOV_1
        rows.append(
            Subscription(
                customer=customer,
                version=versions[i % 2],
                status=Subscription.ACTIVE,
                billing_anchor=Subscription.CALENDAR if calendar else Subscription.ANNIVERSARY,
                started_at=start,
                anchor_at=start,
                current_period_start=start,
                current_period_end=DEC_1,
                seats=1 + i % 5,
            )
        )
    Subscription.objects.bulk_create(rows)


def measure(repeat: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.dashboard import projected_revenue

    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            projected, note = projected_revenue(now=NOW)
            times.append(time.perf_counter() - t0)
    for p in projected:
        print(f"projection: {p.currency} {p.subscriptions} subscriptions, total {p.total}")
    print(f"note: {note}")
    print(
        f"projected_revenue: median {statistics.median(times) * 1000:.1f} ms, "
        f"best {min(times) * 1000:.1f} ms, {len(captured)} queries ({repeat} calls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--database", default=DB_NAME)
    args = parser.parse_args()
    django_setup(fresh_database(args.database))
    load(args.subscriptions)
    measure(args.repeat)


if __name__ == "__main__":
    main()

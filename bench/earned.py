"""Earned revenue benchmark on PostgreSQL (issue 75): the month so far over
every subscription, as the admin dashboard's "margin this month" reads it.

Reuses the database bench/margins.py loads with --keep (10,000 customers and
subscriptions, last month closed, this month open), adds this month's usage
(--events-per-customer, before now), then times, in rounds:
- earned_window over the month so far in UTC, what accrues read from the rows
  the beat keeps (billing.revenue.accruals: beyond ACCRUED_LIVE_LIMIT
  subscriptions), and the refresh that writes them; customer by customer, and
  for its total (apart=False, as the dashboard's tile and the chart read it);
- the same from every subscription's period statement, once (what a question
  over at most ACCRUED_LIVE_LIMIT subscriptions does, here over all of them);
- the dashboard's margin tile (earned revenue and the usage's costs).

    .venv/bin/python bench/earned.py [--customers 10000] [--events-per-customer 2]
                                     [--rounds 5] [--database NAME] [--no-live]

Prints figures, the target beside them, only.
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.close import make_event
from bench.common import PG, django_setup, percentile
from bench.margins import DB_NAME, PLANS, loaded_month
from bench.rate_card import RATED_EVENT, token_properties

TARGET_SECONDS = 0.3  # earned revenue for the dashboard over 10,000 subscriptions (issue 75)


def this_months_usage(count: int, per_customer: int, now: datetime) -> int:
    """Events of this month before `now` for each of the load's customers (its
    plan's meter, as the load sends them), ingested and folded; how many."""
    from billing.usage.folding import usage_fold
    from billing.usage.ingestion import events_ingest
    from common.periods import month_start

    start = month_start(now)
    span = (now - timedelta(minutes=5) - start).total_seconds()
    rng = random.Random(75)
    events = []
    for i in range(count):
        external_id = f"cust_{i:05d}"
        _code, _seats, name = PLANS[i % len(PLANS)]
        for _ in range(per_customer):
            moment = start + timedelta(seconds=rng.random() * span)
            n = len(events)
            if name == RATED_EVENT:
                event = {
                    "id": f"now_{n}",
                    "customer": external_id,
                    "event_name": name,
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "properties": token_properties(rng, unlisted=0.05),
                }
            else:
                event = make_event(rng, n, external_id, name, moment)
                event["id"] = f"now_{n}"
            events.append(event)
    for first in range(0, len(events), 1000):
        result = events_ingest(events=events[first : first + 1000], now=now)
        if result.rejected:
            raise RuntimeError(result.rejected[0])
    usage_fold(wait=True)
    return len(events)


def rounds_of(rounds: int, call) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return times, result


def line(label: str, times: list[float], target: float | None = None) -> None:
    aim = f"  (target {target:.2f} s)" if target else ""
    print(
        f"{label:<52} median {percentile(times, 50):7.3f} s  max {max(times):7.3f} s"
        f"  ({len(times)} rounds){aim}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events-per-customer", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", default=DB_NAME)
    parser.add_argument("--no-live", action="store_true", help="skip the statements' round")
    args = parser.parse_args()

    os.environ["BILLING_INVOICE_PDFS"] = "0"
    django_setup(f"{PG}/{args.database}")
    from django.core.management import call_command

    from billing.admin.margins_so_far import margin_tile
    from billing.revenue import accruals
    from billing.revenue.earned import earned_window
    from billing.usage.metering import meter_cache
    from common.periods import month_start

    call_command("migrate", verbosity=0)  # a database loaded before the accruals' table
    loaded_month(args.customers)
    now = datetime.now(UTC)
    added = this_months_usage(args.customers, args.events_per_customer, now)
    print(f"this month's usage: {added:,} events before {now:%Y-%m-%d %H:%M} UTC")
    window = {"start": month_start(now), "end": now + timedelta(hours=1), "now": now}

    t0 = time.perf_counter()
    refreshed = accruals.accruals_refresh(now=now)
    print(
        f"accruals_refresh: {refreshed:,} subscriptions in {time.perf_counter() - t0:.1f} s "
        f"(the beat's task, every 10 minutes)"
    )
    with meter_cache.pinned():
        times, stored = rounds_of(args.rounds, lambda: earned_window(currency="USD", **window))
    line("earned_window, month so far, stored accruals", times, TARGET_SECONDS)
    total = stored.total
    print(
        f"  earned {total.earned} USD (billed {total.billed}, accrued {total.accrued}), "
        f"accrued as of {stored.accrued_as_of:%H:%M:%S}"
    )
    with meter_cache.pinned():
        times, together = rounds_of(
            args.rounds, lambda: earned_window(currency="USD", apart=False, **window)
        )
    line("earned_window for its total (apart=False: the tile's)", times, TARGET_SECONDS)
    print(f"  earned {together.total.earned} USD, the same: {together.total == stored.total}")
    times, _tile = rounds_of(args.rounds, lambda: margin_tile(now=now))
    line("dashboard margin tile (earned and costs)", times)
    if not args.no_live:
        accruals.ACCRUED_LIVE_LIMIT = 10**9
        with meter_cache.pinned():
            times, live = rounds_of(1, lambda: earned_window(currency="USD", **window))
        line("earned_window, month so far, every statement", times)
        print(f"  earned {live.total.earned} USD (accrued {live.total.accrued})")


if __name__ == "__main__":
    main()

"""Margins report benchmark on PostgreSQL (issue 51): N customers with a closed
month of usage on two or three meters each (one priced by a rate card) and cost
rates on every meter, then the report over that month, timed in rounds:
GET /api/v1/margins by customer, plan and meter and by a rate card's property,
the CSV (the admin's export, streamed: timed to its last line), lowest_margins,
the admin Margins page (its first page of 100 rows with the chart and lowest
margins, sorted by lowest margin, a later page, by plan) and the customer
list's margin column for a page of customers.

    .venv/bin/python bench/margins.py [--customers 10000] [--events-per-customer 6]
                                      [--rounds 5] [--profile] [--database NAME]
                                      [--keep | --reuse]

The load goes through the services the API and the close use, in bulk where
they allow it (bench/close.py's way): customers in one insert, subscriptions
one by one, events in batches of 1000, then one periods_close in 2 processes,
which writes and finalizes the invoices the report reads its revenue from.
Needs PostgreSQL (BENCH_PG); it creates and drops its own database (--database,
default `billing_bench_margins`). Prints figures, the target beside them, only.

The setup takes minutes (about 7 at 10,000 customers on 2 cores). `--keep`
leaves the database as loaded after the run; `--reuse` times the report again
on such a database without loading it (nor dropping it after), so before and
after a change can be timed back to back on the same data. A reused database
must be of the same month: the load closes the month before the current one.
"""

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.close import make_event
from bench.common import PG, django_setup, fresh_database, percentile, record
from bench.rate_card import (
    PRICE_BY,
    RATED_EVENT,
    RATED_METER,
    RATED_MODELS,
    card_plan_create,
    rated_meter_create,
    token_properties,
)

DB_NAME = "billing_bench_margins"
BATCH = 1000
PAGE = "/admin/billing/marginreport/"
TARGET_SECONDS = 2.0  # the margins page and API over 10,000 customers (issue 51)
# Demo plans (load_demo) and the card's, and the event of each one's meter.
PLANS = [
    ("ai_assistant", 1, "prompt"),
    ("team_hybrid", 5, "llm.completion"),
    ("api_commit", 1, "api.call"),
    ("card_overage", 1, RATED_EVENT),
]


def cost_rates_create(start: datetime, change: datetime) -> int:
    """What the provider charges: a rate a meter, from the month's start; on the
    card's meter one a model and token type for the first ten models (above the
    card's prices: some customers lose) and a default; and a price cut for
    model-00's input from `change` (a period split at its hour)."""
    from plans.cost_rules import cost_rate_create

    rates = [
        ("prompts", {}, "0.01", 1, start),
        ("api_calls", {}, "0.002", 1, start),
        ("llm_tokens", {}, "6", 1_000_000, start),
        ("llm_tokens", {"model": "gpt-4o"}, "5", 1_000_000, start),
        ("gpt4o_input_tokens", {}, "2.5", 1_000_000, start),
        ("gpt4o_output_tokens", {}, "10", 1_000_000, start),
        (RATED_METER, {}, "1.5", 1_000_000, start),
    ]
    for i, model in enumerate(RATED_MODELS[:10]):
        for token_type, cost in (("input", 2 + i), ("output", 5 + 4 * i)):
            when = {"model": model, "token_type": token_type}
            rates.append((RATED_METER, when, str(cost), 1_000_000, start))
    rates.append((RATED_METER, {"model": "model-00", "token_type": "input"}, "0.5", 10**6, change))
    for meter, when, unit_cost, per, effective_from in rates:
        cost_rate_create(
            meter=meter,
            when=when,
            unit_cost=Decimal(unit_cost),
            per=Decimal(per),
            currency="USD",
            effective_from=effective_from,
        )
    return len(rates)


def closed_month() -> tuple[datetime, datetime]:
    """The month the load closes: the one before the current UTC month."""
    from common.periods import month_start

    end = month_start(datetime.now(UTC))  # the first of this month
    return month_start(end, months=-1), end


def loaded_month(count: int) -> tuple[datetime, datetime]:
    """The closed month of a database loaded before (--reuse), checked to hold
    `count` of the load's customers and that month's finalized invoices."""
    from customers.models import Customer
    from invoices.models import Invoice

    start, end = closed_month()
    # The load's own (the demo catalog brings a few more).
    customers = Customer.objects.filter(external_id__startswith="cust_").count()
    invoices = Invoice.objects.filter(
        status=Invoice.FINALIZED, period_start__gte=start, period_end__lte=end
    ).count()
    if customers != count or not invoices:
        raise SystemExit(
            f"--reuse: the database holds {customers:,} customers and {invoices:,} finalized "
            f"invoices of {start:%Y-%m}; load it with --keep --customers {count} first"
        )
    print(f"reused: {customers:,} customers, {invoices:,} finalized invoices of {start:%Y-%m}")
    return start, end


def populate(count: int, events_per_customer: int) -> tuple[datetime, datetime]:
    """The load; returns the closed month [start, end)."""
    from django.core.management import call_command
    from django.db import connection

    from billing.invoicing.close import periods_close
    from billing.subscriptions.lifecycle import subscription_create
    from billing.usage.folding import usage_fold
    from billing.usage.ingestion import events_ingest
    from customers.models import Customer
    from invoices.models import Invoice, InvoiceLine
    from plans.models import Plan

    call_command("migrate", verbosity=0)
    call_command("load_demo", "--catalog-only", stdout=open(os.devnull, "w"))  # noqa: SIM115
    rated_meter_create()
    card_plan_create("card_overage", "overage", "per_unit")

    start, end = closed_month()
    rates = cost_rates_create(start, start + timedelta(days=14))
    plans = {p.code: p for p in Plan.objects.filter(code__in=[c for c, _, _ in PLANS])}

    t0 = time.perf_counter()
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"cust_{i:05d}", name=f"Customer {i}", currency="USD")
        for i in range(count)
    )
    events_of = []  # (external_id, the events it sends)
    for i, customer in enumerate(customers):
        code, seats, event_name = PLANS[i % len(PLANS)]
        subscription_create(customer=customer, plan=plans[code], start=start, seats=seats)
        # Its plan's meter, and tokens on the card's meter (billed on the card
        # plan, a cost only on the others); every third customer prompts too.
        names = [event_name] if event_name == RATED_EVENT else [event_name, RATED_EVENT]
        if i % 3 == 0 and event_name != "prompt":
            names.append("prompt")
        events_of.append((customer.external_id, names))
    print(
        f"setup: {count:,} customers and subscriptions ({', '.join(c for c, _, _ in PLANS)}), "
        f"{rates} cost rates, in {time.perf_counter() - t0:.1f} s"
    )

    rng = random.Random(51)
    span = (end - start).total_seconds()
    events = []
    for external_id, names in events_of:
        for k in range(events_per_customer):
            name = names[k % len(names)]
            moment = start + timedelta(seconds=rng.random() * span)
            if name == RATED_EVENT:
                event = {
                    "id": f"evt_{len(events)}",
                    "customer": external_id,
                    "event_name": name,
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "properties": token_properties(rng, unlisted=0.05),
                }
            else:
                event = make_event(rng, len(events), external_id, name, moment)
            events.append(event)
    t0 = time.perf_counter()
    for i in range(0, len(events), BATCH):
        result = events_ingest(events=events[i : i + BATCH], now=end)
        if result.rejected:
            raise RuntimeError(result.rejected[0])
    usage_fold(wait=True)
    print(f"usage: {len(events):,} events, ingested and folded in {time.perf_counter() - t0:.1f} s")

    os.environ["BILLING_INVOICE_PDFS"] = "0"
    t0 = time.perf_counter()
    closed = periods_close(as_of=end, processes=2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"close: {closed.periods_closed:,} periods closed, "
        f"{Invoice.objects.filter(status=Invoice.FINALIZED).count():,} invoices finalized, "
        f"{InvoiceLine.objects.count():,} lines, in {time.perf_counter() - t0:.1f} s"
    )
    return start, end


def timed(rounds: int, call) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
    return times, result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--events-per-customer", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one API call and the admin page 1, by customer",
    )
    parser.add_argument(
        "--database", default=DB_NAME, help=f"created and dropped (default {DB_NAME})"
    )
    kept = parser.add_mutually_exclusive_group()
    kept.add_argument("--keep", action="store_true", help="leave the loaded database after")
    kept.add_argument(
        "--reuse", action="store_true", help="time a database loaded with --keep, not loading it"
    )
    args = parser.parse_args()

    os.environ["BILLING_INVOICE_PDFS"] = "0"
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    database_url = f"{PG}/{args.database}" if args.reuse else fresh_database(args.database)
    django_setup(database_url)
    from django.contrib.auth import get_user_model
    from django.db import connections
    from django.test import Client

    from billing.admin.margins_so_far import customers_margin_texts
    from billing.margins.report import lowest_margins, margins, margins_csv
    from customers.api_keys import api_key_create
    from customers.models import Customer

    try:
        if args.reuse:
            start, end = loaded_month(args.customers)
        else:
            start, end = populate(args.customers, args.events_per_customer)
        _, secret = api_key_create(name="bench", scopes=["finance:read"])
        api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        admin = Client()
        user = get_user_model().objects.filter(username="bench").first()
        admin.force_login(
            user or get_user_model().objects.create_superuser("bench", "b@example.com", "x")
        )
        window = f"period_start={start:%Y-%m-%d}&period_end={end:%Y-%m-%d}&currency=USD"
        admin_window = (
            f"period_start={start:%Y-%m-%dT%H:%M}&period_end={end:%Y-%m-%dT%H:%M}&currency=USD"
        )

        def get(client, url: str):
            def call():
                response = client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.content[:300]}")
                if response.streaming:  # the CSV: timed to its last line
                    return b"".join(response.streaming_content)
                return response.content

            return call

        page = list(Customer.objects.order_by("-id")[:100])  # the customer list's first page
        cases = [
            ("API by customer", get(api, f"/api/v1/margins?{window}&group_by=customer"), True),
            ("API by plan", get(api, f"/api/v1/margins?{window}&group_by=plan"), True),
            ("API by meter", get(api, f"/api/v1/margins?{window}&group_by=meter"), True),
            ("API by model", get(api, f"/api/v1/margins?{window}&group_by={PRICE_BY[0]}"), True),
            (
                "admin Margins page 1 (customer)",
                get(admin, f"{PAGE}?{admin_window}&group_by=customer"),
                True,
            ),
            (
                "admin page 1 by lowest margin",
                get(admin, f"{PAGE}?{admin_window}&group_by=customer&sort=margin"),
                True,
            ),
            (
                "admin page 50 (no chart)",
                get(admin, f"{PAGE}?{admin_window}&group_by=customer&p=50"),
                True,
            ),
            (
                "admin page 1 by plan",
                get(admin, f"{PAGE}?{admin_window}&group_by=plan"),
                True,
            ),
            (
                "admin CSV (customer, streamed)",
                get(admin, f"{PAGE}?{admin_window}&format=csv"),
                True,
            ),
            (
                "margins() by customer",
                lambda: margins(start=start, end=end, group_by="customer", currency="USD"),
                False,
            ),
            (
                "customer list column (100)",
                lambda: customers_margin_texts(page, now=end - timedelta(minutes=30)),
                False,
            ),
        ]
        by_customer = margins(start=start, end=end, group_by="customer", currency="USD")
        cases += [
            ("lowest_margins (on the rows)", lambda: lowest_margins(by_customer, 5), False),
            (
                "margins_csv (on the rows)",
                lambda: margins_csv(by_customer, group_by="customer", currency="USD"),
                False,
            ),
        ]
        revenue = sum(r.revenue for r in by_customer)
        cost = sum(r.cost for r in by_customer)
        print(
            f"\nthe month {start:%Y-%m-%d} to {end:%Y-%m-%d}: {len(by_customer):,} customer rows, "
            f"revenue {revenue} USD, cost {cost} USD, "
            f"{sum(1 for r in by_customer if r.margin < 0):,} at a loss"
        )
        print(f"\n{args.rounds} rounds each (after one warm-up call), seconds:")
        worst = 0.0
        for title, call, targeted in cases:
            call()  # warm: caches, the plan of each statement
            times, result = timed(args.rounds, call)
            size = f", {len(result):,} bytes" if isinstance(result, bytes) else ""
            p50, high = percentile(times, 50), max(times)
            print(f"  {title:32} p50 {p50:6.3f}  max {high:6.3f}{size}")
            if targeted:
                worst = max(worst, high)
        words = record(
            f"margins API and page, {args.customers:,} customers, worst max",
            worst,
            "s",
            target=TARGET_SECONDS if args.customers >= 10_000 else None,
            higher=False,
        )
        print(f"\nslowest API or page answer: {worst:.3f} s {words}")
        if args.profile:
            profiled = [
                ("one API call by customer", f"/api/v1/margins?{window}&group_by=customer", api),
                ("the admin page 1 by customer", f"{PAGE}?{admin_window}&group_by=customer", admin),
            ]
            for title, url, client in profiled:
                profiler = cProfile.Profile()
                call = get(client, url)
                profiler.enable()
                call()
                profiler.disable()
                print(f"\nprofile of {title}, by cumulative time:")
                stats = pstats.Stats(profiler, stream=sys.stdout)
                stats.sort_stats("cumulative").print_stats(30)
                stats.sort_stats("tottime").print_stats(20)
    finally:
        connections.close_all()
        if not (args.keep or args.reuse):
            fresh_database(args.database)  # leave an empty database


if __name__ == "__main__":
    main()

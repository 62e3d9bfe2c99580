"""Distinct group values benchmark on PostgreSQL (issue 73): the reads of a customer
who sent 100,000 different `model` values, against a customer who sent as many
events over 5 models, with the limit of distinct values on (the default, 500) or
effectively off (`--limit 1000000`, what the code did before the limit).

One meter `tokens` (sum, grouped by model, invoice breakdown by model) on a plan of
one overage charge priced by a rate card by model (gpt-4o 2.50, the rest 4.00 per
1,000,000 tokens). Both customers are subscribed for November 2026 and send
`--events` events on November 20 to 26 (whole hours): "normal" over 5 models, "wide"
each event a model of its own. Measured in this process through Django's test client
(no server: the views' cost, not the network's), the median of `--repeat` calls
each, the two customers' calls in turn (so that both meet the same load on a shared
machine):

  check          POST /customers/{id}/check with properties {"model": "gpt-4o"}
  check default  the same with {"model": "unlisted"} (the card's default row)
  usage          GET /customers/{id}/usage
  usage by model GET /customers/{id}/usage?group_by=model (and its groups and bytes)
  portal         GET /portal/{token}/ (the customer's page)

then the period is closed (December 1) and each invoice's PDF rendered: its time,
pages and the breakdown's rows.

`--edge` (issue 92): the subscriptions start on November 20 at 10:30 (an
anniversary period) and every event falls in that partial first hour, so each read
meters it from the raw events (billing.usage.edges), the values past the limit
included; the clock stands at 12:00. Besides the reads above, the margins report of
every customer (`GET /margins`, by customer and by model) is timed with "normal"
alone and again once "wide" has sent its events (one customer must not slow the
others' report). No close in this mode.

    .venv/bin/python bench/groups.py [--events 100000] [--repeat 15] [--limit N]
        [--edge] [--database billing_bench_groups]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); creates
its own database (dropped first). Prints figures only.
"""

import argparse
import io
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_setup, fresh_database

DB_NAME = "billing_bench_groups"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
BATCH = 1000
MODELS = ["gpt-4o", "o1", "mini", "llama", "claude"]
# --edge: the period starts mid-hour; the events fall in its partial first hour.
EDGE_START = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
EDGE_NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MARGINS = "/api/v1/margins?period_start=2026-11-01&period_end=2026-12-01&group_by="


def catalog() -> object:
    """The meter and the plan (see the module); returns the plan."""
    from django.core.management import call_command

    from plans.pricing import PER_UNIT, PricingSpec
    from plans.rate_card_pricing import RateSpec
    from plans.services import meter_create, plan_create
    from plans.validation import ChargeSpec, VersionSpec

    call_command("migrate", verbosity=0)
    meter_create(
        code="tokens",
        name="Tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
        invoice_breakdown="model",
    )
    million = Decimal(1_000_000)
    rates = (
        RateSpec(
            when=(("model", "gpt-4o"),), pricing=PricingSpec(PER_UNIT, Decimal("2.50"), per=million)
        ),
        RateSpec(when=(), pricing=PricingSpec(PER_UNIT, Decimal("4.00"), per=million)),
    )
    charge = ChargeSpec("tokens", "overage", Decimal(0), price_by=("model",), rates=rates)
    version = plan_create(
        code="chat",
        name="Chat",
        version=VersionSpec(currency="USD", charges=(charge,)),
        publish=True,
    )
    return version.plan


def load(plan, name: str, events: int, *, edge: bool):
    """A customer subscribed to the plan, and its events (see the module)."""
    from django.core.management import call_command

    from billing.subscriptions.lifecycle import subscription_create
    from billing.usage.ingestion import events_ingest
    from customers.services import customer_create

    customer = customer_create(external_id=name, name=name.title(), currency="USD")
    subscription_create(customer=customer, plan=plan, start=EDGE_START if edge else NOV_1)
    now = EDGE_NOW if edge else NOW
    started = time.perf_counter()
    other = 0
    for first in range(0, events, BATCH):
        batch = [
            {
                "id": f"{name}-{i}",
                "customer": name,
                "event_name": "llm",
                # edge: 10:30:00 to 10:59:59 on November 20; else whole hours from
                # November 20, 00:00 to 26, 23:00
                "timestamp": (
                    EDGE_START + timedelta(seconds=i % 1800)
                    if edge
                    else NOV_20 + timedelta(hours=i % 168, seconds=i % 3600)
                ).isoformat(),
                "properties": {
                    "model": MODELS[i % 5] if name == "normal" else f"model-{i:06d}",
                    "tokens": 100,
                },
            }
            for i in range(first, min(first + BATCH, events))
        ]
        result = events_ingest(events=batch, now=now)
        assert not result.rejected, result.rejected[:3]
        other += len(result.other)
    call_command("fold_usage", verbosity=0)
    print(
        f"  loaded {name}: {events:,} events in {time.perf_counter() - started:.1f} s, "
        f"{other:,} counted under other"
    )
    return customer


def calls_of(client, name: str, token: str) -> dict:
    """The reads measured, for one customer: kind -> a call."""
    check = f"/api/v1/customers/{name}/check"
    return {
        "check": lambda: client.post(
            check,
            {"meter": "tokens", "quantity": "1", "properties": {"model": "gpt-4o"}},
            content_type="application/json",
        ),
        "check default": lambda: client.post(
            check,
            {"meter": "tokens", "quantity": "1", "properties": {"model": "unlisted"}},
            content_type="application/json",
        ),
        "usage": lambda: client.get(f"/api/v1/customers/{name}/usage"),
        "usage by model": lambda: client.get(f"/api/v1/customers/{name}/usage?group_by=model"),
        "portal": lambda: client.get(f"/portal/{token}/"),
    }


def client_of():
    from django.test import Client

    from customers.api_keys import api_key_create

    _, secret = api_key_create(name="bench")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="127.0.0.1")


def margins_times(client, repeat: int, now: datetime) -> dict[str, float]:
    """The margins report of every customer, by customer and by model: medians, ms."""
    import time_machine

    times = {}
    with time_machine.travel(now, tick=True):
        for by in ("customer", "model"):
            answer = client.get(MARGINS + by)  # warm
            assert answer.status_code == 200, (by, answer.status_code, answer.content[:300])
            runs = []
            for _ in range(repeat):
                started = time.perf_counter()
                client.get(MARGINS + by)
                runs.append((time.perf_counter() - started) * 1000)
            times[by] = statistics.median(runs)
    return times


def measure(client, customers: dict, repeat: int, now: datetime) -> None:
    """Each read of the two customers in turn, `repeat` times."""
    import time_machine

    from customers.portal_links import portal_session_create

    times: dict[tuple[str, str], list[float]] = {}
    extra: dict[str, str] = {}
    with time_machine.travel(now, tick=True):
        calls = {
            name: calls_of(client, name, portal_session_create(customer=c, now=now).token)
            for name, c in customers.items()
        }
        for kind in calls["normal"]:
            for name in calls:
                answer = calls[name][kind]()  # warm: caches filled as a running process has them
                assert answer.status_code == 200, (kind, answer.status_code, answer.content[:300])
                if kind == "usage by model":
                    groups = sum(len(line.get("groups") or ()) for line in answer.json()["lines"])
                    extra[name] = f"{groups:,} groups, {len(answer.content):,} bytes"
            for _ in range(repeat):
                for name in calls:
                    started = time.perf_counter()
                    calls[name][kind]()
                    times.setdefault((name, kind), []).append(
                        (time.perf_counter() - started) * 1000
                    )
    print(f"  {'read':15} {'normal ms':>10} {'wide ms':>10} {'wide/normal':>12}  (medians)")
    for kind in calls["normal"]:
        normal, wide = (statistics.median(times[name, kind]) for name in ("normal", "wide"))
        print(f"  {kind:15} {normal:10.1f} {wide:10.1f} {wide / normal:11.2f}x")
    for name, text in extra.items():
        print(f"  {name} usage by model: {text}")


def close_and_render(customers: dict) -> None:
    from pypdf import PdfReader

    from billing.invoicing.close import periods_close
    from invoices.models import Invoice
    from invoices.pdf import render_invoice_pdf

    started = time.perf_counter()
    periods_close(as_of=DEC_1)
    print(f"  close of both: {time.perf_counter() - started:.1f} s")
    for name, customer in customers.items():
        invoice = Invoice.objects.get(customer=customer, reason="period")
        line = next(line for line in invoice.lines.filter(meter="tokens") if line.breakdown)
        started = time.perf_counter()
        pdf = render_invoice_pdf(invoice)
        took = time.perf_counter() - started
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        groups = len(line.breakdown.get("groups", ()))
        print(
            f"  {name:8} invoice {invoice.total} USD, breakdown {groups} rows, "
            f"PDF {took:.2f} s, {pages} pages, {len(pdf):,} bytes"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--limit", type=int, default=None, help="BILLING_GROUP_VALUES_LIMIT")
    parser.add_argument("--edge", action="store_true", help="events in a partial first hour")
    parser.add_argument("--database", default=DB_NAME)
    args = parser.parse_args()
    if args.limit is not None:
        os.environ["BILLING_GROUP_VALUES_LIMIT"] = str(args.limit)
    django_setup(fresh_database(args.database))
    from django.conf import settings

    limit = settings.BILLING_GROUP_VALUES_LIMIT
    where = "the partial first hour of a period" if args.edge else "whole hours"
    print(f"groups benchmark: {args.events:,} events a customer in {where}, limit {limit:,}")
    plan = catalog()
    now = EDGE_NOW if args.edge else NOW
    client = client_of()
    customers = {"normal": load(plan, "normal", args.events, edge=args.edge)}
    alone = margins_times(client, args.repeat, now) if args.edge else {}
    customers["wide"] = load(plan, "wide", args.events, edge=args.edge)
    measure(client, customers, args.repeat, now)
    if args.edge:
        beside = margins_times(client, args.repeat, now)
        print(f"  {'margins by':15} {'normal ms':>10} {'+ wide ms':>10} {'ratio':>12}  (medians)")
        for by, ms in alone.items():
            print(f"  {by:15} {ms:10.1f} {beside[by]:10.1f} {beside[by] / ms:11.2f}x")
    else:
        close_and_render(customers)


if __name__ == "__main__":
    main()

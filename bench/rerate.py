"""Re-rating benchmark on PostgreSQL (issue 92): N customers on a token rate card, a
month of LiteLLM calls each (a share of them of a model the card does not name,
billed at its default row), the month closed; then the model is mapped and the
month re-rated: a dry run of every customer, the run applied (an invoice for the
difference each), the run again (nothing to do), and one customer's dry run.

    .venv/bin/python bench/rerate.py [--customers 200] [--calls-per-customer 200]
                                      [--unpriced 0.25] [--database NAME] [--profile]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it creates
and drops its own database (--database, default `billing_bench_rerate`). Prints
figures only."""

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_setup, fresh_database

CARD = {
    "meter": "llm_tokens",
    "model": "overage",
    "included_units": "0",
    "price_by": ["model", "token_type"],
    "rates": [
        {
            "when": {"model": "gpt-4o", "token_type": "input"},
            "pricing": {"scheme": "per_unit", "unit_price": "2.50", "per": "1000000"},
        },
        {"when": {}, "pricing": {"scheme": "per_unit", "unit_price": "1.00", "per": "1000000"}},
    ],
}
FINE_TUNE = "acme-ft-gpt-4o-2025"


def populate(customers: int, calls: int, unpriced: float, start: datetime) -> None:
    from django.core.management import call_command

    from billing.subscriptions.lifecycle import subscription_create
    from billing.usage.ingestion import events_ingest
    from customers.models import Customer
    from plans.models import Meter, Plan
    from plans.services import meter_create

    call_command("migrate", verbosity=0)
    meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation=Meter.SUM,
        value_property="tokens",
        group_by=["model", "token_type"],
    )
    from rest_framework.test import APIClient

    from customers.api_keys import api_key_create

    _key, secret = api_key_create(name="bench", scopes=["admin"])
    client = APIClient(SERVER_NAME="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    created = client.post(
        "/api/v1/plans", plan | {"publish": True, "charges": [CARD]}, format="json"
    )
    assert created.status_code == 201, created.content
    made = Customer.objects.bulk_create(
        Customer(external_id=f"c{i:05d}", name=f"Customer {i}", currency="USD")
        for i in range(customers)
    )
    tokens = Plan.objects.get(code="tokens")
    for customer in made:
        subscription_create(customer=customer, plan=tokens, start=start)
    rng = random.Random(42)
    span = 30 * 24 * 3600
    events = []
    for customer in made:
        for n in range(calls):
            fine_tune = rng.random() < unpriced
            events.append(
                {
                    "id": f"{customer.external_id}-{n}:input",
                    "customer": customer.external_id,
                    "event_name": "llm.tokens",
                    "timestamp": start + timedelta(seconds=rng.random() * span),
                    "properties": {
                        "model": FINE_TUNE if fine_tune else "gpt-4o",
                        "token_type": "input",
                        "tokens": rng.randint(1_000, 100_000),
                        "source": "litellm",
                        "source_model": FINE_TUNE if fine_tune else "openai/gpt-4o",
                    },
                }
            )
    t0 = time.perf_counter()
    for first in range(0, len(events), 1000):
        result = events_ingest(events=events[first : first + 1000], now=start + timedelta(31))
        assert not result.rejected, result.rejected[:3]
    print(f"ingested {len(events):,} events in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--calls-per-customer", type=int, default=200)
    parser.add_argument("--unpriced", type=float, default=0.25)
    parser.add_argument("--database", default="billing_bench_rerate")
    parser.add_argument("--profile", action="store_true", help="the dry run's top functions")
    args = parser.parse_args()
    django_setup(fresh_database(args.database))

    from django.conf import settings

    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    from billing.integrations.ingest import source_row
    from billing.integrations.mapping import mapping_save
    from billing.invoicing.close import periods_close
    from billing.invoicing.rerating import usage_rerate
    from billing.usage.folding import usage_fold
    from customers.models import Customer
    from invoices.models import Invoice

    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 2, 1, tzinfo=UTC)
    populate(args.customers, args.calls_per_customer, args.unpriced, start)
    usage_fold(wait=True)
    t0 = time.perf_counter()
    periods_close(as_of=end)
    print(f"closed {args.customers:,} periods in {time.perf_counter() - t0:.1f} s")
    mapping_save(source_row("litellm"), {"models": {FINE_TUNE: "gpt-4o"}}, by="bench")
    now = datetime.now(UTC)

    def timed(what: str, **options):
        t0 = time.perf_counter()
        rerating = usage_rerate(start=start, end=end, now=now, **options)
        elapsed = time.perf_counter() - t0
        issued = sum(1 for row in rerating.rows if row.issued is not None)
        print(
            f"{what}: {elapsed:.2f} s, {len(rerating.rows):,} periods, "
            f"{rerating.renamed.events:,} events renamed, {issued:,} documents, "
            f"total difference {rerating.total_difference()}"
        )

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(usage_rerate, start=start, end=end, now=now, dry_run=True)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    timed("dry run, every customer", dry_run=True)
    one = Customer.objects.order_by("pk").first()
    timed("dry run, one customer", dry_run=True, customer=one)
    timed("applied, every customer", dry_run=False)
    timed("applied again, every customer", dry_run=False)
    print(f"correction invoices: {Invoice.objects.filter(reason='correction').count():,}")


if __name__ == "__main__":
    main()

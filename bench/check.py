"""Check-endpoint benchmark on PostgreSQL: "may this customer do this now?" for
each consumption model, through the real HTTP server, one request at a time
(latency, not throughput), with usage in the current period.

    .venv/bin/python bench/check.py [--requests 2000] [--events-per-customer 20000]

Customers (demo catalog, plans/management/commands/load_demo.py):
  hard_cap  sms_starter, used below its cap
  overage   ai_assistant, past its allowance
  credits   agents, with a pack bought and usage drawn
  balance   gpt4o_prepaid, with money topped up and usage drawn
  spend     ai_assistant with a spend limit (the check also rates the period)
  mid_hour  ai_assistant subscribed at 00:30: its period's first partial hour is read
            from the raw events on every check

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it creates
its own database `billing_bench_check`. Prints figures only.
"""

import argparse
import http.client
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Gunicorn, django_setup, fresh_database, percentile

DB_NAME = "billing_bench_check"
PORT = 8771
BATCH = 1000
# name -> (plan, meter checked, event name, properties of one event)
CASES = {
    "hard_cap": ("sms_starter", "sms", "sms.sent", {}),
    "overage": ("ai_assistant", "prompts", "prompt", {}),
    "credits": ("agents", "agent_runs", "agent.run", {}),
    "balance": (
        "gpt4o_prepaid",
        "gpt4o_input_tokens",
        "llm.completion",
        {"model": "gpt-4o", "input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
    ),
    "spend": ("ai_assistant", "prompts", "prompt", {}),
    # Subscribed at 00:30: its period starts mid-hour (anniversary billing), so every
    # check also reads that partial hour's raw events.
    "mid_hour": ("ai_assistant", "prompts", "prompt", {}),
}


def load(events_per_customer: int) -> str:
    from django.core.management import call_command

    from billing.subscriptions.lifecycle import subscription_create
    from billing.usage.ingestion import events_ingest
    from customers.api_keys import api_key_create
    from customers.services import customer_create
    from plans.models import CreditPack, Plan
    from wallets.purchases import credit_pack_purchase, money_top_up

    call_command("migrate", verbosity=0)
    call_command("load_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now - start < timedelta(hours=2):
        start -= timedelta(days=1)  # enough room before now for the events
    rng = random.Random(7)
    for name, (plan, _, event_name, properties) in CASES.items():
        customer = customer_create(
            external_id=f"bench_{name}",
            name=name,
            currency="USD",
            spend_limit=Decimal("1000000") if name == "spend" else None,
        )
        subscribed = start + timedelta(minutes=30) if name == "mid_hour" else start
        subscription_create(customer=customer, plan=Plan.objects.get(code=plan), start=subscribed)
        if name == "credits":
            for _ in range(events_per_customer // 100 + 2):
                credit_pack_purchase(
                    customer=customer, pack=CreditPack.objects.get(code="runs_100"), now=now
                )
        if name == "balance":
            money_top_up(customer=customer, amount=Decimal("100000.00"), currency="USD", now=now)
        # Hard caps stay under their cap so that every check reads the counter.
        count = 400 if name == "hard_cap" else events_per_customer
        span = (now - subscribed).total_seconds() - 60
        events = [
            {
                "id": f"{name}_{i}",
                "customer": customer.external_id,
                "event_name": event_name,
                "timestamp": (subscribed + timedelta(seconds=rng.uniform(0, span))).isoformat(),
                "properties": properties,
            }
            for i in range(count)
        ]
        for first in range(0, count, BATCH):
            result = events_ingest(events=events[first : first + BATCH], now=now)
            if result.rejected:
                raise RuntimeError(f"{name}: {result.rejected[0]}")
    _, secret = api_key_create(name="bench", scopes=["read"])
    return secret


def measure(key: str, name: str, requests: int) -> tuple[list[float], dict]:
    _, meter, _, _ = CASES[name]
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = json.dumps({"meter": meter, "quantity": "1"})
    path = f"/api/v1/customers/bench_{name}/check"
    latencies = []
    answer = {}
    for _ in range(requests):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - t0)
        if response.status != 200:
            raise RuntimeError(f"{name}: {response.status} {payload[:300]!r}")
        answer = json.loads(payload)
    conn.close()
    return latencies, answer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--events-per-customer", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    database_url = fresh_database(DB_NAME)
    django_setup(database_url)
    t0 = time.perf_counter()
    key = load(args.events_per_customer)
    print(
        f"loaded {len(CASES)} customers, {args.events_per_customer:,} events each "
        f"in the current period ({time.perf_counter() - t0:.1f} s)"
    )
    server = Gunicorn(database_url, port=PORT, workers=args.workers)
    try:
        print(f"gunicorn, {args.workers} sync workers; {args.requests:,} sequential checks each")
        print(f"{'model':<10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  answer")
        every = []
        for name in CASES:
            measure(key, name, 50)  # warm the workers' caches
            latencies, answer = measure(key, name, args.requests)
            every += latencies
            ms = [v * 1000 for v in latencies]
            print(
                f"{name:<10} {percentile(ms, 50):>8.2f} {percentile(ms, 99):>8.2f} "
                f"{max(ms):>8.2f}  {answer['allowed']} {answer['reason']} used={answer['used']}"
            )
        ms = [v * 1000 for v in every]
        print(f"{'all':<10} {percentile(ms, 50):>8.2f} {percentile(ms, 99):>8.2f} {max(ms):>8.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

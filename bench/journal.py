"""Journal export benchmark on PostgreSQL (issue 54): a month of 100,000
invoices, each finalized (receivable, revenue, tax) and paid (clearing,
receivable), is 500,000 journal entries; GET /api/v1/journal.csv for the month,
plain and ?format=xero, timed in rounds, with the process's peak memory before
and after (the export streams from a server-side cursor: memory must not grow
with the month) and the bytes' SHA-256 (the same range twice: the same file).
Then journal_write's own cost, per document, on documents shaped as an
invoice's.

    .venv/bin/python bench/journal.py [--invoices 100000] [--rounds 2] [--database NAME]

The entries are inserted in one INSERT ... SELECT shaped as the writer writes
them (the writer itself is timed apart, on --documents of them). Needs
PostgreSQL (BENCH_PG); creates and drops its own database (default
`billing_bench_journal`). Prints figures, the target beside them, only.
"""

import argparse
import hashlib
import resource
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_setup, fresh_database, record

DB_NAME = "billing_bench_journal"
CUSTOMERS = 10_000
TARGET_SECONDS = 60.0  # a month of 100,000 invoices as CSV (issue 54)

# line, document type, key prefix, kind, meter, tax rate, account, name, debit, credit
# (net: the invoice's amount before tax; tax: its 20 %).
ROWS_SQL = """
INSERT INTO billing_journalentry (date, document_date, document_type, document,
  document_key, line, customer_id, kind, meter, plan, tax_rate, account, account_name,
  debit, credit, currency, memo, written_at)
SELECT day, day, l.type, 'INV-2026-' || lpad(i::text, 6, '0'), l.prefix || i, l.line,
  %(first)s + i %% %(customers)s, l.kind, l.meter, '', l.tax_rate, l.account, l.name,
  CASE l.side WHEN 'debit' THEN l.share * net ELSE 0 END,
  CASE l.side WHEN 'credit' THEN l.share * net ELSE 0 END,
  'USD', CASE l.type WHEN 'payment' THEN 'bank-' || i ELSE '' END, now()
FROM (SELECT i, DATE '2026-11-01' + (i %% 30) AS day, ((i %% 9000) + 100) / 100.0 AS net
      FROM generate_series(1, %(invoices)s) AS i) AS invoice,
  (VALUES
    (0, 'invoice', 'invoice:', 'revenue', 'api_calls', '', '4000', 'Revenue', 'credit', 1.0),
    (1, 'invoice', 'invoice:', 'tax_payable', '', 'vat', '2200', 'Tax payable', 'credit', 0.2),
    (2, 'invoice', 'invoice:', 'receivable', '', '', '1100', 'Accounts receivable', 'debit', 1.2),
    (0, 'payment', 'payment:', 'payments_clearing', '', '', '1200', 'Payments clearing',
     'debit', 1.2),
    (1, 'payment', 'payment:', 'receivable', '', '', '1100', 'Accounts receivable',
     'credit', 1.2)
  ) AS l(line, type, prefix, kind, meter, tax_rate, account, name, side, share)
"""


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(invoices: int) -> int:
    from django.db import connection

    from customers.models import Customer

    customers = Customer.objects.bulk_create(
        Customer(external_id=f"cust_{i:05d}", name=f"Customer {i}", currency="USD")
        for i in range(CUSTOMERS)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            ROWS_SQL, {"first": customers[0].pk, "customers": CUSTOMERS, "invoices": invoices}
        )
        cursor.execute("ANALYZE billing_journalentry")
        cursor.execute("SELECT count(*) FROM billing_journalentry")
        return cursor.fetchone()[0]


def export(client, query: str) -> tuple[float, float, int, str, int]:
    """Wall seconds, this process's CPU seconds (the web worker's share: on a
    shared machine the wall clock also counts waiting for a core), bytes,
    their SHA-256 and lines."""
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get(f"/api/v1/journal.csv?{query}", SERVER_NAME="localhost")
    assert response.status_code == 200, response.status_code
    digest, size, lines = hashlib.sha256(), 0, 0
    for chunk in response.streaming_content:
        digest.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    return elapsed, time.process_time() - cpu, size, digest.hexdigest(), lines


def writer_cost(documents: int) -> float:
    from django.db import transaction

    from billing.journal.writer import Document, Leg, journal_write
    from customers.models import Customer

    customer = Customer.objects.order_by("pk").first()
    now = datetime(2026, 11, 30, tzinfo=UTC)
    started = time.perf_counter()
    with transaction.atomic():
        for n in range(documents):
            journal_write(
                document=Document("invoice", f"B-{n}", f"bench:{n}", customer.pk, "USD", now),
                legs=[
                    Leg("revenue", Decimal("-10.00"), meter="api_calls"),
                    Leg("tax_payable", Decimal("-2.00"), tax_rate="vat"),
                    Leg("receivable", Decimal("12.00")),
                ],
                now=now,
            )
    return (time.perf_counter() - started) / documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--database", default=DB_NAME)
    args = parser.parse_args()
    django_setup(fresh_database(args.database))
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from customers.api_keys import api_key_create

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    entries = load(args.invoices)
    loaded = time.perf_counter() - started
    print(f"loaded {args.invoices:,} invoices, {entries:,} entries in {loaded:.1f} s")
    _key, secret = api_key_create(name="bench", scopes=["finance:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    month = "from=2026-11-01&to=2026-12-01"
    for name, query in (("csv", month), ("xero", f"{month}&format=xero")):
        digests = set()
        for round_ in range(args.rounds):
            before = peak_mb()
            seconds, cpu, size, digest, lines = export(client, query)
            digests.add(digest)
            words = record(
                f"journal {name} export, {args.invoices:,} invoices",
                seconds,
                "s",
                target=TARGET_SECONDS,
                higher=False,
            )
            print(
                f"{name} round {round_ + 1}: {seconds:.1f} s ({cpu:.1f} s CPU here), "
                f"{size / 1e6:.1f} MB, "
                f"{lines:,} lines, peak memory {before:.0f} -> {peak_mb():.0f} MB, {words}"
            )
        print(f"{name}: {'the same bytes' if len(digests) == 1 else 'DIFFERENT bytes'} each round")
    per = writer_cost(args.documents)
    print(f"journal_write: {per * 1000:.2f} ms a 3-entry document ({args.documents:,} documents)")


if __name__ == "__main__":
    main()

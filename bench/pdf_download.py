"""PDF download benchmark on PostgreSQL: invoices and credit notes downloaded
through the real HTTP server (GET /api/v1/invoices/{id}/pdf and
/api/v1/credit-notes/{id}/pdf), one request at a time (latency, not throughput).

    .venv/bin/python bench/pdf_download.py [--documents 30] [--rounds 5]
        [--server granian|gunicorn] [--workers 2] [--database billing_bench_pdf_download]
        [--port 8772]

Two sets of documents, each of `--documents` customers (English, French and German,
in three time zones) with one finalized invoice of seven lines and one credit note:
a third of the invoices voided (the void's credit note), a third credited one line,
a third paid and then credited two lines (to the credit balance).

- issued: issued with their PDFs on, as in production; the renders their issue
  enqueues (the invoice's, the credit note's, the void's) run in this process, as a
  worker would run them, before the server starts;
- not stored: issued the same way with no PDF stored (documents issued before
  stored PDFs existed, or whose render task has not run yet: the queue is behind,
  the worker is down).

Each document of the first set is downloaded `--rounds` times, in a shuffled order;
each of the second set once (its first download), then `--rounds` times more. Prints
p50/p95/max latency per kind (invoices, voided invoices, credit notes) and the
server's CPU per request, beside the target (a download's p95 under 200 ms), and how
many documents have a stored PDF before and after the downloads.

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it creates
its own database (`--database`, dropped first) and stores the PDFs in a temporary
directory (MEDIA_ROOT, the server's too) that it removes. Prints figures only.
"""

import argparse
import gc
import http.client
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Server,
    add_server_arguments,
    cpu_seconds,
    django_setup,
    fresh_database,
    percentile,
    record,
)
from bench.pdf import setup

DB_NAME = "billing_bench_pdf_download"
PORT = 8772
# The issue's target: a download's p95, in ms.
TARGET_P95_MS = 200
ISSUED_AT = datetime(2026, 12, 3, 10, tzinfo=UTC)
LOCALES = [("en", "America/New_York"), ("fr", "Europe/Paris"), ("de", "Europe/Berlin")]
# kind -> its title in the output
KINDS = {"invoice": "invoices", "void": "voided invoices", "credit_note": "credit notes"}


def issue(prefix: str, count: int, *, pdfs: bool) -> list[tuple[str, str]]:
    """`count` customers, each with a finalized invoice and a credit note on it (see
    the docstring), their PDFs rendered as they are issued when `pdfs`. Returns
    (kind, path) of each document's download."""
    from django.conf import settings

    from invoices import credit_notes, services, settlement
    from invoices.models import Invoice

    settings.BILLING_INVOICE_PDFS = pdfs

    def details(n: int) -> dict:
        locale, zone = LOCALES[n % len(LOCALES)]
        return {"locale": locale, "timezone_name": zone}

    ids = setup(count, prefix=prefix, details=details)
    documents = []
    for n, invoice_id in enumerate(ids):
        invoice = Invoice.objects.get(pk=invoice_id)
        lines = list(invoice.lines.order_by("position"))
        if n % 3 == 0:
            note = services.invoice_void(invoice=invoice, reason="billed twice", now=ISSUED_AT)
            documents.append(("void", f"/api/v1/invoices/{invoice_id}/pdf"))
        else:
            if n % 3 == 2:
                settlement.invoice_mark_paid(invoice=invoice, reference=f"TR-{n}", now=ISSUED_AT)
            note = credit_notes.credit_note_issue(
                invoice=invoice,
                lines=[
                    credit_notes.CreditLineInput(line.pk, line.amount) for line in lines[: n % 3]
                ],
                reason="product_unsatisfactory",
                memo="Outage on 28 November",
                now=ISSUED_AT + timedelta(hours=1),
            )
            documents.append(("invoice", f"/api/v1/invoices/{invoice_id}/pdf"))
        documents.append(("credit_note", f"/api/v1/credit-notes/{note.pk}/pdf"))
    return documents


def stored_counts(prefix: str) -> str:
    from invoices.models import CreditNote, Invoice

    invoices = Invoice.objects.filter(customer__external_id__startswith=f"{prefix}_")
    notes = CreditNote.objects.filter(customer__external_id__startswith=f"{prefix}_")
    return (
        f"{invoices.exclude(pdf_sha256='').count()}/{invoices.count()} invoices and "
        f"{notes.exclude(pdf_sha256='').count()}/{notes.count()} credit notes have a stored PDF"
    )


def download(conn: http.client.HTTPConnection, key: str, path: str) -> float:
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    content = response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200 or not content.startswith(b"%PDF-"):
        raise RuntimeError(f"{path}: {response.status} {content[:300]!r}")
    return elapsed


def measure(
    server: Server, key: str, documents: list[tuple[str, str]], rounds: int, seed: int
) -> tuple[dict[str, list[float]], float]:
    """Each document downloaded `rounds` times, each round in its own shuffled order:
    latencies by kind, and the server's CPU seconds per request."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    gc.collect()
    gc.freeze()
    before = cpu_seconds(server.pids())
    for _ in range(rounds):
        order = list(documents)
        rng.shuffle(order)
        for kind, path in order:
            latencies[kind].append(download(conn, key, path))
    used = cpu_seconds(server.pids()) - before
    conn.close()
    return latencies, used / (rounds * len(documents))


def table(title: str, latencies: dict[str, list[float]], cpu: float) -> None:
    print(f"\n{title} (server CPU {cpu * 1000:.1f} ms a request)")
    print(f"{'':<16} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, label in [*KINDS.items(), ("all", "all")]:
        values = [v * 1000 for k, vs in latencies.items() if kind in ("all", k) for v in vs]
        print(
            f"{label:<16} {len(values):>6} {percentile(values, 50):>8.1f} "
            f"{percentile(values, 95):>8.1f} {max(values):>8.1f}"
        )


def p95_ms(latencies: dict[str, list[float]]) -> float:
    return percentile([v * 1000 for vs in latencies.values() for v in vs], 95)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=30, help="customers in each set")
    parser.add_argument("--rounds", type=int, default=5)
    add_server_arguments(parser, workers=2)
    parser.add_argument("--database", default=DB_NAME, help="dropped and created again")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()

    media = Path(tempfile.mkdtemp(prefix="billing-bench-pdf-download-"))
    os.environ["MEDIA_ROOT"] = str(media)
    # An email would render (or store) a PDF for its attachment: none is sent here.
    os.environ["BILLING_INVOICE_EMAILS"] = "0"
    database_url = fresh_database(args.database)
    django_setup(database_url)
    # Each void's render logs that its VOID PDF replaces the one issued: expected here.
    logging.getLogger("invoices.rendering").setLevel(logging.ERROR)
    from django.core.management import call_command
    from django.db import connections

    from customers.api_keys import api_key_create

    server = None
    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        issued = issue("issued", args.documents, pdfs=True)
        old = issue("old", args.documents, pdfs=False)
        _, key = api_key_create(name="bench", scopes=["read"])
        print(
            f"setup: 2 x {args.documents} invoices and credit notes in "
            f"{time.perf_counter() - t0:.1f} s; issued: {stored_counts('issued')}; "
            f"not stored: {stored_counts('old')}"
        )
        connections.close_all()
        server = Server(
            database_url,
            port=args.port,
            workers=args.workers,
            threads=args.threads,
            kind=args.server,
        )
        print(server.describe() + "; sequential downloads, one connection")
        # Each worker's first requests (imports, connections), not counted.
        measure(server, key, issued[:1], 4 * args.workers, seed=0)

        latencies, cpu = measure(server, key, issued, args.rounds, seed=1)
        table(f"issued, stored as issued: {args.rounds} downloads each", latencies, cpu)
        p95 = p95_ms(latencies)
        print(
            f"p95 {p95:.1f} ms; "
            + record("PDF download p95, issued", p95, "ms", target=TARGET_P95_MS, higher=False)
        )

        first, cpu = measure(server, key, old, 1, seed=2)
        table("not stored: first download", first, cpu)
        again, cpu = measure(server, key, old, args.rounds, seed=3)
        table(f"not stored: {args.rounds} downloads more each", again, cpu)
        p95 = p95_ms(again)
        print(
            f"p95 {p95:.1f} ms; "
            + record(
                "PDF download p95, after a first download",
                p95,
                "ms",
                target=TARGET_P95_MS,
                higher=False,
            )
        )
        print(f"\nafter the downloads, not stored: {stored_counts('old')}")
        rss, peak = server.memory_mib()
        print(f"server memory: {rss:.0f} MiB now, {peak:.0f} MiB at peak (all processes)")
    finally:
        if server is not None:
            server.stop()
        connections.close_all()
        fresh_database(args.database)  # leave an empty database
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Invoice PDF benchmark on PostgreSQL: N finalized one-page invoices, their PDFs
rendered and stored the way the worker does it (the task invoices.tasks.
render_invoice_pdf: load, render, store, record), first in one process, then in
--processes processes as a Celery worker with `--concurrency N` runs them, and
with --broker by a real Celery worker. Prints one-page invoice PDFs per second.

    .venv/bin/python bench/pdf.py [--invoices 60] [--processes 2]
                                  [--broker redis://127.0.0.1:6379/9] [--fonttools-subset]
                                  [--database NAME]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it
creates and drops its own database (--database, default `billing_bench_pdf`), and
stores the PDFs in a temporary directory it removes. Prints figures, the targets
beside them, only.
"""

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, django_setup, fresh_database, record

DB_NAME = "billing_bench_pdf"
PERIOD_START = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 1, tzinfo=UTC)
FINALIZED_AT = datetime(2026, 12, 1, 6, tzinfo=UTC)
# Targets (issue 21): PDFs per second in one process and in two.
TARGET_ONE, TARGET_TWO = 12, 20
CITIES = [("10115", "Berlin", "DE"), ("75001", "Paris", "FR"), ("94107", "San Francisco")]


def invoice_lines(n: int) -> list:
    """A team plan's month: base fee, seats, token and request usage, an overage."""
    from plans.rating import LineInput

    seats = 3 + n % 7
    tokens_in = Decimal(1_000_000 + 7_919 * n)
    tokens_out = Decimal(250_000 + 3_571 * n)
    requests = Decimal(12_000 + 97 * n)
    lines = [
        ("base_fee", "Team Hybrid (Dec 2026)", None, Decimal(1), Decimal("49.00")),
        ("seats", f"Seats x {seats} (Dec 2026)", None, Decimal(seats), Decimal("12.00")),
        ("usage", "GPT-4o input tokens", "gpt4o_in", tokens_in, Decimal("0.0000025")),
        ("usage", "GPT-4o output tokens", "gpt4o_out", tokens_out, Decimal("0.00001")),
        ("usage", "GPT-4o-mini input tokens", "mini_in", tokens_in * 3, Decimal("0.00000015")),
        ("usage", "Embedding requests", "embed", requests, Decimal("0.0001")),
        ("overage", "Agent runs over 500 included", "agent_runs", Decimal(40 + n), Decimal("0.02")),
    ]
    return [
        LineInput(kind, description, meter, quantity, price, quantity * price)
        for kind, description, meter, quantity, price in lines
    ]


def bench_customer(n: int, *, prefix: str = "cust", **details):
    """The n-th customer of a PDF benchmark: an address in one of CITIES, an email
    and a tax id; `details`: more of customer_create's arguments."""
    from customers.services import customer_create

    postal_code, city, *country = CITIES[n % len(CITIES)]
    return customer_create(
        external_id=f"{prefix}_{n:04d}",
        name=f"Customer {n} Ltd",
        currency="USD",
        email=f"ap@customer{n}.example",
        address={"line1": f"{n + 1} Market Street", "postal_code": postal_code, "city": city}
        | ({"country": country[0]} if country else {}),
        tax_id=f"VAT{n:08d}",
        **details,
    )


def setup(count: int, *, prefix: str = "cust", details=None) -> list[int]:
    """`count` customers (bench_customer, with `details(n)` of the n-th when given),
    each with an invoice of invoice_lines(n), finalized: their ids, in order."""
    from invoices.models import Invoice
    from invoices.services import invoice_write_draft, invoices_finalize_due

    for n in range(count):
        invoice_write_draft(
            customer=bench_customer(n, prefix=prefix, **(details(n) if details else {})),
            subscription=None,
            reason=Invoice.PERIOD,
            period_start=PERIOD_START,
            period_end=PERIOD_END,
            lines=invoice_lines(n),
            now=PERIOD_END,
        )
    invoices_finalize_due(cutoff=PERIOD_END, now=FINALIZED_AT)
    mine = Invoice.objects.filter(customer__external_id__startswith=f"{prefix}_")
    return list(mine.order_by("id").values_list("id", flat=True))


def reset(media: Path) -> None:
    """Forget every stored PDF, so that the next round renders them all again."""
    from invoices.models import Invoice

    Invoice.objects.update(pdf_file="", pdf_sha256="", pdf_rendered_at=None)
    shutil.rmtree(media / "invoices", ignore_errors=True)


def check(ids: list[int]) -> int:
    """Every invoice has its PDF stored, of one page; returns their total size."""
    from django.core.files.storage import default_storage
    from pypdf import PdfReader

    from invoices.models import Invoice

    size = 0
    rendered = Invoice.objects.filter(pk__in=ids).exclude(pdf_sha256="")
    if rendered.count() != len(ids):
        raise RuntimeError(f"{len(ids) - rendered.count()} invoices have no PDF")
    for invoice in rendered:
        with default_storage.open(invoice.pdf_file.name, "rb") as file:
            content = file.read()
        pages = len(PdfReader(BytesIO(content)).pages)
        if pages != 1:
            raise RuntimeError(f"{invoice.number} has {pages} pages, not one")
        size += len(content)
    return size


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# The pool: a Celery worker's prefork processes, each taking one task at a time.


def _worker_start(barrier, first_id: int) -> None:
    """Like a worker process that has rendered before: the renderer is built and
    warm (its first document pays for parsing the stylesheet and trimming the font)."""
    from django.db import connections

    from invoices.models import Invoice
    from invoices.pdf import render_invoice_pdf

    connections.close_all()  # the parent's connection is not shared
    render_invoice_pdf(Invoice.objects.get(pk=first_id))
    barrier.wait()


def _worker_render(invoice_id: int) -> tuple[float, float]:
    from invoices.tasks import render_invoice_pdf

    started = time.process_time()
    render_invoice_pdf(invoice_id)
    return time.process_time() - started, peak_rss_mib()


def in_pool(ids: list[int], processes: int) -> tuple[float, list[tuple[float, float]]]:
    from django.db import connections

    connections.close_all()
    context = mp.get_context("fork")
    barrier = context.Barrier(processes + 1)
    with context.Pool(processes, initializer=_worker_start, initargs=(barrier, ids[0])) as pool:
        barrier.wait()
        started = time.perf_counter()
        results = list(pool.imap_unordered(_worker_render, ids, chunksize=1))
        elapsed = time.perf_counter() - started
    return elapsed, results


# A real worker.


def wait_rendered(ids: list[int]) -> None:
    """Until every one of these invoices has its PDF recorded (no result backend)."""
    from invoices.models import Invoice

    pending = Invoice.objects.filter(pk__in=ids, pdf_sha256="")
    deadline = time.monotonic() + 600
    while pending.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not render every invoice in 10 minutes")
        time.sleep(0.02)


def with_celery_worker(ids: list[int], processes: int, env: dict, media: Path) -> float:
    from config.celery import BULK_QUEUE, app
    from invoices.tasks import render_invoice_pdf

    worker = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            BULK_QUEUE,  # where the PDFs go (config.celery)
            "--concurrency",
            str(processes),
            "--loglevel",
            "warning",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    app.conf.task_always_eager = False
    try:
        app.control.purge()
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start")
        # Warm its processes up (a long-running worker has rendered before), then
        # start again from nothing stored.
        warm = ids[: processes * 3]
        for invoice_id in warm:
            render_invoice_pdf.delay(invoice_id)
        wait_rendered(warm)
        reset(media)
        started = time.perf_counter()
        for invoice_id in ids:
            render_invoice_pdf.delay(invoice_id)
        wait_rendered(ids)
        return time.perf_counter() - started
    finally:
        app.conf.task_always_eager = True
        worker.terminate()
        worker.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=60)
    parser.add_argument(
        "--processes", type=int, default=2, help="like `celery worker --concurrency N`"
    )
    parser.add_argument(
        "--broker", default="", help="also time a real Celery worker on this broker (Redis)"
    )
    parser.add_argument(
        "--fonttools-subset",
        action="store_true",
        help="subset fonts with fontTools, as WeasyPrint does without libharfbuzz-subset "
        "(not for the real worker)",
    )
    parser.add_argument(
        "--database", default=DB_NAME, help=f"created and dropped (default {DB_NAME})"
    )
    args = parser.parse_args()

    media = Path(tempfile.mkdtemp(prefix="billing-bench-pdf-"))
    os.environ["MEDIA_ROOT"] = str(media)
    # Finalizing the invoices below must not render them already (nor email them,
    # which would render each one for its attachment).
    os.environ["BILLING_INVOICE_PDFS"] = "0"
    os.environ["BILLING_INVOICE_EMAILS"] = "0"
    if args.broker:
        os.environ["CELERY_BROKER_URL"] = args.broker
    database_url = fresh_database(args.database)
    django_setup(database_url)
    from django.core.management import call_command
    from django.db import connections

    from invoices.pdf import render_invoice_pdf
    from invoices.pdf_renderer import subsets_with_harfbuzz
    from invoices.tasks import render_invoice_pdf as render_task

    if args.fonttools_subset:
        from weasyprint.pdf import fonts

        fonts.harfbuzz_subset = None  # before any render, and inherited by the pool
    print(
        "font subsets: "
        + (
            "HarfBuzz (libharfbuzz-subset), full DejaVu Sans"
            if subsets_with_harfbuzz()
            else "fontTools (no libharfbuzz-subset), DejaVu Sans trimmed once per process"
        )
    )

    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        ids = setup(args.invoices)
        print(
            f"setup: {len(ids)} finalized invoices of 7 lines, in {time.perf_counter() - t0:.1f} s"
        )

        # One process, as a worker with --concurrency 1 (the first render builds
        # the renderer: stylesheet, font configuration, trimmed font).
        from invoices.models import Invoice

        t0 = time.perf_counter()
        render_invoice_pdf(Invoice.objects.get(pk=ids[0]))
        cold = time.perf_counter() - t0
        cpu0, t0 = time.process_time(), time.perf_counter()
        for invoice_id in ids:
            render_task(invoice_id)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        size = check(ids)
        print(
            f"\n1 process: {len(ids)} PDFs rendered and stored in {elapsed:.2f} s = "
            f"{len(ids) / elapsed:.1f} PDFs/s ({elapsed / len(ids) * 1000:.0f} ms each, "
            f"{cpu / len(ids) * 1000:.0f} ms CPU; target: at least {TARGET_ONE} PDFs/s)"
        )
        record("PDFs/s, 1 process", len(ids) / elapsed, "PDFs/s", target=TARGET_ONE, higher=True)
        print(
            f"  first render of a process (builds the renderer): {cold * 1000:.0f} ms; "
            f"average PDF {size / len(ids) / 1024:.1f} KiB, one page each; "
            f"peak memory {peak_rss_mib():.0f} MiB"
        )

        reset(media)
        elapsed, results = in_pool(ids, args.processes)
        check(ids)
        print(
            f"\n{args.processes} processes (celery worker --concurrency {args.processes}): "
            f"{len(ids)} PDFs in {elapsed:.2f} s = {len(ids) / elapsed:.1f} PDFs/s "
            f"({sum(cpu for cpu, _ in results) / len(results) * 1000:.0f} ms CPU each, "
            f"peak memory per process {max(rss for _, rss in results):.0f} MiB; "
            f"target on 2 processes: at least {TARGET_TWO} PDFs/s)"
        )
        record(
            f"PDFs/s, {args.processes} processes",
            len(ids) / elapsed,
            "PDFs/s",
            target=TARGET_TWO if args.processes == 2 else None,
            higher=True,
        )

        if args.broker and args.fonttools_subset:
            print("\n(no real worker with --fonttools-subset: it would use what is installed)")
        elif args.broker:
            reset(media)
            connections.close_all()
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "CELERY_BROKER_URL": args.broker,
                "CELERY_TASK_ALWAYS_EAGER": "0",
                "MEDIA_ROOT": str(media),
                "LOG_LEVEL": "WARNING",
            }
            elapsed = with_celery_worker(ids, args.processes, env, media)
            check(ids)
            print(
                f"\ncelery worker --concurrency {args.processes} on {args.broker}: "
                f"{len(ids)} PDFs in {elapsed:.2f} s = {len(ids) / elapsed:.1f} PDFs/s "
                "(enqueued at once, timed until the last is recorded)"
            )
    finally:
        connections.close_all()
        fresh_database(args.database)  # leave an empty database
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()

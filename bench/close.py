"""Period-close benchmark on PostgreSQL: N subscriptions with usage, one close of
their ended periods, invoices per second (PDFs excluded), then the no-op rerun.

    .venv/bin/python bench/close.py [--subscriptions 10000] [--events-per-customer 5]
                                     [--processes 2] [--profile] [--database NAME]
                                     [--e-invoices [--e-invoice-format peppol|xrechnung|facturx]
                                      [--rules both|with|without]]

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432); it
creates and drops its own database (--database, default `billing_bench_close`).
Prints figures, the target beside them, only. With --e-invoices the seller issues
e-invoices and every customer chose Peppol BIS 3 (issue 80): each invoice the close
finalizes is also written as UBL and checked before it is numbered. --e-invoice-format
xrechnung: a German seller and German public bodies, each UBL run through CEN's EN
16931 rules and KoSIT's XRechnung rules; facturx: CII, EN 16931's only; peppol: CEN's
rules, the hand-written Peppol rules, and OpenPeppol's when BILLING_PEPPOL_RULES
names them. --rules both (the default with --e-invoices) closes the same load twice,
on a fresh database each time: without the official rules (the Schematron not run,
the XML schema only), then with them; it prints the CPU per e-invoice of each, what
the rules added, how many documents and rule sets the Schematron ran on (once per
document, before it is numbered), and the rules' own CPU per document once compiled.
With --profile, BENCH_PROFILE_OUT=FILE
also writes the close's cProfile stats to FILE (for pstats: callers, callees).
"""

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, django_setup, fresh_database, postgres_pids, record

DB_NAME = "billing_bench_close"
BATCH = 1000
# Demo plans (plans/management/commands/load_demo.py), their seats, and the event
# that feeds each one's meter.
PLANS = [
    ("ai_assistant", 1, "prompt"),
    ("team_hybrid", 5, "llm.completion"),
    ("api_commit", 1, "api.call"),
    ("sms_starter", 1, "sms.sent"),
]
MODELS = ["gpt-4o", "gpt-4o-mini", "o3"]


def make_event(
    rng: random.Random, n: int, customer: str, event_name: str, moment: datetime
) -> dict:
    if event_name == "llm.completion":
        input_tokens = rng.randint(1_000, 200_000)
        output_tokens = rng.randint(100, 100_000)
        properties = {
            "model": rng.choice(MODELS),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
    elif event_name == "sms.sent":
        properties = {"to": f"+1555{rng.randrange(10_000_000):07d}"}
    elif event_name == "api.call":
        properties = {"endpoint": rng.choice(["/v1/search", "/v1/embed", "/v1/chat"])}
    else:
        properties = {"session": f"s{rng.randint(1, 50)}"}
    return {
        "id": f"evt_{n}",
        "customer": customer,
        "event_name": event_name,
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "properties": properties,
    }


def python_cpu() -> float:
    """CPU seconds of this process and of the close processes it has waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


TARGET_PER_SECOND = 300  # closing invoices per second on 2 processes (issue 21)


GERMAN_SELLER = {
    "legal_name": "Bench GmbH",
    "street": "Hauptstr. 1",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
    "tax_id": "DE811907980",
    "email": "rechnung@bench.example",
    "contact_name": "Anna Muster",
    "contact_phone": "+49 30 123456",
    "iban": "DE89370400440532013000",
}


def e_invoicing_seller(profile: str = "peppol") -> None:
    """The default seller issues e-invoices, at one default VAT rate."""
    from customers.billing_entities import billing_entity_save, default_billing_entity
    from plans.models import TaxRate
    from plans.tax_rates import tax_rate_create

    seller = default_billing_entity()
    for name, value in {
        "legal_name": "Bench SAS",
        "street": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
        "tax_id": "FR40303265045",
        "peppol_id": "0009:30326504500011",
        "iban": "FR7630006000011234567890189",
        "e_invoicing": True,
        **(GERMAN_SELLER if profile == "xrechnung" else {}),
    }.items():
        setattr(seller, name, value)
    billing_entity_save(entity=seller)
    # The demo catalog's default rate when it has one (two would stack: no e-invoice).
    if not TaxRate.objects.filter(is_default=True, active=True).exists():
        tax_rate_create(code="bench_vat", name="VAT", percentage=Decimal(20), is_default=True)


def populate(
    count: int, events_per_customer: int, e_invoices: bool = False, profile: str = "peppol"
) -> datetime:
    """The load: customers in bulk, subscriptions (with their start invoices) one by
    one through the service, as the API creates them, on the demo plans, then a
    month of usage for each. Returns the moment their periods close."""
    from django.core.management import call_command

    from billing.subscriptions.lifecycle import subscription_create
    from billing.usage.ingestion import events_ingest
    from common.periods import month_start
    from customers.models import Customer
    from invoices.models import Invoice
    from plans.models import Plan

    call_command("migrate", verbosity=0)
    call_command("load_demo", "--catalog-only", stdout=open(os.devnull, "w"))  # noqa: SIM115

    close_at = month_start(datetime.now(UTC))  # the first of this month, 00:00 UTC
    period_start = month_start(close_at, months=-1)  # the first of the previous month
    plans = {p.code: p for p in Plan.objects.filter(code__in=[c for c, _, _ in PLANS])}

    buyer = {}
    if e_invoices:
        e_invoicing_seller(profile)
        buyer = {
            "address": {
                "line1": "2 av. Foch",
                "city": "Lyon",
                "postal_code": "69006",
                "country": "FR",
            },
            "e_invoice_format": profile,
            "peppol_id": "0009:12345678200077",
        }
        if profile == "xrechnung":
            buyer["address"] = {
                "line1": "Amtsweg 2",
                "city": "Bonn",
                "postal_code": "53113",
                "country": "DE",
            }
            buyer["leitweg_id"] = "04011000-12345-67"
    t0 = time.perf_counter()
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"cust_{i:05d}", name=f"Customer {i}", currency="USD", **buyer)
        for i in range(count)
    )
    assignment = []  # (external_id, event name) per customer
    for i, customer in enumerate(customers):
        code, seats, event_name = PLANS[i % len(PLANS)]
        subscription_create(customer=customer, plan=plans[code], start=period_start, seats=seats)
        assignment.append((customer.external_id, event_name))
    setup_s = time.perf_counter() - t0
    start_invoices = Invoice.objects.filter(reason=Invoice.START).count()
    print(
        f"setup: {count:,} customers and {count:,} subscriptions "
        f"({', '.join(code for code, _, _ in PLANS)}) from {period_start:%Y-%m-%d}, "
        f"{start_invoices:,} start invoices, in {setup_s:.1f} s "
        f"= {count / setup_s:,.0f} subscriptions/s"
    )

    # Usage in the period, ingested as late as the window allows: at the close.
    rng = random.Random(42)
    span = (close_at - period_start).total_seconds()
    events = [
        make_event(
            rng, n, external_id, event_name, period_start + timedelta(seconds=rng.random() * span)
        )
        for n, (external_id, event_name) in enumerate(
            item for item in assignment for _ in range(events_per_customer)
        )
    ]
    t0 = time.perf_counter()
    accepted = 0
    for i in range(0, len(events), BATCH):
        result = events_ingest(events=events[i : i + BATCH], now=close_at)
        if result.rejected:
            raise RuntimeError(result.rejected[0])
        accepted += result.accepted
    ingest_s = time.perf_counter() - t0
    print(
        f"usage: {accepted:,} events ({events_per_customer} per customer) in "
        f"batches of {BATCH} in {ingest_s:.1f} s = {accepted / ingest_s:,.0f} events/s"
    )
    return close_at


class QueryCount:
    """Counts the statements this process sends (the close's, in one process)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@dataclass
class Closed:
    """What one close cost: its invoices, e-invoices and CPU."""

    closing: int
    e_invoices: int
    python_cpu: float
    postgres_cpu: float
    elapsed: float
    schematron_runs: int
    rule_set_runs: int


class RuleRuns:
    """Counts, across the close's forked processes, the documents the Schematron
    ran on and the rule sets it ran (shared memory made before they fork); with
    `off`, the Schematron is not run at all: the close writes and checks each
    e-invoice against its XML schema only (the close without the official rules)."""

    def __init__(self):
        import multiprocessing

        from invoices.e_invoices import validation

        context = multiprocessing.get_context("fork")
        self.documents = context.Value("q", 0)
        self.rule_sets = context.Value("q", 0)
        self.validation = validation
        self.schematron = validation.schematron_failures
        self.off = False
        validation.schematron_failures = self

    def __call__(self, xml, kind, document=None):
        if self.off:
            return []
        from lxml import etree

        customization = (
            ""
            if kind == self.validation.CII
            else self.validation.customization_of(etree.fromstring(xml))
        )
        with self.documents.get_lock():
            self.documents.value += 1
            self.rule_sets.value += len(self.validation.rule_sets_of(kind, customization))
        return self.schematron(xml, kind, document)

    def reset(self, off: bool) -> None:
        self.off = off
        self.documents.value = 0
        self.rule_sets.value = 0


def rules_per_document(counter: RuleRuns, sample: int = 50) -> tuple[float, int]:
    """CPU seconds the official rules take on one issued e-invoice, its rule sets
    compiled already (this process compiled them once: the close's processes each
    compile their own), over up to `sample` of the close's documents; how many."""
    from invoices.e_invoices.validation import CII, UBL_INVOICE
    from invoices.models import Invoice

    schematron_failures = counter.schematron  # not counted among the close's

    documents = [
        (xml.encode(), CII if profile == "facturx" else UBL_INVOICE)
        for xml, profile in Invoice.objects.exclude(e_invoice_xml="")
        .order_by("pk")
        .values_list("e_invoice_xml", "e_invoice_format")[:sample]
    ]
    if not documents:
        return 0.0, 0
    schematron_failures(*documents[0])  # compiled here once, outside the figure
    before = python_cpu()
    for xml, kind in documents:
        schematron_failures(xml, kind)
    return (python_cpu() - before) / len(documents), len(documents)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--events-per-customer", type=int, default=5)
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="close in this many processes (manage.py close_periods --processes; one per core)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the close under cProfile and print the top"
    )
    parser.add_argument(
        "--database", default=DB_NAME, help=f"created and dropped (default {DB_NAME})"
    )
    parser.add_argument(
        "--e-invoices",
        action="store_true",
        help="the seller e-invoices, every customer by Peppol BIS 3 (issue 80)",
    )
    parser.add_argument(
        "--e-invoice-format",
        choices=("peppol", "xrechnung", "facturx"),
        default="peppol",
        help="with --e-invoices: every customer's format (xrechnung: KoSIT's rules run too)",
    )
    parser.add_argument(
        "--rules",
        choices=("both", "with", "without"),
        default="both",
        help=(
            "with --e-invoices: close with the official rules (Schematron) run before "
            "numbering, without them (the XML schema only), or both, one after the "
            "other on the same load (default)"
        ),
    )
    args = parser.parse_args()

    # PDFs excluded (bench/pdf.py times them): with the benchmark's eager tasks,
    # each finalized invoice would otherwise be rendered inline.
    os.environ["BILLING_INVOICE_PDFS"] = "0"
    database_url = fresh_database(args.database)
    django_setup(database_url)
    from django.db import connections

    runs = {"both": (False, True), "with": (True,), "without": (False,)}[args.rules]
    if not args.e_invoices:
        runs = (True,)
    counter = RuleRuns() if args.e_invoices else None
    closed = {}
    try:
        for n, rules in enumerate(runs):
            if n:
                connections.close_all()
                fresh_database(args.database)
            if counter is not None:
                counter.reset(off=not rules)
                print(
                    f"\n=== the close {'with' if rules else 'without'} the official rules "
                    f"({args.e_invoice_format}) ==="
                )
            closed[rules] = close_once(args, counter)
            if counter is not None and rules:
                per_document, sample = rules_per_document(counter)
                print(
                    f"  the official rules alone, compiled: {per_document * 1000:.1f} ms CPU "
                    f"per e-invoice (over {sample} of the close's documents)"
                )
        if counter is not None:
            compare(closed, args.e_invoice_format)
    finally:
        connections.close_all()
        fresh_database(args.database)  # leave an empty database


def compare(closed: dict[bool, Closed], profile: str) -> None:
    """CPU per e-invoice of each close, and what the rules added."""
    from invoices.e_invoices.rule_sets import rule_sets

    print(f"\nCPU per e-invoice ({profile}; the close's own work and its documents):")
    for rules, run in closed.items():
        runs = (
            f", the Schematron run on {run.schematron_runs:,} documents "
            f"({run.rule_set_runs:,} rule set runs, "
            f"{run.rule_set_runs / max(run.schematron_runs, 1):.1f} a document)"
            if rules
            else ", no Schematron"
        )
        print(
            f"  {'with' if rules else 'without'} the official rules: "
            f"Python {run.python_cpu / run.e_invoices * 1000:.2f} ms, "
            f"PostgreSQL {run.postgres_cpu / run.e_invoices * 1000:.2f} ms "
            f"({run.e_invoices:,} e-invoices{runs})"
        )
    if True in closed and False in closed:
        added = (closed[True].python_cpu - closed[False].python_cpu) / closed[True].e_invoices
        print(
            f"  the rules added: {added * 1000:.2f} ms Python CPU per e-invoice "
            f"(each close process compiles the stylesheets once: counted here)"
        )
    for rule_set in rule_sets():
        print(f"  rules: {rule_set.describe()}")


def close_once(args, counter: RuleRuns | None) -> Closed:
    """Populate the database and close its periods once: the figures printed."""
    from django.db import connection

    from billing.invoicing.close import periods_close
    from billing.models import Subscription
    from invoices.models import Invoice

    count = args.subscriptions
    close_at = populate(count, args.events_per_customer, args.e_invoices, args.e_invoice_format)

    # The close.
    closing_before = Invoice.objects.filter(reason=Invoice.PERIOD).count()
    profiler = cProfile.Profile() if args.profile else None
    own_cpu, pg_cpu = python_cpu(), cpu_seconds(postgres_pids())
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    processes = 1 if profiler else args.processes
    queries = QueryCount()
    with connection.execute_wrapper(queries):
        result = periods_close(as_of=close_at, processes=processes)
    if profiler:
        profiler.disable()
        if os.environ.get("BENCH_PROFILE_OUT"):
            profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])
    elapsed = time.perf_counter() - t0
    own_cpu = python_cpu() - own_cpu
    pg_cpu = cpu_seconds(postgres_pids()) - pg_cpu
    closing = Invoice.objects.filter(reason=Invoice.PERIOD).count() - closing_before
    finalized = Invoice.objects.filter(status=Invoice.FINALIZED).count()
    advanced = Subscription.objects.filter(current_period_start=close_at).count()
    print(
        f"\nclose at {close_at:%Y-%m-%d %H:%M} UTC (periods_close in {processes} "
        f"process{'es' if processes > 1 else ''}, PDFs excluded)"
    )
    print(
        f"  subscriptions closed: {result.periods_closed:,} ({advanced:,} now in the next period)"
    )
    print(
        f"  invoices written: {closing:,} closing; finalized: {result.invoices_finalized:,} "
        f"(start and closing drafts; {finalized:,} finalized in all)"
    )
    print(f"  elapsed: {elapsed:.1f} s")
    print(
        f"  invoices per second: {closing / elapsed:,.0f} closing invoices written, "
        f"{result.invoices_finalized / elapsed:,.0f} invoices finalized "
        f"(target: at least {TARGET_PER_SECOND} closing invoices/s on 2 processes)"
    )
    issued = 0
    if args.e_invoices:
        issued = Invoice.objects.exclude(e_invoice_format="").count()
        refused = Invoice.objects.filter(status=Invoice.DRAFT).exclude(e_invoice_errors=[])
        rules = Counter(e["rule"] for i in refused for e in i.e_invoice_errors)
        print(f"  e-invoices issued ({args.e_invoice_format}): {issued:,}")
        print(f"  refused by the rules (left drafts): {refused.count():,} {dict(rules)}")
    with_rules = counter is None or not counter.off
    record(
        f"closing invoices/s, {processes} process{'es' if processes > 1 else ''}"
        + (f", e-invoices ({args.e_invoice_format})" if args.e_invoices else "")
        + ("" if with_rules else ", without the official rules"),
        closing / elapsed,
        "invoices/s",
        target=TARGET_PER_SECOND if processes == 2 and not args.e_invoices else None,
        higher=True,
    )
    # The close processes' database backends exit with them: the postmaster has
    # their time then (cpu_seconds).
    pg_text = f"{pg_cpu / closing * 1000:.2f} ms"
    print(
        f"  CPU per closing invoice: Python {own_cpu / closing * 1000:.2f} ms, "
        f"PostgreSQL {pg_text} (wall {elapsed / closing * 1000:.2f} ms)"
    )
    if processes == 1:
        # The children of a close in processes count their own statements.
        print(
            f"  statements per closing invoice (its close and the finalization of "
            f"two drafts): {queries.count / closing:.1f}"
        )
    if closing != count or result.periods_closed != count:
        raise RuntimeError(
            f"expected {count} closed periods, got {result.periods_closed} "
            f"and {closing} closing invoices"
        )

    # The rerun: nothing is due any more.
    t0 = time.perf_counter()
    again = periods_close(as_of=close_at)
    print(
        f"\nrerun: closed {again.periods_closed}, finalized {again.invoices_finalized}, "
        f"in {(time.perf_counter() - t0) * 1000:.1f} ms"
    )

    if profiler:
        print("\nprofile of the close, by own time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
        print("profile of the close, by cumulative time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(40)
    runs = counter.documents.value if counter is not None else 0
    rule_set_runs = counter.rule_sets.value if counter is not None else 0
    return Closed(closing, issued, own_cpu, pg_cpu, elapsed, runs, rule_set_runs)


if __name__ == "__main__":
    main()

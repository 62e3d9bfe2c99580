"""Which plan priced a line: stamped on the line where it is rated
(InvoiceLine.plan), and read only from there by the journal and margins. Lines
written before lines said so are filled by invoices 0028 with the rule the
journal and margins reconstructed it by: the subscription's billed part the
line's service period starts in (a plan change's credit: the part it ends),
else the subscription's plan now."""

import importlib
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from billing.invoicing.close import periods_close
from billing.invoicing.progressive import threshold_invoices_write
from billing.journal.models import AccountKind, JournalEntry
from billing.margins import report
from billing.subscriptions.discounts import discount_redeem
from billing.subscriptions.lifecycle import subscription_change_plan, subscription_set_seats
from billing.usage.ingestion import events_ingest
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import InvoiceLine
from plans.cost_rules import cost_rate_create
from plans.coupons import coupon_create
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, tzinfo=UTC)
DEC_10 = datetime(2026, 12, 10, tzinfo=UTC)
DEC_12 = datetime(2026, 12, 12, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)

line_plans_fill = importlib.import_module(
    "invoices.migrations.0029_line_plan_stamp"
).line_plans_fill


def prompts(customer, count: int, *, at: datetime, now: datetime | None = None) -> None:
    events = [
        {
            "id": f"{customer.external_id}-{at:%m%d}-{i}",
            "customer": customer.external_id,
            "event_name": "prompt",
            "timestamp": at.isoformat(),
        }
        for i in range(count)
    ]
    assert not events_ingest(events=events, now=now or at).rejected


@pytest.fixture
def populated(db):
    """Four customers over November and December: acme changes starter to pro
    on the 16th and back to starter on December 10th; beta moves to pro at
    November's end and has November usage arriving late; gamma stays on starter,
    adds seats and has a 10 % discount; delta is billed progressively (a
    threshold invoice on November 11th). Starter: 30.00 a month, 5.00 a seat,
    prompts at 0.01; pro: 100.00, prompts at 0.02; metered: prompts at 0.01, a
    threshold of 5.00."""
    prompts_meter()
    cost_rate_create(meter="prompts", unit_cost=D("0.004"), currency="USD", effective_from=NOV_1)
    catalog = {
        "starter": published_version(
            "starter",
            base_fee=D("30.00"),
            seat_price=D("5.00"),
            charges=(overage("prompts", 0, "0.01"),),
        ),
        "pro": published_version(
            "pro", base_fee=D("100.00"), charges=(overage("prompts", 0, "0.02"),)
        ),
        "metered": published_version(
            "metered",
            charges=(overage("prompts", 0, "0.01"),),
            progressive_billing_threshold=D("5.00"),
        ),
    }
    acme = CustomerFactory(external_id="acme")
    beta = CustomerFactory(external_id="beta")
    gamma = CustomerFactory(external_id="gamma")
    acme_on = subscribe(acme, "starter", start=NOV_1)
    beta_on = subscribe(beta, "starter", start=NOV_1)
    gamma_on = subscribe(gamma, "starter", start=NOV_1)
    delta = CustomerFactory(external_id="delta")
    subscribe(delta, "metered", start=NOV_1)
    coupon = coupon_create(code="ten", name="Ten", percent_off=D("10"), duration="forever")
    discount_redeem(subscription=gamma_on, coupon=coupon, now=NOV_1)
    prompts(acme, 1000, at=NOV_10)
    prompts(beta, 300, at=NOV_10)
    prompts(gamma, 200, at=NOV_10)
    prompts(delta, 600, at=NOV_10)
    assert len(threshold_invoices_write(customer_ids=[delta.pk], now=NOV_11)) == 1
    prompts(delta, 100, at=NOV_20)
    subscription_set_seats(subscription=gamma_on, seats=3, at=NOV_10)
    subscription_change_plan(
        subscription=acme_on, version=catalog["pro"], effective="immediate", at=NOV_16
    )
    subscription_change_plan(
        subscription=beta_on, version=catalog["pro"], effective="period_end", at=NOV_16
    )
    prompts(acme, 500, at=NOV_20)
    periods_close(as_of=DEC_1)
    # November's usage arriving after its close: billed late, at starter's prices.
    prompts(beta, 100, at=NOV_20, now=DEC_3)
    acme_on.refresh_from_db()
    subscription_change_plan(
        subscription=acme_on, version=catalog["starter"], effective="immediate", at=DEC_10
    )
    periods_close(as_of=JAN_1)
    return catalog


def stamps() -> dict[int, str]:
    return dict(InvoiceLine.objects.values_list("pk", "plan"))


def test_the_raters_stamp_each_line_with_the_plan_that_priced_it(populated):
    lines = InvoiceLine.objects.filter(invoice__customer__external_id="beta")
    assert sorted((x.kind, x.plan, x.period_start.date()) for x in lines) == [
        ("base_fee", "pro", DEC_1.date()),  # December's fee, in advance, on the close of November
        ("base_fee", "pro", JAN_1.date()),
        ("base_fee", "starter", NOV_1.date()),
        ("late_usage", "starter", NOV_1.date()),  # written after the move to pro
        ("overage", "starter", NOV_1.date()),
        ("seats", "starter", NOV_1.date()),
    ]
    # Every line of the subscriptions' invoices names the plan that priced it: the
    # discount and the threshold invoice's usage taken off too.
    assert set(
        InvoiceLine.objects.filter(kind__in=("discount", "usage_invoiced")).values_list(
            "kind", "plan"
        )
    ) == {("discount", "starter"), ("usage_invoiced", "metered")}
    assert not InvoiceLine.objects.filter(plan="").exists()


def test_the_migration_stamps_old_lines_as_their_raters_stamp_them(populated):
    written = stamps()
    assert len(written) > 20 and set(written.values()) == {"starter", "pro", "metered"}
    InvoiceLine.objects.update(plan="")  # as lines written before invoices 0026 read

    line_plans_fill(apps, None)

    assert stamps() == written


def test_the_migration_keeps_a_line_no_plan_priced_and_one_of_no_subscription_empty(populated):
    InvoiceLine.objects.update(plan="")
    invoice = InvoiceLine.objects.filter(kind="base_fee").first().invoice
    line = InvoiceLine.objects.get(pk=invoice.lines.first().pk)
    line.kind = "credit_pack"
    line.save(update_fields=["kind"])
    unsubscribed = InvoiceLine.objects.filter(kind="overage").first().invoice
    unsubscribed.subscription = None
    unsubscribed.save(update_fields=["subscription"])

    line_plans_fill(apps, None)

    line.refresh_from_db()
    assert line.plan == ""
    assert set(unsubscribed.lines.values_list("plan", flat=True)) == {""}
    assert (
        not InvoiceLine.objects.filter(plan="")
        .exclude(invoice=unsubscribed)
        .exclude(pk=line.pk)
        .exists()
    )


def test_margins_by_plan_read_old_lines_as_their_raters_stamped_them(populated):
    def by_plan(start, end) -> dict:
        rows = report.margins(start=start, end=end, group_by="plan", currency="USD", now=JAN_1)
        return {row.key["plan"]: (row.revenue, row.cost) for row in rows}

    november, december = by_plan(NOV_1, DEC_1), by_plan(DEC_1, JAN_1)
    # Pro earned the second half of acme's November: its prorated fee for
    # [Nov 16, Dec 1) 100.00 x 15 / 30 = 50.00, and 500 prompts at 0.02 = 10.00
    assert november["pro"][0] == D("60.00")
    InvoiceLine.objects.update(plan="")

    line_plans_fill(apps, None)

    # Not under the plan each subscription is on now (acme and gamma: starter,
    # beta: pro), as lines naming no plan were read before.
    assert (by_plan(NOV_1, DEC_1), by_plan(DEC_1, JAN_1)) == (november, december)


def test_a_credit_note_on_an_old_line_after_its_subscription_moved_books_the_plan_that_priced_it(
    populated,
):
    InvoiceLine.objects.update(plan="")
    line_plans_fill(apps, None)
    # acme's December fee on pro (100.00), billed in advance by November's close;
    # acme is on starter again since December 10th, and that change's credit
    # note gave back the 22 unused days of 31 (70.97): 29.03 is left to credit.
    fee = InvoiceLine.objects.get(
        invoice__customer__external_id="acme", kind="base_fee", period_start=DEC_1
    )

    note = credit_note_issue(
        invoice=fee.invoice, lines=[CreditLineInput(fee.pk, D("29.03"))], reason="other", now=DEC_12
    )

    # The fee was billed in advance: its invoice deferred it, and the note takes
    # the 29.03 back from deferred revenue (the recognition entries earn it, under
    # the line's plan, as earned revenue does: billing.revenue.recognition).
    fee.refresh_from_db()
    assert fee.plan == "pro"
    reversed_ = (
        JournalEntry.objects.filter(document_key=f"credit_note:{note.pk}")
        .filter(kind__in=[AccountKind.REVENUE, AccountKind.DEFERRED_REVENUE])
        .values("kind", "plan")
        .annotate(debit=Sum("debit"))
    )
    assert list(reversed_) == [
        {"kind": AccountKind.DEFERRED_REVENUE, "plan": "", "debit": D("29.03")}
    ]


def test_a_prepaid_commit_s_invoice_names_no_plan_and_its_drawdown_the_plan_that_priced_it(db, api):
    prompts_meter()
    published_version("starter", base_fee=D("30.00"), charges=(overage("prompts", 0, "0.01"),))
    customer = CustomerFactory(external_id="acme", currency="USD")
    subscribe(customer, "starter", start=NOV_1)
    body = {
        "amount": "500.00",
        "currency": "USD",
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2026-12-01T00:00:00Z",
        "billing": "prepaid",
        "access": "upfront",
        "applies_to": ["prompts"],
    }
    with time_machine.travel(NOV_1, tick=False):
        signed = api.post("/api/v1/customers/acme/commits", body, format="json")
    assert signed.status_code == 201, signed.json()
    prompts(customer, 1000, at=NOV_10)

    periods_close(as_of=DEC_1)

    lines = InvoiceLine.objects.filter(kind__in=("commit", "commit_drawdown", "overage"))
    assert sorted(lines.values_list("kind", "plan")) == [
        ("commit", ""),  # sold by the commit's terms, priced by no plan
        ("commit_drawdown", "starter"),
        ("overage", "starter"),
    ]


# PostgreSQL: it migrates back and forth inside the test's transaction, which SQLite's
# schema editor refuses (its foreign key checks cannot be turned off mid-transaction).
@pytest.mark.postgres
def test_migrating_through_invoices_0029_stamps_old_lines(populated):
    written = stamps()
    # Back to 0028 unapplies 0030 too, which drops a column: PostgreSQL alters
    # no table with the fixture's deferred constraint checks pending.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.migrate([("invoices", "0028_line_share")])
    InvoiceLine.objects.update(plan="")

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert stamps() == written

"""Revenue per plan in the journal: a plan-level line (base fee, seats, a
proration, the minimum-commitment true-up) is booked on the plan whose version
priced it. This holds also when the subscription has moved to another plan by
the time the invoice is journaled: an immediate change's invoice charges the
new plan and its credit note for unused time (against the start invoice) takes
back from the old one; the close after a change at period end trues up the old
plan and bills the new one's fees. Lines written before lines said
which plan priced them are stamped by invoices 0028. A fee billed in advance is
deferred when issued and recognized on its plan by the recognition entries
(billing.revenue.recognition): a plan's revenue over a period is then the same
whichever way it was booked."""

import importlib
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.apps import apps
from django.db.models import Sum

from billing.invoicing.close import periods_close
from billing.journal.models import AccountKind, JournalEntry
from billing.revenue.recognition import revenue_recognize_closed
from billing.subscriptions.lifecycle import subscription_change_plan
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe

pytestmark = pytest.mark.django_db

line_plans_fill = importlib.import_module(
    "invoices.migrations.0029_line_plan_stamp"
).line_plans_fill

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, tzinfo=UTC)
JAN_2 = datetime(2027, 1, 2, tzinfo=UTC)


def revenue_by_plan(document: Invoice | CreditNote) -> dict[str, D]:
    """The document's revenue booked per plan (credit less debit), plan-level legs only."""
    kind = "credit_note" if isinstance(document, CreditNote) else "invoice"
    rows = (
        JournalEntry.objects.filter(
            document_key=f"{kind}:{document.pk}", kind=AccountKind.REVENUE, meter=""
        )
        .values("plan")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    )
    return {row["plan"]: row["credit"] - row["debit"] for row in rows}


def plan_revenue(customer, *, recognized_by: datetime) -> dict[str, D]:
    """The customer's revenue booked per plan (plan-level legs), every document
    of it, once what fees billed in advance earned by `recognized_by` is recognized."""
    revenue_recognize_closed(now=recognized_by, since=NOV_1.date())
    rows = (
        JournalEntry.objects.filter(customer=customer, kind=AccountKind.REVENUE, meter="")
        .values("plan")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    )
    return {row["plan"]: row["credit"] - row["debit"] for row in rows}


@pytest.fixture
def catalog(db):
    prompts_meter()
    return {
        "starter": published_version(
            "starter",
            base_fee=D("30.00"),
            minimum_commitment=D("100.00"),
            charges=(overage("prompts", 0, "0.01"),),
        ),
        "pro": published_version("pro", base_fee=D("100.00")),
    }


def test_an_immediate_change_credits_the_old_plan_and_charges_the_new_one(catalog):
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "starter", start=NOV_1)

    with time_machine.travel(NOV_16, tick=False):
        _, invoice = subscription_change_plan(
            subscription=subscription, version=catalog["pro"], effective="immediate", at=NOV_16
        )
        # Journaled after the change: the subscription is on pro by now.
        invoice_finalize(invoice=invoice, now=NOV_16, collect=False)

    # The minimum commitment of starter's first half (revenue), and half of
    # pro's base fee (billed in advance: deferred).
    assert revenue_by_plan(invoice) == {"starter": D("50.00")}
    assert dict(invoice.lines.values_list("kind", "plan")) == {
        "minimum_commitment": "starter",
        "proration_charge": "pro",
    }
    # Half of starter's base fee back (15 of 30 days): a credit note against the
    # start invoice that charged it.
    note = CreditNote.objects.get(invoice__subscription=subscription)
    assert note.invoice.reason == Invoice.START
    # November on each plan: starter's fee (30.00) less the 15.00 back, and its
    # minimum (50.00); pro's half fee, recognized on pro.
    assert plan_revenue(customer, recognized_by=DEC_5) == {
        "starter": D("65.00"),
        "pro": D("50.00"),
    }


def test_the_close_after_a_change_at_period_end_trues_up_the_old_plan(catalog):
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "starter", start=NOV_1)
    subscription_change_plan(
        subscription=subscription, version=catalog["pro"], effective="period_end", at=NOV_16
    )

    periods_close(as_of=DEC_1)

    closing = Invoice.objects.get(
        subscription=subscription, reason=Invoice.PERIOD, period_start=NOV_1
    )
    assert closing.status == Invoice.FINALIZED
    # November's true-up on starter (no usage: its 100.00 minimum); December's
    # base fee, billed in advance, deferred and recognized on pro.
    assert revenue_by_plan(closing) == {"starter": D("100.00")}
    assert plan_revenue(customer, recognized_by=JAN_2) == {
        "starter": D("130.00"),
        "pro": D("100.00"),
    }

    # A credit note on the true-up takes it back from starter's revenue, not pro's.
    true_up = closing.lines.get(kind="minimum_commitment")
    note = credit_note_issue(
        invoice=closing, lines=[CreditLineInput(true_up.pk, D("40.00"))], reason="other", now=DEC_5
    )
    reversed_ = JournalEntry.objects.get(
        document_key=f"credit_note:{note.pk}", kind=AccountKind.REVENUE
    )
    assert (reversed_.plan, reversed_.debit) == ("starter", D("40.00"))


def test_a_postpaid_commit_s_true_up_at_a_change_at_period_end_is_the_old_plan_s(catalog, api):
    customer = CustomerFactory(external_id="acme", currency="USD")
    subscription = subscribe(customer, "starter", start=NOV_1)
    body = {
        "amount": "500.00",
        "currency": "USD",
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2026-12-01T00:00:00Z",
        "billing": "postpaid",
        "applies_to": ["prompts"],
    }
    with time_machine.travel(NOV_1, tick=False):
        signed = api.post("/api/v1/customers/acme/commits", body, format="json")
    assert signed.status_code == 201, signed.json()
    subscription_change_plan(
        subscription=subscription, version=catalog["pro"], effective="period_end", at=NOV_16
    )

    periods_close(as_of=DEC_1)

    true_up = Invoice.objects.get(subscription=subscription, reason=Invoice.COMMIT_TRUE_UP)
    assert true_up.status == Invoice.FINALIZED  # by the close, after the move to pro
    # No usage counted: the whole 500.00, on starter, as its minimum-commitment true-up.
    assert revenue_by_plan(true_up) == {"starter": D("500.00")}


def test_a_line_written_before_lines_named_their_plan_books_as_invoices_0028_stamped_it(catalog):
    customer = CustomerFactory(external_id="acme")
    subscription = subscribe(customer, "starter", start=NOV_1)
    with time_machine.travel(NOV_16, tick=False):
        _, invoice = subscription_change_plan(
            subscription=subscription, version=catalog["pro"], effective="immediate", at=NOV_16
        )
        invoice.lines.update(plan="")  # as the column's default fills lines of before
        line_plans_fill(apps, None)

        invoice_finalize(invoice=invoice, now=NOV_16, collect=False)

    # As stamped when written: not all on pro, the subscription's plan at journaling
    # (the unused time of starter is a credit note against the start invoice).
    assert revenue_by_plan(invoice) == {"starter": D("50.00")}
    assert plan_revenue(customer, recognized_by=DEC_5) == {
        "starter": D("65.00"),
        "pro": D("50.00"),
    }

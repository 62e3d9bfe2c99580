"""Rules of earned revenue and the journal that no test guarded (issue 93):
each test fails when its rule is broken."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.journal.models import AccountKind, DocumentType, JournalEntry
from billing.journal.writer import Document, JournalUnbalanced, Leg, journal_write
from billing.revenue.earned import earned_window
from billing.revenue.recognition import revenue_recognize_closed
from customers.services import customer_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from tests.factories import api_client, subscribe
from tests.journal.test_revenue_bridge import (
    COMMIT,
    NOV_1,
    OCT_1,
    OCT_10,
    OCT_20,
    bridge,
    catalog,  # noqa: F401 (the fixture)
    post_usage,
    sellers,
)
from wallets.models import LedgerEntry
from wallets.revenue import commit_breakage

pytestmark = pytest.mark.django_db

OCT_5 = datetime(2026, 10, 5, 12, tzinfo=UTC)
OCT_16 = datetime(2026, 10, 16, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


def pro_customer(external_id: str = "acme", plan: str = "pro"):
    """A customer on `plan` from October 1, its start invoice issued then."""
    with time_machine.travel(OCT_1, tick=False):
        customer = customer_create(
            external_id=external_id, name=external_id.title(), currency="USD", timezone_name="UTC"
        )
        subscribe(customer, plan, start=OCT_1)
        start = Invoice.objects.filter(customer=customer, reason=Invoice.START).first()
        if start is not None and start.status == Invoice.DRAFT:
            invoice_finalize(invoice=start, now=OCT_1, collect=False)
    return customer


def earned(customer, start: datetime, end: datetime, now: datetime):
    return earned_window(start=start, end=end, currency="USD", now=now, customers=[customer.pk])


def test_nothing_is_earned_ahead_of_now(catalog):  # noqa: F811
    # given: October's fee (31.00) billed in advance on October 1
    customer = pro_customer()
    # when: October is read on the 16th
    so_far = earned(customer, OCT_1, NOV_1, now=OCT_16).total
    ahead = earned(customer, OCT_16, NOV_1, now=OCT_16).total
    # then: 15 days of it, none of what is to come
    assert (so_far.billed, so_far.accrued) == (D("15.00"), D(0))
    assert (ahead.billed, ahead.accrued) == (D(0), D(0))


def test_a_credit_note_dated_at_a_window_s_end_is_earned_in_the_next_window_only(
    catalog,  # noqa: F811
):
    customer = pro_customer()
    fee = Invoice.objects.get(customer=customer, reason=Invoice.START).lines.get(kind="base_fee")
    with time_machine.travel(OCT_20, tick=False):
        credit_note_issue(
            invoice=fee.invoice,
            lines=[CreditLineInput(fee.pk, D("10.00"))],
            reason=CreditNote.OTHER,
            now=OCT_20,
        )
    # the windows end and begin at the note's moment (Oct 20, 12:00: 19.5 days of 31)
    before = earned(customer, OCT_1, OCT_20, now=NOV_2).total.earned
    after = earned(customer, OCT_20, NOV_1, now=NOV_2).total.earned
    assert before == D("19.50")
    assert after == D("11.50") - D("10.00")
    assert before + after == D("21.00")


def test_the_journal_refuses_a_document_whose_legs_do_not_balance(catalog):  # noqa: F811
    customer = pro_customer()
    written = JournalEntry.objects.count()
    document = Document(
        type=DocumentType.INVOICE,
        number="X-1",
        key="invoice:unbalanced",
        customer_id=customer.pk,
        currency="USD",
        on=OCT_16,
    )
    with pytest.raises(JournalUnbalanced, match=r"differ by 1\.00 USD"):
        journal_write(
            document=document,
            legs=[Leg(AccountKind.RECEIVABLE, D("10.00")), Leg(AccountKind.REVENUE, D("-9.00"))],
            now=OCT_16,
        )
    assert JournalEntry.objects.count() == written
    assert not JournalEntry.objects.filter(document_key="invoice:unbalanced").exists()


def test_breakage_is_what_expired_less_what_credit_notes_took_back(catalog):  # noqa: F811
    # given: a prepaid commit of 300.00 (150.00 a month) of which a credit note
    # takes back 60.00 (30.00 of each month's access) on October 5
    sellers()
    customer = pro_customer()
    with time_machine.travel(OCT_1, tick=False):
        signed = api_client("admin").post(
            f"/api/v1/customers/{customer.external_id}/commits", COMMIT, format="json"
        )
    assert signed.status_code == 201, signed.json()
    commit_invoice = Invoice.objects.get(customer=customer, reason=Invoice.COMMIT)
    line = commit_invoice.lines.get(kind="commit")
    with time_machine.travel(OCT_5, tick=False):
        credit_note_issue(
            invoice=commit_invoice,
            lines=[CreditLineInput(line.pk, D("60.00"))],
            reason=CreditNote.OTHER,
            now=OCT_5,
        )
    # and 100.00 drawn in October
    post_usage(customer.external_id, OCT_10, tokens=100_000, gb=0)
    # when: October and November close, each month's access expiring
    for end in (NOV_1, DEC_1):
        with time_machine.travel(end, tick=False):
            periods_close(as_of=end)
    # then: the credit note took 60.00 back of November's access
    taken = LedgerEntry.objects.filter(kind__in=LedgerEntry.TAKEN_BACK)
    assert list(taken.values_list("block__expires_at", "amount")) == [(DEC_1, D("-60.00"))]
    # October's breakage: 150.00 less 100.00 drawn; November's: 150.00 less the
    # 60.00 taken back (nothing drawn)
    october = commit_breakage(start=OCT_1, end=NOV_1, currency="USD", customers=[customer.pk])
    november = commit_breakage(start=NOV_1, end=DEC_1, currency="USD", customers=[customer.pk])
    assert october == {customer.pk: (D("50.00"), NOV_1 - timedelta(microseconds=1))}
    assert november == {customer.pk: (D("90.00"), DEC_1 - timedelta(microseconds=1))}
    # the books book the same breakage on the same days
    assert list(
        JournalEntry.objects.filter(kind=AccountKind.BREAKAGE)
        .order_by("date")
        .values_list("date", "credit")
    ) == [(date(2026, 10, 31), D("50.00")), (date(2026, 11, 30), D("90.00"))]
    # and the report earns it: November's fee (31.00, billed in advance) and
    # its breakage (90.00), the bridge at 0.00 once November is recognized
    assert earned(customer, NOV_1, DEC_1, now=DEC_2).total.earned == D("121.00")
    with time_machine.travel(DEC_2, tick=False):
        assert revenue_recognize_closed(now=DEC_2) == 1  # November (since October 1st: 2)
        november_bridge = bridge("default", "2026-11-01", "2026-12-01")
    assert (november_bridge["earned"], november_bridge["difference"]) == ("121.00", "0.00")


def test_a_minimum_commitment_true_up_is_not_accrued_before_it_is_due(catalog):  # noqa: F811
    plan = {
        "code": "floor",
        "name": "Floor",
        "currency": "USD",
        "base_fee": "0",
        "minimum_commitment": "100.00",
        "publish": True,
        "charges": [
            {
                "meter": "storage",
                "model": "overage",
                "included_units": "0",
                "pricing": {"scheme": "per_unit", "unit_price": "1.00"},
            }
        ],
    }
    response = api_client("admin").post("/api/v1/plans", plan, format="json")
    assert response.status_code == 201, response.json()
    customer = pro_customer(plan="floor")
    post_usage(customer.external_id, OCT_10, tokens=1, gb=10)
    # when: October is read on the 16th, its period open
    with time_machine.travel(OCT_16, tick=False):
        so_far = earned(customer, OCT_1, NOV_1, now=OCT_16).total
    # then: the usage accrues (10.00 of storage; the plan bills no tokens), not the true-up
    assert (so_far.billed, so_far.accrued) == (D(0), D("10.00"))
    # once due, the close bills it: October earned the minimum
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    closed = earned(customer, OCT_1, NOV_1, now=NOV_2).total
    assert (closed.billed, closed.accrued) == (D("100.00"), D(0))


def test_an_upgraded_database_keeps_earlier_fees_at_revenue_and_defers_the_next(catalog):  # noqa: F811
    """Rule: fees billed in advance by invoices issued before the journal deferred
    them (DeferralStart, written by billing 0046 on a database that had issued
    invoices) were booked to revenue at issue; no recognition document books
    them again. An invoice issued after it defers its fee."""
    from billing.journal.deferral import deferral_start_forget
    from billing.journal.models import DeferralStart

    # given: acme's October fee (31.00) issued on October 1, before the upgrade
    DeferralStart.objects.create(since=OCT_10)
    deferral_start_forget()
    try:
        old = pro_customer("acme")
        # and beta's, issued after it
        with time_machine.travel(OCT_16, tick=False):
            new = customer_create(
                external_id="beta", name="Beta", currency="USD", timezone_name="UTC"
            )
            subscribe(new, "pro", start=OCT_16)
            start = Invoice.objects.get(customer=new, reason=Invoice.START)
            if start.status == Invoice.DRAFT:
                invoice_finalize(invoice=start, now=OCT_16, collect=False)

        # when: October is recognized
        with time_machine.travel(NOV_2, tick=False):
            revenue_recognize_closed(now=NOV_2, since=OCT_1.date())

        # then: acme's fee was revenue at issue and nothing recognizes it again
        def booked(customer, kind):
            entries = JournalEntry.objects.filter(customer=customer, kind=kind)
            return sum((e.credit - e.debit for e in entries), D(0))

        assert booked(old, AccountKind.REVENUE) == D("31.00")
        assert booked(old, AccountKind.DEFERRED_REVENUE) == D(0)
        assert not JournalEntry.objects.filter(
            customer=old, document_type=DocumentType.RECOGNITION
        ).exists()
        # and beta's was deferred at issue, then recognized: revenue for what
        # October earned of it, deferred none left of October's part
        assert booked(new, AccountKind.REVENUE) + booked(new, AccountKind.DEFERRED_REVENUE) == (
            Invoice.objects.get(customer=new, reason=Invoice.START).subtotal
        )
        assert JournalEntry.objects.filter(
            customer=new, document_type=DocumentType.RECOGNITION
        ).exists()
    finally:
        deferral_start_forget()

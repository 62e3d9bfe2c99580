"""A receivable settled in parts, in the seller's functional currency (issue 75,
books per seller): a credit note, the credit balance applied and a payment each
settle their share of what is left of the invoice's receivable as the invoice
booked it, the difference to exchange differences, so that a receivable with
nothing owed is nothing in the functional currency too."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db.models import Sum

from billing.journal.models import AccountKind, JournalEntry
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote
from tests.factories import CustomerFactory
from tests.journal.books_support import NOV_5, NOV_20, invoice, pay, s32_rates, sellers

pytestmark = pytest.mark.django_db

NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)


def functional(document_key: str, kind: str) -> D:
    rows = JournalEntry.objects.filter(document_key=document_key, kind=kind)
    found = rows.aggregate(d=Sum("functional_debit"), c=Sum("functional_credit"))
    return (found["d"] or D(0)) - (found["c"] or D(0))


def test_a_credit_note_then_a_payment_clear_the_receivable_in_eur():
    s32_rates()  # 1 USD = 0.90 EUR from 1 Oct, 0.92 from 15 Nov
    sellers()
    customer = CustomerFactory(external_id="ny", name="New York Inc", billing_entity="sas")
    billed = invoice(customer, "100.00", on=NOV_5)  # receivable 90.00 EUR
    with time_machine.travel(NOV_16, tick=False):
        note = credit_note_issue(
            invoice=billed,
            lines=[CreditLineInput(invoice_line=billed.lines.get().pk, amount=D("20.00"))],
            reason=CreditNote.REASONS[0][0],
            now=NOV_16,
        )
    billed.refresh_from_db()
    pay(billed, on=NOV_20)  # the 80.00 USD left, at 0.92

    # The note takes 20 of the 100 USD off: 18.00 EUR of the receivable (a fifth
    # of 90.00); its revenue is reversed at its day's rate (18.40 EUR): a gain of
    # 0.40. The payment settles the 80 USD left, 72.00 EUR booked, cleared at
    # 73.60: a gain of 1.60.
    key = f"credit_note:{note.pk}"
    assert functional(key, AccountKind.RECEIVABLE) == D("-18.00")
    assert functional(key, AccountKind.EXCHANGE_DIFFERENCES) == D("-0.40")
    payment = f"payment:{billed.pk}"
    assert functional(payment, AccountKind.RECEIVABLE) == D("-72.00")
    assert functional(payment, AccountKind.PAYMENTS_CLEARING) == D("73.60")
    assert functional(payment, AccountKind.EXCHANGE_DIFFERENCES) == D("-1.60")
    receivable = JournalEntry.objects.filter(billing_entity="sas", kind=AccountKind.RECEIVABLE)
    totals = receivable.aggregate(
        d=Sum("debit"), c=Sum("credit"), fd=Sum("functional_debit"), fc=Sum("functional_credit")
    )
    assert (totals["d"] - totals["c"], totals["fd"] - totals["fc"]) == (D(0), D(0))

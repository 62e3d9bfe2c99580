"""Shared by the tests of what a credit note on a purchase invoice (a void's
included) takes back: their dates, and what a refused note or void must leave
alone. Their fixtures (`catalog`, `acme`, `wallets_stay_consistent`) are in
tests/invoices/conftest.py."""

from datetime import UTC, datetime

from invoices.models import CreditBalanceEntry, CreditNote, CreditNoteLine, Invoice
from tests.wallets.support import state

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
NOV_12 = datetime(2026, 11, 12, 9, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, tzinfo=UTC)
DEC_10 = datetime(2026, 12, 10, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
JAN_15 = datetime(2027, 1, 15, tzinfo=UTC)
FEB_1 = datetime(2027, 2, 1, tzinfo=UTC)


def refused_state(invoice: Invoice) -> dict:
    """What a refused credit note or void must leave alone: wallets, blocks,
    ledger, invoices and sequences (tests.wallets.support.state), the invoice's
    status and credited amount, credit notes and their lines, the credit
    balance."""
    row = Invoice.objects.filter(pk=invoice.pk).values("status", "voided_at", "credited").get()
    return {
        **state(),
        "invoice": row,
        "credit_notes": CreditNote.objects.count(),
        "credit_note_lines": CreditNoteLine.objects.count(),
        "credit_balance": list(CreditBalanceEntry.objects.values_list("amount", flat=True)),
    }

"""Issue 54's property: over random sequences of invoices, payments, credit
notes, voids, credit purchases, consumption and expiry, every document's
entries balance, receivable is what the invoices still have due, and deferred
revenue is what the wallets hold at sale value (the revenue report's deferred
balance, and each block's price less what it recognized and gave back)."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import time_machine
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.journal.models import AccountKind, JournalEntry
from common.errors import BillingError
from customers.services import customer_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import Invoice
from invoices.services import invoice_void
from invoices.settlement import invoice_mark_paid
from plans.models import TaxRate
from plans.services import tax_rate_create
from tests.journal.support import usage_invoice
from wallets.drawdown import CustomerDraws, UsageDraw, usage_draw
from wallets.journal_entries import taken_back
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock
from wallets.revenue import credit_revenue
from wallets.valuation import block_recognized, block_undone

EXAMPLES = itertools.count()
START = datetime(2026, 11, 2, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)

OPS = st.one_of(
    st.tuples(st.just("invoice"), st.integers(1, 50_000)),
    st.tuples(st.just("pay"), st.integers(0, 9)),
    st.tuples(st.just("credit"), st.integers(0, 9), st.integers(1, 50_000)),
    st.tuples(st.just("void"), st.integers(0, 9)),
    st.tuples(st.just("buy"), st.integers(1, 500), st.integers(0, 50_000), st.booleans()),
    st.tuples(st.just("use"), st.integers(1, 300)),
    st.tuples(
        st.just("expire"),
    ),
)


def balance(customer, kind: str) -> D:
    totals = JournalEntry.objects.filter(customer=customer, kind=kind).aggregate(
        debit=Sum("debit"), credit=Sum("credit")
    )
    return (totals["debit"] or D(0)) - (totals["credit"] or D(0))


def held_at_sale_value(customer) -> D:
    """What the customer's sold, unexpired credit blocks still defer."""
    blocks = list(
        CreditBlock.objects.filter(
            wallet__customer=customer, kind=CreditBlock.PAID, price_paid__gt=0
        )
    )
    taken = taken_back([b.pk for b in blocks])
    held = D(0)
    for block in blocks:
        if block.expired_at is not None:
            continue
        back = taken.get(block.pk, D(0))
        used = block.amount - block.remaining - back
        price, amount, cur = block.price_paid, block.amount, block.currency
        held += (
            price
            - block_recognized(price, amount, used, back, cur)
            - block_undone(price, amount, back, cur)
        )
    return held


def run(customer, op: tuple, now: datetime) -> None:
    invoices = list(Invoice.objects.filter(customer=customer).order_by("pk"))
    name = op[0]
    if name == "invoice":
        usage_invoice(customer, f"{D(op[1]) / 100:.2f}", now=now)
    elif name == "buy":
        expires = now + timedelta(minutes=30) if op[3] else None
        credits_grant(
            customer=customer,
            credits=D(op[1]),
            kind=CreditBlock.PAID,
            price=D(op[2]) / 100,
            expires_at=expires,
            now=now,
        )
    elif name == "use":
        with transaction.atomic():
            usage_draw(
                batch=[
                    CustomerDraws(
                        customer,
                        START,
                        END,
                        [UsageDraw("credits", "", "runs", D(op[1]), D(op[1]), now)],
                    )
                ],
                now=now,
            )
    elif name == "expire":
        credits_expire(now=now)
    elif invoices:
        invoice = invoices[op[1] % len(invoices)]
        if name == "pay":
            invoice_mark_paid(invoice=invoice, reference="bank", now=now)
        elif name == "void":
            invoice_void(invoice=invoice, reason="", now=now)
        else:
            line = invoice.lines.first()
            credit_note_issue(
                invoice=invoice,
                lines=[CreditLineInput(line.pk, D(op[2]) / 100)],
                reason="other",
                now=now,
            )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=1, max_size=12))
def test_every_document_balances_and_the_accounts_say_what_the_documents_say(db, ops):
    if not TaxRate.objects.filter(code="vat").exists():
        tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    code = f"p{next(EXAMPLES)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    for step, op in enumerate(ops):
        now = START + timedelta(hours=step)
        try:
            # The clock at the step: a document is dated when it is issued
            # (invoices.issue_dates), and a payment is never before its invoice.
            with time_machine.travel(now, tick=False), transaction.atomic():
                run(customer, op, now)
        except BillingError:
            pass  # refused (paying a paid invoice, crediting too much): nothing changed

    per_document = (
        JournalEntry.objects.filter(customer=customer)
        .values("document_key", "currency")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
    )
    assert [row for row in per_document if row["debit"] != row["credit"]] == []

    due = sum((i.amount_due for i in Invoice.objects.filter(customer=customer)), D(0))
    assert balance(customer, AccountKind.RECEIVABLE) == due

    assert -balance(customer, AccountKind.DEFERRED_REVENUE) == held_at_sale_value(customer)
    # and the revenue report, over every customer so far, says the same
    report = [row for row in credit_revenue(until=END) if row.month.month == 1]
    report_deferred = sum((row.deferred_closing for row in report), D(0))
    journal_deferred = JournalEntry.objects.filter(kind=AccountKind.DEFERRED_REVENUE).aggregate(
        total=Sum("credit")
    )["total"] or D(0)
    journal_deferred -= JournalEntry.objects.filter(kind=AccountKind.DEFERRED_REVENUE).aggregate(
        total=Sum("debit")
    )["total"] or D(0)
    assert journal_deferred == report_deferred

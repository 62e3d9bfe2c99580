"""A batch of drafts finalized together (invoices.services.invoices_finalize_due):
numbers and dates written for the whole batch at once, and the credit balance
asked about once, yet an invoice below zero early in the batch still pays the
same customer's next invoice in it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invoices.credit_balance import credit_balance
from invoices.models import Invoice
from invoices.services import invoice_write_draft, invoices_finalize_due
from tests.factories import CustomerFactory
from tests.invoices.conftest import base_fee_lines

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def draft(customer, *amounts: str, start=NOV_1) -> Invoice:
    return invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=start,
        period_end=start + timedelta(days=30),
        lines=base_fee_lines(*amounts),
        now=NOV_1,
    )


def test_an_invoice_below_zero_pays_the_next_one_of_its_customer_in_the_same_batch():
    # given: one customer's credit (first) and charge (second), another's charge
    acme = CustomerFactory(external_id="acme", currency="USD", payment_terms_days=14)
    beta = CustomerFactory(external_id="beta", currency="USD")
    credit = draft(acme, "-30.00")
    charge = draft(acme, "25.00", start=DEC_1)
    other = draft(beta, "10.00")

    # when: finalized on Nov 1, the clock moved there (a document is dated when
    # it is issued: invoices.issue_dates)
    with time_machine.travel(NOV_1, tick=False):
        assert invoices_finalize_due(cutoff=NOV_1, now=NOV_1) == 3

    # then
    credit, charge, other = (Invoice.objects.get(pk=i.pk) for i in (credit, charge, other))
    assert (credit.status, credit.number, credit.due_at) == (
        Invoice.FINALIZED,
        "INV-2026-000001",
        NOV_1 + timedelta(days=14),
    )
    assert (charge.status, charge.number, charge.credits_applied, charge.amount_due) == (
        Invoice.PAID,
        "INV-2026-000002",
        D("25.00"),
        0,
    )
    assert credit_balance(acme) == D("5.00")
    assert (other.status, other.number, other.credits_applied, other.finalized_at) == (
        Invoice.FINALIZED,
        "INV-2026-000003",
        0,
        NOV_1,
    )
    assert other.due_at == NOV_1 + timedelta(days=beta.payment_terms)


def test_a_batch_is_numbered_and_asks_for_credit_balances_in_fixed_statements():
    # given
    for n in range(4):
        draft(CustomerFactory(external_id=f"c{n}", currency="USD"), "10.00")

    # when
    with CaptureQueriesContext(connection) as captured:
        assert invoices_finalize_due(cutoff=NOV_1, now=NOV_1) == 4

    # then
    statements = [q["sql"] for q in captured.captured_queries]
    assert len([s for s in statements if s.startswith("UPDATE invoices_invoice ")]) == 1
    assert len([s for s in statements if "invoices_creditbalanceentry" in s]) == 1
    assert list(Invoice.objects.order_by("id").values_list("number", flat=True)) == [
        f"INV-2026-00000{n}" for n in range(1, 5)
    ]


@pytest.mark.parametrize("give_way", [False, True])
def test_a_batch_the_database_aborts_ends_a_run_that_gives_way(monkeypatch, give_way):
    # given: five drafts, finalized two a batch, and a database that aborts the
    # second batch (as PostgreSQL aborts one side of a deadlock)
    from django.db import OperationalError

    from invoices import services

    acme = CustomerFactory(external_id="acme", currency="USD")
    drafts = [draft(acme, "10.00") for _ in range(5)]
    monkeypatch.setattr(services, "FINALIZE_BATCH", 2)
    batches = []
    finalize_batch = services._finalize_batch

    def aborting(ids, now):
        batches.append(ids)
        if len(batches) == 2:
            raise OperationalError("deadlock detected")
        return finalize_batch(ids, now)

    monkeypatch.setattr(services, "_finalize_batch", aborting)

    # when / then: a run that gives way stops there, the first batch finalized;
    # one that does not raises, the first batch finalized all the same
    if give_way:
        assert invoices_finalize_due(cutoff=NOV_1, now=NOV_1, give_way=True) == 2
    else:
        with pytest.raises(OperationalError):
            invoices_finalize_due(cutoff=NOV_1, now=NOV_1)
    statuses = [Invoice.objects.get(pk=d.pk).status for d in drafts]
    assert statuses == [Invoice.FINALIZED] * 2 + [Invoice.DRAFT] * 3
    assert len(batches) == 2

    # and: the next run finalizes the rest
    monkeypatch.setattr(services, "_finalize_batch", finalize_batch)
    assert invoices_finalize_due(cutoff=NOV_1, now=NOV_1) == 3

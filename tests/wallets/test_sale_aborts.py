"""A sale the database aborts (a deadlock) is tried again: it rolled back whole,
nothing granted and no invoice number kept, so the buyer gets the sale, once,
instead of a 503. Injected as the database raises it: inside the sale's
transaction, once its invoice is numbered."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from customers.services import customer_create
from invoices.models import Invoice
from tests.factories import runs_100_pack
from tests.threads import deadlock_detected
from tests.wallets.support import assert_all_wallets_consistent
from wallets import purchases
from wallets.models import CreditBlock, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


@pytest.fixture
def aborted_once(monkeypatch) -> list:
    """The first purchase invoice is numbered, then its transaction aborted."""
    tries = []
    invoice_create_purchase = purchases.invoice_create_purchase

    def numbered_then_aborted(**sale):
        tries.append(invoice_create_purchase(**sale).number)
        if len(tries) == 1:
            raise deadlock_detected()
        return Invoice.objects.get(number=tries[-1])

    monkeypatch.setattr(purchases, "invoice_create_purchase", numbered_then_aborted)
    return tries


@pytest.mark.parametrize(
    ("path", "body", "amount"),
    [
        pytest.param("/money", {"amount": "100.00", "currency": "USD"}, "100.00", id="top-up"),
        pytest.param("/credits", {"pack": "runs_100"}, "99.00", id="pack"),
    ],
)
def test_a_sale_the_database_aborts_is_tried_again(api, aborted_once, path, body, amount):
    # given
    customer_create(external_id="acme", name="Acme Inc", currency="USD")
    runs_100_pack()

    # when
    with time_machine.travel(NOW, tick=False):
        response = api.post(f"/api/v1/customers/acme/wallets{path}", body, format="json")

    # then: sold once, with the number the aborted try gave back
    assert response.status_code == 201, response.content
    assert aborted_once == ["INV-2026-000001"] * 2
    invoice = Invoice.objects.get()
    assert (invoice.number, invoice.total, invoice.status) == (
        "INV-2026-000001",
        D(amount),
        Invoice.FINALIZED,
    )
    assert CreditBlock.objects.get().invoice_id == invoice.pk
    assert LedgerEntry.objects.count() == 1
    assert_all_wallets_consistent()

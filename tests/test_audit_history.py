"""Audit history: a change made in the admin is recorded with who made it, when and
what changed, and shown on the object's history page; a balance change made by
usage leaves no history row (the ledger records it)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from customers.models import Customer
from customers.services import customer_create
from wallets.ledger import credits_grant
from wallets.models import Wallet

pytestmark = pytest.mark.django_db


def test_an_admin_change_is_recorded_with_its_user_and_shown(admin_client, admin_user):
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    form = {
        "external_id": "acme",
        "name": "Acme Corporation",
        "email": "",
        "currency": "USD",
        "timezone": "UTC",
        "address": "{}",
        "tax_id": "",
        "spend_limit": "250.00",
        "spend_limit_mode": "soft",
    }
    response = admin_client.post(f"/admin/customers/customer/{customer.pk}/change/", form)
    assert response.status_code == 302

    records = list(Customer.history.filter(id=customer.pk).order_by("history_id"))
    assert [(r.history_type, r.history_user) for r in records] == [
        ("+", None),  # created by the service, no person behind it
        ("~", admin_user),
    ]
    delta = records[1].diff_against(records[0])
    assert sorted(change.field for change in delta.changes) == [
        "name",
        "spend_limit",
        "spend_limit_mode",
    ]
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert admin_user.username in html and "Acme Corporation" in html


def test_usage_draws_leave_the_wallet_history_to_the_ledger(db):
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    now = datetime(2026, 11, 5, tzinfo=UTC)
    credits_grant(customer=customer, credits=Decimal(10), now=now)
    credits_grant(customer=customer, credits=Decimal(5), now=now)

    wallet = Wallet.objects.get(customer=customer)
    assert wallet.balance == 15
    # Wallets are created in bulk at first use, and balance changes are ledger entries.
    assert wallet.history.count() == 0
    assert wallet.ledger.count() == 2

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


def test_a_history_row_written_by_the_fixed_insert_holds_what_the_orm_writes(db, monkeypatch):
    # given: a subscription (JSON, decimals, dates, foreign keys) whose change is
    # recorded twice, once by the fixed INSERT (common.history) and once through the
    # ORM, which a receiver on the history model forces
    from django.db.models import signals

    from billing.models import Subscription
    from common import rawsql
    from common.history import one_change
    from tests.factories import CustomerFactory, ai_assistant_plan, prompts_meter, subscribe

    prompts_meter()
    subscription = subscribe(CustomerFactory(), ai_assistant_plan())
    subscription.overrides = {"seat_price": "7.50", "note": "é ✓"}
    subscription.seats = 4
    history = Subscription.history.model
    heard = []
    fixed = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance.history_id)

    insert = rawsql.insert

    def spied(objs):
        fixed.extend(type(obj) for obj in objs)
        insert(objs)

    monkeypatch.setattr(rawsql, "insert", spied)

    # when
    with one_change():
        subscription.save()
    signals.post_save.connect(receiver, sender=history)
    try:
        with one_change():
            subscription.save()
    finally:
        signals.post_save.disconnect(receiver, sender=history)

    # then: the fixed INSERT wrote the first row, the ORM the second, alike
    assert fixed == [history]
    *_, fast, orm = history.objects.filter(id=subscription.pk).order_by("history_id")
    assert heard == [orm.history_id]
    skipped = {"history_id", "history_date", "history_change_reason"}
    columns = [f.attname for f in history._meta.concrete_fields if f.attname not in skipped]
    assert [getattr(fast, c) for c in columns] == [getattr(orm, c) for c in columns]
    assert fast.overrides == {"seat_price": "7.50", "note": "é ✓"} and fast.seats == 4
    assert fast.history_type == "~" and fast.history_change_reason.startswith("change:")
    assert fast.history_date <= orm.history_date

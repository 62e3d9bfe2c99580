"""S39, holds (SCENARIOS.md): a money balance of 10.00, o3 output at 8.00 per
1M tokens. Hold 500,000 (4.00): open; a second (4.00): open, 2.00 left; a third
refused. Settle the first at 300,000: 2.40 drawn, 1.60 freed (3.60 left).
Release the second as failed: nothing billed (7.60 left), "1 run not charged:
failed". A new hold of 4.00 expires unsettled: expired, nothing billed, 7.60
left. The period's invoice: 2.40 drawn from the balance. Twenty holds of 1.00 at
once against a fresh 10.00: exactly ten open (PostgreSQL, threads of their own)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.test import Client

from billing.hold_models import Hold
from billing.invoicing.close import periods_close
from billing.models import HOLD_EXPIRED, UsageEvent, WebhookDelivery, WebhookEndpoint
from billing.tasks import expire_holds
from customers.portal import portal_session_create
from invoices.models import Invoice
from plans.rate_card_pricing import RateSpec
from plans.validation import ChargeSpec
from tests.factories import CustomerFactory, llm_tokens_meter, published_version, subscribe
from tests.rate_cards import MILLION, per_unit
from tests.threads import run_at_once
from wallets.models import LedgerEntry, Wallet
from wallets.purchases import money_top_up
from wallets.selectors import money_drawn

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
O3_OUTPUT = {"model": "o3", "token_type": "output"}


@pytest.fixture
def tokens_plan(db):
    llm_tokens_meter()
    rates = (
        RateSpec(when=tuple(O3_OUTPUT.items()), pricing=per_unit("8.00", MILLION)),
        RateSpec(when=(), pricing=per_unit("1.00", MILLION)),
    )
    card = ChargeSpec("llm_tokens", "balance", price_by=("model", "token_type"), rates=rates)
    return published_version("agents", charges=(card,))


def customer_with(balance: str, external_id: str = "acme"):
    customer = CustomerFactory(external_id=external_id)
    subscribe(customer, "agents", NOV_1)
    money_top_up(customer=customer, amount=D(balance), currency="USD", now=NOV_1)
    return customer


def hold(api, tokens: int, key: str, *, customer: str = "acme", expires: int = 600):
    body = {
        "meter": "llm_tokens",
        "quantity": str(tokens),
        "properties": O3_OUTPUT,
        "expires_in_seconds": expires,
        "key": key,
    }
    return api.post(f"/api/v1/customers/{customer}/holds", body, format="json")


def balance_left(api) -> str:
    """What a check says the balance can still pay (open holds kept back)."""
    body = {"meter": "llm_tokens", "quantity": "1", "properties": O3_OUTPUT}
    return api.post("/api/v1/customers/acme/check", body, format="json").json()["balance"]


def test_s39_reserve_settle_release_expire(api, tokens_plan, client):
    acme = customer_with("10.00")
    WebhookEndpoint.objects.create(url="https://hooks.example.com/b", event_types=[HOLD_EXPIRED])

    with time_machine.travel(NOW, tick=False):
        first = hold(api, 500_000, "run-1")
        second = hold(api, 500_000, "run-2")
        third = hold(api, 500_000, "run-3")
        again = hold(api, 500_000, "run-1")
        left_with_two = balance_left(api)

    assert first.status_code == 201, first.content
    assert (first.json()["status"], first.json()["amount"], first.json()["currency"]) == (
        "open",
        "4.00",
        "USD",
    )
    assert second.status_code == 201
    assert left_with_two == "2.00"
    # The third: the check's refusal (what the balance still pays: 2.00), no hold.
    assert third.status_code == 200
    refused = third.json()
    assert (refused["allowed"], refused["reason"]) == (False, "insufficient_balance")
    assert (refused["balance"], refused["remaining"]) == ("2.00", "250000")
    # The same key, the same hold.
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert Hold.objects.count() == 2
    # The portal says what the two open holds keep back of the balance.
    with time_machine.travel(NOW, tick=False):
        opened = portal_session_create(customer=acme, now=NOW).token
        while_open = client.get(f"/portal/{opened}/")
        # Another browser: the language asked stays with the one that asked.
        while_open_de = Client().get(f"/portal/{opened}/?lang=de")
    assert while_open.context["holds"] == [
        "2 runs in progress: their usage is held",
        "8.00\N{NO-BREAK SPACE}USD of your balance is held for them",
    ]
    assert while_open_de.context["holds"] == [
        "2 Läufe in Arbeit: ihre Nutzung ist reserviert",
        "8,00\N{NO-BREAK SPACE}USD Ihres Guthabens sind dafür reserviert",
    ]

    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        settled = api.post(
            f"/api/v1/holds/{first.json()['id']}/settle", {"quantity": "300000"}, format="json"
        )
        after_settle = balance_left(api)
        released = api.post(
            f"/api/v1/holds/{second.json()['id']}/release", {"reason": "failed"}, format="json"
        )
        after_release = balance_left(api)
        twice = api.post(
            f"/api/v1/holds/{second.json()['id']}/release", {"reason": "failed"}, format="json"
        )
        usage = api.get("/api/v1/customers/acme/usage").json()
        token = portal_session_create(customer=acme, now=NOW).token
        portal = client.get(f"/portal/{token}/")
        portal_fr = client.get(f"/portal/{token}/?lang=fr")

    assert settled.status_code == 200, settled.content
    assert (settled.json()["status"], settled.json()["settled_quantity"]) == ("settled", "300000")
    event = UsageEvent.objects.get(event_id=f"hold:{first.json()['id']}")
    assert event.properties == {**O3_OUTPUT, "tokens": "300000"}
    money = Wallet.objects.get(customer=acme, kind=Wallet.MONEY)
    assert money.balance == D("7.60")  # 2.40 drawn
    assert after_settle == "3.60"  # the second hold keeps its 4.00
    assert (released.status_code, released.json()["reason"]) == (200, "failed")
    assert after_release == "7.60"
    assert twice.status_code == 409
    assert usage["holds"] == {"open": [], "not_charged": {"failed": 1}}
    assert portal.context["holds"] == ["1 run not charged: failed"]
    assert "1 run not charged: failed" in portal.content.decode()
    assert portal_fr.context["holds"] == ["1 exécution non facturée : échec"]

    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        late = hold(api, 500_000, "run-4", expires=60)
    assert late.status_code == 201
    with time_machine.travel(NOW + timedelta(minutes=4), tick=False):
        # Past its expiry it holds nothing, before the sweep too.
        assert balance_left(api) == "7.60"
        assert expire_holds.delay().get() == 1
        too_late = api.post(
            f"/api/v1/holds/{late.json()['id']}/settle", {"quantity": "1"}, format="json"
        )
    assert Hold.objects.get(public_id=late.json()["id"]).status == Hold.EXPIRED
    assert too_late.status_code == 409
    (delivery,) = WebhookDelivery.objects.filter(event_type=HOLD_EXPIRED)
    assert json.loads(delivery.body)["data"]["id"] == late.json()["id"]
    assert Wallet.objects.get(pk=money.pk).balance == D("7.60")

    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(customer=acme, reason="period")
    # The balance paid the usage as it happened: the period drew 2.40 (the settled
    # 300,000 tokens, one ledger entry), and its invoice bills nothing more.
    drawn = money_drawn(customer_id=acme.pk, currency="USD", start=NOV_1, end=DEC_1)
    assert drawn == D("2.40")
    assert list(money.ledger.filter(kind=LedgerEntry.USAGE).values_list("amount", flat=True)) == [
        D("-2.40")
    ]
    assert (invoice.lines.count(), invoice.total) == (0, D(0))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_s39_twenty_holds_at_once_against_a_balance_for_ten_leave_ten_open(api, tokens_plan):
    customer_with("10.00", external_id="globex")

    def one(index: int) -> int:
        with time_machine.travel(NOW, tick=False):
            return hold(api, 125_000, f"run-{index}", customer="globex").status_code

    statuses = run_at_once(one, clients=20)

    assert sorted(statuses) == [200] * 10 + [201] * 10
    assert Hold.objects.filter(customer__external_id="globex", status=Hold.OPEN).count() == 10

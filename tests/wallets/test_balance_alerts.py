"""Low balance and auto top-up alerts state the period they belong to in the
customer's time zone, as usage threshold and spend limit alerts do (one payload
builder, billing.notifications.alerts.alert_payload), and their emails say so in
a sentence. acme is in Paris, on `runner` (2 credits a run) from 1 November
00:00 Paris time (31 October 23:00 UTC), calendar-anchored."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.models import Alert, Subscription
from billing.notifications.alerts import alert_email
from plans.models import CreditPack
from tests.factories import CustomerFactory, subscribe
from tests.wallets.support import event, ingest, repeat, wallet_of
from wallets.ledger import credits_grant, wallet_get_or_create
from wallets.models import Wallet
from wallets.purchases import auto_top_up_set, money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

PARIS_NOV_1 = datetime(2026, 10, 31, 23, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
# November in Paris: in UTC it runs from 31 Oct 23:00 to 30 Nov 23:00.
NOVEMBER_IN_PARIS = {
    "period_start": "2026-10-31T23:00:00Z",
    "period_end": "2026-11-30T23:00:00Z",
    "period": "1 Nov \u2013 30 Nov 2026 (Europe/Paris)",
}


@pytest.fixture
def acme(db):
    return CustomerFactory(
        external_id="acme", name="Acme", email="billing@acme.test", timezone_name="Europe/Paris"
    )


def on_plan(customer, plan: str) -> Subscription:
    return subscribe(customer, plan, PARIS_NOV_1, billing_anchor=Subscription.CALENDAR)


def low_balance_at(customer, threshold: str, kind: str = Wallet.CREDITS, currency: str = ""):
    wallet = wallet_get_or_create(customer=customer, kind=kind, currency=currency)
    wallet.low_balance_threshold = D(threshold)
    wallet.save(update_fields=["low_balance_threshold"])


def test_a_low_credits_balance_alert_states_the_period_in_the_customers_zone(catalog, acme):
    # given: 30 credits, alerted at 20
    subscription = on_plan(acme, "runner")
    assert (subscription.current_period_start, subscription.current_period_end) == (
        PARIS_NOV_1,
        datetime(2026, 11, 30, 23, tzinfo=UTC),
    )
    credits_grant(customer=acme, credits=D(30), now=PARIS_NOV_1)
    low_balance_at(acme, "20")

    # when: 9 runs take 18 credits
    ingest(repeat(9, "agent.run", NOW, prefix="a"), now=NOW)

    # then
    alert = Alert.objects.get()
    assert (alert.kind, alert.key, alert.period_start) == ("low_balance", "credits:20", PARIS_NOV_1)
    assert alert.payload == {
        "wallet": "credits",
        "currency": None,
        "balance": "12",
        "threshold": "20",
        **NOVEMBER_IN_PARIS,
    }
    assert alert_email(alert) == (
        "Your balance is low",
        "Hello,\n\nAcme's prepaid credits balance is 12 (at or below the 20 threshold) in "
        "the period 1 Nov \u2013 30 Nov 2026 (Europe/Paris).\n\n"
        "Buy credits to keep your usage paid for.\n",
    )


def test_a_low_money_balance_alert_writes_money_as_money(catalog, acme):
    # given: 1.00 USD on the money wallet, alerted at 0.50
    on_plan(acme, "prepaid")
    money_top_up(customer=acme, amount=D("1.00"), currency="USD", now=PARIS_NOV_1)
    low_balance_at(acme, "0.5", Wallet.MONEY, "USD")

    # when: 300,000 tokens at 0.0000025 draw 0.75
    ingest([event("t", "llm.completion", NOW, input_tokens=300_000)], now=NOW)

    # then
    assert wallet_of(acme, Wallet.MONEY, "USD").balance == D("0.25")
    alert = Alert.objects.get()
    assert (alert.kind, alert.key) == ("low_balance", "money:USD:0.5")
    assert alert.payload == {
        "wallet": "money",
        "currency": "USD",
        "balance": "0.25",
        "threshold": "0.50",
        **NOVEMBER_IN_PARIS,
    }
    assert alert_email(alert)[1] == (
        "Hello,\n\nAcme's prepaid balance is 0.25\xa0USD (at or below the 0.50\xa0USD threshold) "
        "in the period 1 Nov \u2013 30 Nov 2026 (Europe/Paris).\n\n"
        "Top up the balance to keep your usage paid for.\n"
    )


def test_an_auto_top_up_alert_states_the_pack_its_invoice_and_the_period(
    catalog, acme, django_capture_on_commit_callbacks, mailoutbox
):
    # given: 30 credits, one runs_100 pack (100 credits for 99.00) bought at 20
    on_plan(acme, "runner")
    credits_grant(customer=acme, credits=D(30), now=PARIS_NOV_1)
    auto_top_up_set(
        customer=acme, enabled=True, threshold=D(20), pack=CreditPack.objects.get(code="runs_100")
    )

    # when: 10 runs take the balance from 30 to 10, across the threshold
    with django_capture_on_commit_callbacks(execute=True):
        ingest(repeat(10, "agent.run", NOW, prefix="a"), now=NOW)

    # then: the pack is announced, not the low balance it mended
    assert wallet_of(acme).balance == 110
    alert = Alert.objects.get()
    assert (alert.kind, alert.period_start) == ("auto_top_up", PARIS_NOV_1)
    assert alert.payload == {
        "pack": "runs_100",
        "credits": "100",
        "price": "99.00",
        "currency": "USD",
        "invoice": "INV-2026-000001",
        "balance": "110",
        **NOVEMBER_IN_PARIS,
    }
    # and emailed (besides the pack's invoice)
    subject = "Your balance was topped up automatically"
    (message,) = [m for m in mailoutbox if m.subject == subject]
    assert (message.to, message.body) == (
        ["billing@acme.test"],
        "Hello,\n\nAcme's auto top-up bought a pack of 100 credits (runs_100) for 99.00\xa0USD "
        "(invoice INV-2026-000001) in the period 1 Nov \u2013 30 Nov 2026 (Europe/Paris); "
        "the credits balance is now 110.\n",
    )


def test_alerts_raised_before_they_stated_a_period_still_read(acme):
    """Rows written before the period was part of these payloads lack it; a payload
    without the facts its sentence needs is listed as it is."""
    old_low_balance = Alert(
        customer=acme,
        kind="low_balance",
        payload={"wallet": "credits", "currency": None, "balance": "0", "threshold": "0"},
    )
    old_top_up = Alert(
        customer=acme,
        kind="auto_top_up",
        payload={"pack": "runs_100", "credits": "100", "price": "99.00", "currency": "USD"},
    )
    bare = Alert(customer=acme, kind="low_balance", payload={"wallet": "credits"})

    assert alert_email(old_low_balance)[1] == (
        "Hello,\n\nAcme's prepaid credits balance is 0 (at or below the 0 threshold).\n\n"
        "Buy credits to keep your usage paid for.\n"
    )
    assert alert_email(old_top_up)[1] == (
        "Hello,\n\nAcme's auto top-up bought a pack of 100 credits (runs_100) for 99.00\xa0USD.\n"
    )
    assert alert_email(bare) == (
        "Your balance is low",
        "Hello,\n\nYour balance is low (Acme).\n\nwallet: credits\n",
    )

"""Issue 52: rollover of a plan's credits per period. A Paris customer on an
anniversary schedule from 31 August 2026, 10:00 (periods end on the 30th, the
31st, the 30th at 10:00 Paris time, across the change back from summer time):
1,000 credits a period, 50 % of what a period leaves rolls over and expires at
the end of the second period after it. Walked through with the real close and
the expiry as the beat runs them."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from billing.subscriptions.lifecycle import subscription_cancel
from tests.factories import CustomerFactory, MeterFactory, credits, published_version, subscribe
from tests.wallets.support import assert_wallet_consistent, ingest, repeat, wallet_of
from wallets.ledger import credits_expire
from wallets.models import CreditBlock, LedgerEntry
from wallets.revenue import credit_revenue

pytestmark = pytest.mark.django_db

# The period boundaries, 10:00 in Paris: summer time (UTC+2) until 25 October.
START = datetime(2026, 8, 31, 8, tzinfo=UTC)
END_1 = datetime(2026, 9, 30, 8, tzinfo=UTC)
END_2 = datetime(2026, 10, 31, 9, tzinfo=UTC)
END_3 = datetime(2026, 11, 30, 9, tzinfo=UTC)
END_4 = datetime(2026, 12, 31, 9, tzinfo=UTC)
END_5 = datetime(2027, 1, 31, 9, tzinfo=UTC)


@pytest.fixture
def paris(db):
    MeterFactory(code="agent_runs", event_name="agent.run")
    return CustomerFactory(external_id="paris", timezone_name="Europe/Paris")


def rollover_plan(**rollover):
    return published_version(
        "credits_plan",
        credits_per_period=D(1000),
        charges=(credits("agent_runs", 1),),
        **rollover,
    )


def runs(count: int, *, at: datetime, prefix: str) -> None:
    ingest(repeat(count, "agent.run", at, prefix=prefix, customer="paris"), now=at)


def beat(at: datetime, *, expiry_first: bool = False) -> None:
    """What the beat does at a period's end: the close, and the expiry (either first)."""
    if expiry_first:
        credits_expire(now=at)
    periods_close(as_of=at)
    credits_expire(now=at)


def blocks(customer) -> list[tuple]:
    return list(
        CreditBlock.objects.filter(wallet__customer=customer)
        .order_by("id")
        .values_list("source", "amount", "remaining", "effective_at", "expires_at", "priority")
    )


def ledger(customer) -> list[tuple]:
    return [(e.kind, e.amount, e.balance_after) for e in wallet_of(customer).ledger.order_by("id")]


def test_half_of_what_a_period_leaves_rolls_over_to_the_end_of_the_second_period_after(paris):
    rollover_plan(credits_rollover_percent=D(50), credits_rollover_periods=2)
    subscribe(paris, "credits_plan", START)
    # The grant keeps what the version said: 50 %, and the end of period 3.
    grant = CreditBlock.objects.get(wallet__customer=paris, source=CreditBlock.PERIOD_GRANT)
    assert (grant.rollover_percent, grant.rollover_expires_at) == (D(50), END_3)

    # Period 1: 400 of its 1,000 credits used.
    runs(400, at=START + timedelta(days=1), prefix="p1")
    beat(END_1)

    # 600 left: 300 roll over (from the period's end to the end of period 3), 300 expire.
    assert blocks(paris) == [
        ("period_grant", D(1000), D(0), START, END_1, 50),
        ("period_grant", D(1000), D(1000), END_1, END_2, 50),
        ("rollover", D(300), D(300), END_1, END_3, 49),
    ]
    assert ledger(paris) == [
        ("period_grant", D(1000), D(1000)),
        ("usage", D(-400), D(600)),
        ("period_grant", D(1000), D(1600)),
        ("rollover", D(-300), D(1300)),
        ("rollover", D(300), D(1600)),
        ("expiry", D(-300), D(1300)),
    ]
    rolled = CreditBlock.objects.get(source=CreditBlock.ROLLOVER)
    assert rolled.rolled_over_from_id == grant.pk
    assert (rolled.kind, rolled.price_paid) == (CreditBlock.PROMOTIONAL, D(0))
    assert (rolled.rollover_percent, rolled.rollover_expires_at) == (None, None)

    # The beat running again (and again) changes nothing.
    before = (blocks(paris), ledger(paris))
    assert credits_expire(now=END_1) == 0
    beat(END_1)
    beat(END_1 + timedelta(minutes=5))
    assert (blocks(paris), ledger(paris)) == before

    # Period 2: 100 credits used, drawn from the rollover before the period's own.
    runs(100, at=END_1 + timedelta(days=1), prefix="p2")
    assert [b[2] for b in blocks(paris)] == [D(0), D(1000), D(200)]

    # Period 2 ends (the expiry before the close this time): its 1,000 unused,
    # 500 roll over to the end of period 4; period 1's rollover runs on.
    beat(END_2, expiry_first=True)
    assert blocks(paris)[1:] == [
        ("period_grant", D(1000), D(0), END_1, END_2, 50),
        ("rollover", D(300), D(200), END_1, END_3, 49),
        ("rollover", D(1000) / 2, D(500), END_2, END_4, 49),
        ("period_grant", D(1000), D(1000), END_2, END_3, 50),
    ]

    # Period 3 ends: period 1's rollover expires whole (a rollover never rolls
    # over again); period 3's credits roll over as period 2's did.
    beat(END_3)
    assert blocks(paris)[2:] == [
        ("rollover", D(300), D(0), END_1, END_3, 49),
        ("rollover", D(500), D(500), END_2, END_4, 49),
        ("period_grant", D(1000), D(0), END_2, END_3, 50),
        ("period_grant", D(1000), D(1000), END_3, END_4, 50),
        ("rollover", D(500), D(500), END_3, END_5, 49),
    ]
    entries = LedgerEntry.objects.filter(wallet__customer=paris, block__expires_at=END_3)
    assert sorted((e.block.source, e.kind, e.amount) for e in entries) == [
        ("period_grant", "expiry", D(-500)),
        ("period_grant", "period_grant", D(1000)),
        ("period_grant", "rollover", D(-500)),
        ("rollover", "expiry", D(-200)),
        ("rollover", "rollover", D(300)),
        ("rollover", "usage", D(-100)),
    ]
    assert wallet_of(paris).balance == D(2000)
    assert CreditBlock.objects.filter(source=CreditBlock.ROLLOVER).count() == 3
    assert_wallet_consistent(wallet_of(paris))
    # Promotional all through: no revenue, deferred or recognized, and no breakage.
    assert credit_revenue(until=END_4) == []


def test_a_rollover_is_rounded_down_to_what_an_amount_stores(paris):
    published_version(
        "credits_plan",
        credits_per_period=D("1000.0000000001"),
        credits_rollover_percent=D("66.6667"),
        credits_rollover_periods=1,
        charges=(credits("agent_runs", 1),),
    )
    subscribe(paris, "credits_plan", START)
    runs(1, at=START + timedelta(days=1), prefix="p1")

    beat(END_1)

    # 999.0000000001 x 66.6667 % = 666.0003330000666667: down to 10 decimals (half
    # up would make 666.0003330001, a credit out of nothing); it lasts one period.
    rolled = CreditBlock.objects.get(source=CreditBlock.ROLLOVER)
    assert (rolled.amount, rolled.expires_at) == (D("666.0003330000"), END_2)
    expiry = LedgerEntry.objects.get(kind=LedgerEntry.EXPIRY)
    assert expiry.amount == D("-332.9996670001")
    assert_wallet_consistent(wallet_of(paris))


def test_without_a_rollover_all_of_a_period_expires_as_before(paris):
    rollover_plan()
    subscribe(paris, "credits_plan", START)
    runs(400, at=START + timedelta(days=1), prefix="p1")

    beat(END_1)
    beat(END_1)

    assert blocks(paris) == [
        ("period_grant", D(1000), D(0), START, END_1, 50),
        ("period_grant", D(1000), D(1000), END_1, END_2, 50),
    ]
    assert ledger(paris) == [
        ("period_grant", D(1000), D(1000)),
        ("usage", D(-400), D(600)),
        ("period_grant", D(1000), D(1600)),
        ("expiry", D(-600), D(1000)),
    ]
    assert CreditBlock.objects.filter(rollover_percent__isnull=False).count() == 0


@pytest.mark.parametrize("expiry_first", [False, True])
def test_nothing_rolls_over_when_the_subscription_ends_with_the_period(paris, expiry_first):
    rollover_plan(credits_rollover_percent=D(50), credits_rollover_periods=2)
    subscription = subscribe(paris, "credits_plan", START)
    runs(400, at=START + timedelta(days=1), prefix="p1")
    subscription_cancel(
        subscription=subscription, effective="period_end", at=START + timedelta(days=2)
    )

    beat(END_1, expiry_first=expiry_first)

    assert not CreditBlock.objects.filter(source=CreditBlock.ROLLOVER).exists()
    assert ledger(paris)[-1] == ("expiry", D(-600), D(0))
    assert_wallet_consistent(wallet_of(paris))


def test_a_grant_keeps_its_rollover_when_the_plan_changes_later(paris):
    from billing.subscriptions.lifecycle import subscription_change_plan

    rollover_plan(credits_rollover_percent=D(50), credits_rollover_periods=2)
    plain = published_version(
        "plain", credits_per_period=D(1000), charges=(credits("agent_runs", 1),)
    )
    subscription = subscribe(paris, "credits_plan", START)
    runs(400, at=START + timedelta(days=1), prefix="p1")
    subscription_change_plan(
        subscription=subscription,
        version=plain,
        effective="period_end",
        at=START + timedelta(days=2),
    )

    beat(END_1)

    rolled = CreditBlock.objects.get(source=CreditBlock.ROLLOVER)
    assert (rolled.amount, rolled.expires_at) == (D(300), END_3)
    new_grant = CreditBlock.objects.get(source=CreditBlock.PERIOD_GRANT, period_start=END_1)
    assert new_grant.rollover_percent is None


@pytest.mark.parametrize(
    "locale, expiring",
    [
        (
            "en",
            [
                "300 rolled-over credits, expire 30 Nov 2026, 10:00 Europe/Paris",
                "1,000 credits, expire 31 Oct 2026, 10:00 Europe/Paris",
            ],
        ),
        (
            "fr",
            [
                "300 crédits reportés, expirent le 30 nov. 2026, 10:00 Europe/Paris",
                "1\xa0000 crédits, expirent le 31 oct. 2026, 10:00 Europe/Paris",
            ],
        ),
    ],
)
def test_the_portal_lists_the_rollover_first_with_its_expiry(client, paris, locale, expiring):
    import time_machine

    from customers.portal import portal_session_create

    paris.locale = locale
    paris.save(update_fields=["locale"])
    rollover_plan(credits_rollover_percent=D(50), credits_rollover_periods=2)
    subscribe(paris, "credits_plan", START)
    runs(400, at=START + timedelta(days=1), prefix="p1")
    beat(END_1)

    now = END_1 + timedelta(days=1)
    with time_machine.travel(now, tick=False):
        token = portal_session_create(customer=paris, now=now).token
        response = client.get(f"/portal/{token}/")

    assert response.status_code == 200
    (wallet,) = response.context["wallets"]
    assert wallet["expiring"] == expiring
    assert expiring[0] in response.content.decode()


def test_the_wallets_api_lists_the_rollover_block_with_its_expiry(api, paris):
    import time_machine

    rollover_plan(credits_rollover_percent=D(50), credits_rollover_periods=2)
    subscribe(paris, "credits_plan", START)
    runs(400, at=START + timedelta(days=1), prefix="p1")
    beat(END_1)

    with time_machine.travel(END_1 + timedelta(days=1), tick=False):
        response = api.get("/api/v1/customers/paris/wallets")

    assert response.status_code == 200, response.content
    (wallet,) = response.json()["results"]
    assert [
        (b["source"], b["kind"], b["remaining"], b["effective_at"], b["expires_at"])
        for b in wallet["blocks"]
    ] == [
        ("rollover", "promotional", "300", "2026-09-30T08:00:00Z", "2026-11-30T09:00:00Z"),
        ("period_grant", "promotional", "1000", "2026-09-30T08:00:00Z", "2026-10-31T09:00:00Z"),
    ]

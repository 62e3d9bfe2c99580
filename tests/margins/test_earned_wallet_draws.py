"""Credits drawn are earned at what they were sold for, rounded on running
totals (wallets.revenue.consumed_at_sale_value): adjacent windows add up to
their union (a second reader's case: 3.33 + 3.33 against 6.67)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.revenue.earned import earned_window
from tests.factories import CustomerFactory
from wallets.models import CreditBlock, LedgerEntry, Wallet

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def total(start, end):
    return earned_window(start=start, end=end, currency="USD", now=NOW).total.earned


def two_credits_drawn(customer) -> None:
    """3 credits sold for 10.00 (3.3333... a credit): one drawn on 5 Nov, one on
    20 Nov."""
    wallet = Wallet.objects.create(customer=customer, kind=Wallet.CREDITS)
    block = CreditBlock.objects.create(
        wallet=wallet,
        kind=CreditBlock.PAID,
        source=CreditBlock.PACK,
        amount=D(3),
        remaining=D(1),
        price_paid=D("10.00"),
        currency="USD",
        effective_at=NOV_1,
        created_at=NOV_1,
    )
    for at in (datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)):
        LedgerEntry.objects.create(
            wallet=wallet,
            block=block,
            kind=LedgerEntry.USAGE,
            amount=D(-1),
            balance_after=D(0),
            meter="api_calls",
            occurred_at=at,
        )


def test_credits_drawn_in_adjacent_windows_add_up():
    customer = CustomerFactory(external_id="w")
    two_credits_drawn(customer)
    first, second, union = total(NOV_1, NOV_15), total(NOV_15, DEC_1), total(NOV_1, DEC_1)
    # A credit is worth 3.333...: 3.33 up to 15 Nov, 6.67 up to 1 Dec.
    assert (first, second, union) == (D("3.33"), D("3.34"), D("6.67"))


def test_credits_drawn_are_earned_under_the_plan_of_the_subscription_that_drew_them():
    """Rule: a credit drawn is earned under the plan in effect when it was drawn:
    one on starter (5 Nov), one on pro after an immediate change on the 16th (20
    Nov); not both under the plan the subscription is on now."""
    from billing.subscriptions.lifecycle import subscription_change_plan
    from tests.factories import published_version, subscribe

    starter = published_version("starter", base_fee=D("0"))
    pro = published_version("pro", base_fee=D("0"))
    customer = CustomerFactory(external_id="w")
    subscription = subscribe(customer, starter, NOV_1)
    two_credits_drawn(customer)
    subscription_change_plan(
        subscription=subscription, version=pro, effective="immediate", at=NOV_16
    )

    window = earned_window(start=NOV_1, end=DEC_1, currency="USD", now=NOW)
    drawn = sorted((p.plan, p.amount) for p in window.parts if p.meter == "api_calls")
    # 3.33 up to the change, 6.67 in all: 3.34 after it
    assert drawn == [("pro", D("3.34")), ("starter", D("3.33"))]

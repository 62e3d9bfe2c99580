"""The close takes subscriptions a group per transaction (billing.invoicing.close.
CLOSE_GROUP): one statement locks the group in id order, each period closes as it
would alone, and a subscription that cannot close fails alone: the group closes
again one by one, so those before it are closed and a rerun closes the rest.
On SQLite and PostgreSQL alike, with real commits (no test transaction around)."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.invoicing import close
from billing.invoicing.close import subscriptions_close
from billing.locks import subscriptions_lock
from billing.models import Subscription
from invoices.models import Invoice
from tests.factories import (
    CustomerFactory,
    ai_assistant_plan,
    credits,
    prompts_meter,
    published_version,
    subscribe,
)
from wallets.models import CreditBlock

pytestmark = pytest.mark.django_db(transaction=True)

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def subscriptions() -> list[Subscription]:
    prompts_meter()
    ai_assistant_plan()
    return [subscribe(CustomerFactory(external_id=f"c{n}"), "ai_assistant") for n in range(5)]


def locks(captured) -> list[str]:
    # (a COMMIT is recorded without its SQL)
    statements = [q["sql"] or "" for q in captured.captured_queries]
    return [sql for sql in statements if re.search(r'FROM "?billing_subscription"? s ', sql)]


def closed_periods() -> dict[int, list[datetime]]:
    found: dict[int, list[datetime]] = {}
    for invoice in Invoice.objects.filter(reason=Invoice.PERIOD).order_by("period_start"):
        found.setdefault(invoice.subscription_id, []).append(invoice.period_start)
    return found


def test_a_group_is_locked_by_one_statement_in_id_order(subscriptions):
    ids = [s.pk for s in subscriptions]

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        locked = subscriptions_lock([ids[3], ids[0], 987654, ids[3], ids[1]])
        read = [(s.pk, s.customer.external_id, s.version.plan.code) for s in locked]

    # then: the missing id left out, each once, by id, with what the lock joins
    assert read == [
        (ids[0], "c0", "ai_assistant"),
        (ids[1], "c1", "ai_assistant"),
        (ids[3], "c3", "ai_assistant"),
    ]
    assert len(captured.captured_queries) == 1
    if connection.features.has_select_for_update_of:
        assert captured.captured_queries[0]["sql"].endswith("ORDER BY s.id FOR NO KEY UPDATE OF s")


def test_subscriptions_close_in_groups_each_with_one_lock(subscriptions, monkeypatch):
    # given: groups of two
    monkeypatch.setattr(close, "CLOSE_GROUP", 2)

    # when
    with CaptureQueriesContext(connection) as captured:
        closed = subscriptions_close(subscription_ids=[s.pk for s in subscriptions], as_of=DEC_1)

    # then: five periods closed under three lock statements (2 + 2 + 1)
    assert closed == 5
    assert len(locks(captured)) == 3
    assert closed_periods() == {s.pk: [NOV_1] for s in subscriptions}
    assert set(Subscription.objects.values_list("current_period_start", "current_period_end")) == {
        (DEC_1, JAN_1)
    }


def test_a_subscription_two_periods_behind_in_a_group_closes_both(subscriptions):
    closed = subscriptions_close(subscription_ids=[s.pk for s in subscriptions], as_of=JAN_1)

    assert closed == 10
    assert closed_periods() == {s.pk: [NOV_1, DEC_1] for s in subscriptions}


def test_a_subscription_that_cannot_close_fails_alone_and_a_rerun_closes_the_rest(
    subscriptions,
):
    # given: the third subscription's closing invoice is already there (a unique
    # constraint refuses a second: the database fails its close)
    third = subscriptions[2]
    stray = Invoice.objects.create(
        customer=third.customer,
        subscription=third,
        reason=Invoice.PERIOD,
        currency="USD",
        period_start=NOV_1,
        period_end=DEC_1,
        created_at=DEC_1,
    )
    ids = [s.pk for s in subscriptions]

    # when: the five close in one group
    with pytest.raises(IntegrityError):
        subscriptions_close(subscription_ids=ids, as_of=DEC_1)

    # then: the two before it are closed, committed; it and those after it are not
    assert closed_periods() == {ids[0]: [NOV_1], ids[1]: [NOV_1], third.pk: [NOV_1]}
    assert Invoice.objects.filter(subscription=third, reason=Invoice.PERIOD).get() == stray
    advanced = Subscription.objects.filter(current_period_start=DEC_1)
    assert sorted(advanced.values_list("id", flat=True)) == ids[:2]

    # when: the stray invoice goes, and the close runs again
    stray.delete()
    closed = subscriptions_close(subscription_ids=ids, as_of=DEC_1)

    # then: the other three close, and every period is billed once
    assert closed == 3
    assert closed_periods() == {pk: [NOV_1] for pk in ids}


def test_a_subscription_whose_close_grants_credits_closes_in_a_transaction_of_its_own(
    subscriptions,
):
    # given: two more customers on a plan granting 1,000 credits a period; the
    # grant locks the customer's credit wallet, which an ingest batch locks in
    # wallet order: a group holding several wallets could deadlock with it
    published_version(
        "included_credits", credits_per_period=D(1000), charges=(credits("prompts", 1),)
    )
    granting = [
        subscribe(CustomerFactory(external_id=f"g{n}"), "included_credits") for n in range(2)
    ]
    ids = [s.pk for s in subscriptions + granting]

    # when: all seven in one group
    with CaptureQueriesContext(connection) as captured:
        closed = subscriptions_close(subscription_ids=ids, as_of=DEC_1)

    # then: the group's lock, then each granting subscription locked again alone
    assert closed == 7
    assert len(locks(captured)) == 3
    assert closed_periods() == {pk: [NOV_1] for pk in ids}
    for subscription in granting:
        grants = CreditBlock.objects.filter(
            wallet__customer=subscription.customer, source=CreditBlock.PERIOD_GRANT
        )
        assert sorted(grants.values_list("period_start", "amount")) == [
            (NOV_1, D(1000)),
            (DEC_1, D(1000)),
        ]

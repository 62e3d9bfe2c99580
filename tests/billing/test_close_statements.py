"""The close stays cheap per subscription: its row lock loads what the close reads
with it in one statement, a period closes in a fixed number of statements (the
reads of what most periods do not have, threshold invoices, seat changes, a
discount, late usage, own tax rates, are fixed SQL that loads nothing when there
is nothing), and a batch of drafts takes its numbers in one statement, in the
order it finalizes them."""

import re
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.invoicing.close import subscriptions_close
from billing.locks import subscription_lock
from billing.models import Subscription
from common.history import change_id, one_change
from invoices.models import Invoice
from invoices.services import invoices_finalize_due
from plans.models import PlanVersion
from tests.factories import (
    CustomerFactory,
    ai_assistant_plan,
    prompts_meter,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def subscription(acme) -> Subscription:
    prompts_meter()
    ai_assistant_plan()
    return subscribe(acme, "ai_assistant")


def reads(captured) -> list[str]:
    return [q["sql"] for q in captured if q["sql"].lstrip().upper().startswith("SELECT")]


def test_the_lock_loads_the_customer_the_versions_and_their_plans_in_one_statement(
    subscription,
):
    # given: a change to another plan scheduled for the period's end
    other = published_version("other_plan")
    Subscription.objects.filter(pk=subscription.pk).update(scheduled_version=other)

    # when
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        locked = subscription_lock(subscription.pk)
        read = (
            locked.customer.external_id,
            locked.version.plan.code,
            locked.scheduled_version.plan.code,
            locked.current_period_end,
        )

    # then
    assert read == ("acme", "ai_assistant", "other_plan", DEC_1)
    assert len(reads(captured.captured_queries)) == 1


def test_the_lock_of_a_subscription_without_a_scheduled_change(subscription):
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        locked = subscription_lock(subscription.pk)
        assert locked.scheduled_version is None
        assert isinstance(locked.version, PlanVersion)
    assert len(reads(captured.captured_queries)) == 1


def test_the_lock_of_a_missing_subscription_is_refused(db):
    with transaction.atomic(), pytest.raises(Subscription.DoesNotExist):
        subscription_lock(987654)


def test_a_period_closes_in_a_fixed_number_of_statements(subscription):
    # given: a warm process (the version's terms and the meters read once before)
    second = subscribe(CustomerFactory(external_id="beta"), "ai_assistant")
    subscriptions_close(subscription_ids=[second.pk], as_of=DEC_1)

    # when
    with CaptureQueriesContext(connection) as captured:
        closed = subscriptions_close(subscription_ids=[subscription.pk], as_of=DEC_1)

    # then: one period, one lock (none taken again for the next period, not due)
    assert closed == 1
    statements = [q["sql"] for q in captured.captured_queries]
    locks = [sql for sql in statements if re.search(r'FROM "?billing_subscription"? s ', sql)]
    assert len(locks) == 1
    # 14, and one for the customer's commit over the period (wallets.commits).
    assert len(statements) <= 15, "\n".join(statements)


def test_a_subscription_two_periods_behind_closes_both(subscription):
    closed = subscriptions_close(subscription_ids=[subscription.pk], as_of=JAN_1)

    assert closed == 2
    periods = Invoice.objects.filter(subscription=subscription, reason=Invoice.PERIOD)
    assert sorted(invoice.period_start for invoice in periods) == [NOV_1, DEC_1]


def test_a_batch_of_drafts_takes_consecutive_numbers_in_the_order_it_finalizes_them(db):
    # given: three customers' start invoices, drafts
    prompts_meter()
    ai_assistant_plan()
    customers = [CustomerFactory(external_id=f"c{n}") for n in range(3)]
    for customer in reversed(customers):
        subscribe(customer, "ai_assistant")

    # when
    finalized = invoices_finalize_due(cutoff=NOV_1, now=NOV_1)

    # then: by customer, then invoice
    assert finalized == 3
    numbered = Invoice.objects.order_by("customer_id", "id").values_list("number", flat=True)
    assert list(numbered) == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]


def test_the_close_writes_the_subscriptions_audit_row_as_a_save_does(subscription):
    # given
    before = subscription.history.count()

    # when: the close, inside one audit change
    with one_change():
        assert subscriptions_close(subscription_ids=[subscription.pk], as_of=DEC_1) == 1

    # then: one more row, a change ("~"), of the subscription as the close left it
    rows = list(subscription.history.order_by("-history_id"))
    assert len(rows) == before + 1
    latest = rows[0]
    assert (latest.history_type, latest.history_user_id) == ("~", None)
    assert (latest.current_period_start, latest.current_period_end) == (DEC_1, JAN_1)
    assert (latest.status, latest.version_id, latest.usage_from) == (
        Subscription.ACTIVE,
        subscription.version_id,
        None,
    )
    assert change_id(latest) is not None
    fresh = Subscription.objects.get(pk=subscription.pk)
    assert (fresh.current_period_start, fresh.current_period_end) == (DEC_1, JAN_1)

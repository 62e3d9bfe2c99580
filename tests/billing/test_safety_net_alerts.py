"""Safety net for usage alerts (S12): an alert fires once per period and threshold,
also after an immediate plan change moves the subscription's `usage_from` (usage
counts from the change, the period and its alerts stay the same). The period an
alert belongs to is the billing period, never the start of the usage counted
(billing.usage.alerts._window / _check_subscription). The check is run as the worker
runs it after each ingest (usage_alerts_check), with time set explicitly."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from billing.models import Alert
from billing.subscriptions.lifecycle import subscription_change_plan
from billing.usage.alerts import usage_alerts_check
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from tests.factories import (
    CustomerFactory,
    PlanVersionFactory,
    ai_assistant_plan,
    overage,
    prompts_meter,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.fixture
def changed_plan_on_the_10th(db):
    """acme on ai_assistant v1 (19.99) from November 1st with 120 prompts by the 5th
    (60%: the 50% alert fired), moved at once to v2 (24.99) on the 10th."""
    prompts_meter()
    plan = ai_assistant_plan()
    acme = CustomerFactory(external_id="acme")
    subscription = subscribe(acme, plan)
    prompts(120, at=NOV_5, prefix="a")
    assert fired(NOV_5) == [("prompts:50", NOV_1, "120")]
    v2 = PlanVersionFactory(
        plan=plan, base_fee=D("24.99"), charges=(overage("prompts", 200, "0.05"),)
    )
    subscription_change_plan(
        subscription=subscription, version=v2, effective="immediate", at=NOV_10
    )
    subscription.refresh_from_db()
    assert subscription.usage_from == NOV_10
    return acme


def prompts(count: int, *, at: datetime, prefix: str) -> None:
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": at.isoformat(),
        }
        for i in range(count)
    ]
    assert events_ingest(events=events, now=at).accepted == count


def fired(now: datetime) -> list[tuple]:
    """Run the check at `now`: the alerts it raised, as (key, period, quantity)."""
    acme = Customer.objects.get(external_id="acme")
    return [
        (a.key, a.period_start, a.payload["quantity"])
        for a in usage_alerts_check(customer_ids=[acme.pk], now=now)
    ]


def test_a_threshold_fired_before_a_plan_change_does_not_fire_again(changed_plan_on_the_10th):
    """Rule: once per period and threshold. After the change usage counts from the
    10th: 110 prompts since are 55%, a threshold the period has passed already."""
    # when
    prompts(110, at=NOV_15, prefix="b")
    again = fired(NOV_15)

    # then
    assert again == []
    assert list(Alert.objects.values_list("key", "period_start")) == [("prompts:50", NOV_1)]


def test_a_higher_threshold_after_a_plan_change_fires_once_for_the_period(
    changed_plan_on_the_10th,
):
    """Rule: the thresholds not yet reached this period fire on the usage since the
    change, keyed by the billing period (November), and only once."""
    # when: 160 prompts since the change (80%)
    prompts(160, at=NOV_15, prefix="b")
    first = fired(NOV_15)
    prompts(5, at=NOV_20, prefix="c")
    second = fired(NOV_20)

    # then
    assert first == [("prompts:75", NOV_1, "160")]
    assert second == []
    alert = Alert.objects.get(key="prompts:75")
    assert (alert.payload["period_start"], alert.payload["period_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert list(Alert.objects.order_by("id").values_list("key", "period_start")) == [
        ("prompts:50", NOV_1),
        ("prompts:75", NOV_1),
    ]


def test_the_period_after_a_plan_change_arms_the_alerts_again(changed_plan_on_the_10th):
    periods_close(as_of=DEC_1)

    prompts(100, at=DEC_5, prefix="d")

    assert fired(DEC_5) == [("prompts:50", DEC_1, "100")]

"""The webhook `subscription.entitlements_changed`: sent when a plan change, a
migration, a deal taking effect at a period's start, or the subscription's end
changes the features a customer is entitled to, so that a product caching
the entitlements drops them. Sent once per change (its id is derived from the
subscription, the reason and the moment), after commit, only when the
features differ."""

from datetime import datetime

from billing.models import ENTITLEMENTS_CHANGED, Subscription
from billing.notifications.webhooks import webhook_event_publish
from plans.feature_grants import features_compared, granted
from plans.overrides import subscription_spec


def entitlements_of(subscription: Subscription) -> dict[str, object]:
    """The features the subscription grants now: none once it is not live."""
    if subscription.status not in Subscription.LIVE:
        return {}
    return granted(subscription_spec(subscription).features)


def entitlements_announce(
    *,
    subscription: Subscription,
    before: dict[str, object],
    reason: str,
    now: datetime,
    change_id: int | None = None,
) -> None:
    """Publish the change from `before` to the subscription's entitlements now,
    if there is one. `reason`: plan_change, period_start or ended. The event's
    id names the history row of the change (`change_id`) or, at a period's
    start, the moment: a rerun announces it once, two changes twice."""
    after = entitlements_of(subscription)
    if after == before:
        return
    webhook_event_publish(
        event_type=ENTITLEMENTS_CHANGED,
        data={
            "subscription": subscription.pk,
            "reason": reason,
            "before": before,
            "after": after,
            **features_compared(before, after),
        },
        customer=subscription.customer,
        now=now,
        event_id=f"evt_subscription_{subscription.pk}_entitlements_{reason}_"
        + (f"change_{change_id}" if change_id is not None else str(int(now.timestamp()))),
    )

"""A subscription's deal: overrides of its version's terms (plans.overrides).
Set when the subscription is created (from its start), by a plan change that
repeats them (a plan change drops them otherwise), or for the next period on a
live subscription; the subscription's history records each change."""

from django.db import transaction
from django.db.models import Q

from billing.locks import subscription_lock
from billing.models import Subscription
from common.errors import Conflict
from plans.overrides import Overrides, overrides_to_json, overrides_validate
from plans.selectors import feature_kinds_in, meter_codes_in, meter_groups_in, version_spec


def overrides_check(*, version, overrides: Overrides | None) -> dict:
    """The overrides as a subscription stores them, once they fit `version`;
    raises InvalidRequest otherwise. Reads only."""
    if not overrides:
        return {}
    spec = version_spec(version=version)
    overrides_validate(
        spec,
        overrides,
        known_meters=meter_codes_in(spec),
        known_features=feature_kinds_in(overrides),
        meter_groups=meter_groups_in(spec),
    )
    return overrides_to_json(overrides)


def subscription_set_overrides(
    *, subscription: Subscription, overrides: Overrides | None
) -> Subscription:
    """Replace the subscription's overrides from its next period (the current
    period was billed in advance on the current terms); an empty value removes
    them then. Against the version of the next period (a scheduled plan change's).
    Locks the subscription row."""
    with transaction.atomic():
        subscription = subscription_lock(subscription.pk)
        if subscription.status not in Subscription.LIVE or subscription.cancel_at_period_end:
            raise Conflict(f"subscription {subscription.pk} has no next period")
        version = subscription.scheduled_version or subscription.version
        subscription.next_overrides = overrides_check(version=version, overrides=overrides)
        subscription.save(update_fields=["next_overrides"])
    return subscription


def features_named_by_deals(codes) -> set[str]:
    """The feature codes among these that a subscription's deal (in force, or
    from the next period) grants, changes or revokes: their kind is fixed, and
    they are not deleted."""
    wanted = set(codes)
    named: set[str] = set()
    deals = Subscription.objects.filter(
        Q(overrides__has_key="features") | Q(next_overrides__has_key="features")
    ).values_list("overrides", "next_overrides")
    for stored in deals:
        for deal in stored:
            named.update(item["feature"] for item in (deal or {}).get("features", ()))
    return named & wanted

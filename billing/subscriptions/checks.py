"""The checks a subscription's creation and changes pass before anything is
written (billing.subscriptions.lifecycle runs them under the row lock; the
admin's forms run them first to show the refusals on the form)."""

from datetime import datetime

from billing.models import Subscription
from billing.subscriptions import refusals
from billing.usage.billed_parts import threshold_billed
from common.errors import Conflict, InvalidRequest, NotFound
from customers.models import Customer
from plans.models import Plan, PlanVersion

MAX_SEATS = 1_000_000


def subscription_create_check(
    *,
    customer: Customer,
    plan: Plan,
    version_number: int | None = None,
    seats: int = 1,
    billing_anchor: str = Subscription.ANNIVERSARY,
) -> PlanVersion:
    """Raise the BillingError subscription_create would refuse these terms with,
    as the catalog and the customer stand; else the version it would subscribe
    to. Reads only: the admin's form validates with it."""
    if billing_anchor not in dict(Subscription.ANCHORS):
        raise InvalidRequest(
            f"billing_anchor must be one of {', '.join(dict(Subscription.ANCHORS))}",
            fields={"billing_anchor": ["must be anniversary or calendar"]},
        )
    check_seats(seats)
    versions = plan.versions.filter(status=PlanVersion.PUBLISHED)
    if version_number is None:
        version = versions.order_by("-number").first()
        if version is None:
            raise Conflict(
                f"plan {plan.code!r} has no published version",
                **refusals.refused("plan", refusals.no_published_version_text(plan)),
            )
    else:
        version = plan.versions.filter(number=version_number).first()
        if version is None:
            raise NotFound(f"plan {plan.code!r} has no version {version_number}")
        if version.status != PlanVersion.PUBLISHED:
            raise Conflict(
                f"{plan.code} v{version_number} is {version.status}; only a published "
                "version takes new subscriptions",
                **refusals.refused("version", refusals.not_published_text(version)),
            )
    if version.currency != customer.currency:
        raise InvalidRequest(
            f"plan {plan.code!r} bills in {version.currency} but customer "
            f"{customer.external_id!r} pays in {customer.currency}",
            **refusals.refused("plan", refusals.currency_mismatch_text(version, customer)),
        )
    check_not_subscribed(customer)
    return version


def check_seats(seats: int) -> None:
    if isinstance(seats, bool) or not isinstance(seats, int) or not 1 <= seats <= MAX_SEATS:
        raise InvalidRequest(
            f"seats must be a whole number from 1 to {MAX_SEATS}",
            fields={"seats": [f"must be from 1 to {MAX_SEATS}"]},
        )


def check_not_subscribed(customer: Customer) -> None:
    if Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE).exists():
        raise Conflict(
            f"customer {customer.external_id!r} already has a live subscription; "
            "change its plan instead",
            **refusals.refused("customer", refusals.already_subscribed_text(customer)),
        )


def check_in_period(subscription: Subscription, at: datetime, *, after_change: bool) -> None:
    """`at` lies in what is left of the current period. An immediate change or
    cancel (`after_change`) must come strictly after a previous immediate change:
    two at one instant would bill the same moment twice."""
    start = subscription.usage_from or subscription.current_period_start
    if not start <= at < subscription.current_period_end:
        raise InvalidRequest(
            f"'at' must lie in the current period, from {start.isoformat()} "
            f"to before {subscription.current_period_end.isoformat()}",
            **refusals.refused(
                "at", refusals.outside_period_text(start, subscription.current_period_end)
            ),
        )
    if after_change and subscription.usage_from is not None and at == subscription.usage_from:
        raise Conflict(
            f"the subscription changed plan at {at.isoformat()} already; a further change "
            "must come later",
            fields={"at": ["a change happened at this moment already"]},
        )
    if after_change:
        # The usage up to a threshold invoice is billed: a change before it would
        # bill that usage at a version it was not used on.
        billed = threshold_billed(
            subscription=subscription,
            period_start=subscription.current_period_start,
            usage_from=start,
        )
        if billed.records and at < billed.records[-1].created_at:
            last = billed.records[-1]
            raise InvalidRequest(
                f"'at' must not come before {last.created_at.isoformat()}: the usage up to "
                f"then is billed on threshold invoice {last.invoice.number}",
                fields={"at": ["before the usage billed on a threshold invoice"]},
            )


def plan_change_check(*, subscription: Subscription, version, effective: str, at: datetime) -> None:
    """Raise the BillingError that subscription_change_plan would refuse this change
    with, as the subscription and version stand. Reads only."""
    if effective not in ("immediate", "period_end"):
        raise InvalidRequest(
            "effective must be immediate or period_end", fields={"effective": ["unknown"]}
        )
    if subscription.status not in Subscription.LIVE:
        raise Conflict(
            f"subscription {subscription.pk} is {subscription.status}",
            words=refusals.not_live_text(subscription),
        )
    if version.status != version.PUBLISHED:
        raise Conflict(
            f"{version.plan.code} v{version.number} is {version.status}; only a "
            "published version takes subscribers",
            **refusals.refused("version", refusals.not_published_text(version)),
        )
    if version.currency != subscription.customer.currency:
        raise InvalidRequest(
            f"{version.plan.code} bills in {version.currency}, the customer pays in "
            f"{subscription.customer.currency}",
            **refusals.refused(
                "plan", refusals.currency_mismatch_text(version, subscription.customer)
            ),
        )
    if effective == "immediate":
        if version.pk == subscription.version_id:
            raise Conflict("the subscription is on that version already")
        check_in_period(subscription, at, after_change=True)


def seats_change_check(*, subscription: Subscription, seats: int, at: datetime) -> None:
    """Raise the BillingError subscription_set_seats would refuse this change
    with, as the subscription stands. Reads only."""
    check_seats(seats)
    if subscription.status not in Subscription.LIVE:
        raise Conflict(f"subscription {subscription.pk} is {subscription.status}")
    check_in_period(subscription, at, after_change=False)

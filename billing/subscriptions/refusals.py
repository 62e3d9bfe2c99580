"""Why a subscription cannot be created or changed, as the field messages of
the refusals (billing.subscriptions.lifecycle): ops read them on the admin's
forms as they are, and API callers in the error's `fields`, so they are written
for a person, naming the plan and the customer. In the language of the admin
user who asked; the API's always in English (it activates no other language)."""

from datetime import UTC, datetime

from django.utils.translation import gettext as _

from common.customer_text import day_time
from customers.models import Customer
from plans.models import Plan, PlanVersion


def refused(field: str, text: str) -> dict:
    """A refusal's keywords: `text` on the field for the API, and as the words
    the admin shows (BillingError.words)."""
    return {"fields": {field: [text]}, "words": text}


def no_published_version_text(plan: Plan) -> str:
    return _(
        "{plan} has no published version: publish one before subscribing customers to it"
    ).format(plan=plan.name)


def not_published_text(version: PlanVersion) -> str:
    """'Pro v3 is a draft: publish it before subscribing customers to it'."""
    name = f"{version.plan.name} v{version.number}"
    if version.status == PlanVersion.DRAFT:
        return _("{version} is a draft: publish it before subscribing customers to it").format(
            version=name
        )
    return _(
        "{version} is archived: it takes no new subscribers; choose a published version"
    ).format(version=name)


def currency_mismatch_text(version: PlanVersion, customer: Customer) -> str:
    """'Pro v2 bills in EUR and Acme Inc pays in USD: choose a version in USD'."""
    return _(
        "{version} bills in {currency} and {customer} pays in {paid_in}: "
        "choose a version in {paid_in}"
    ).format(
        version=f"{version.plan.name} v{version.number}",
        currency=version.currency,
        customer=customer.name or customer.external_id,
        paid_in=customer.currency,
    )


def not_live_text(subscription) -> str:
    """'The subscription of Acme Inc is canceled: it takes no plan change'."""
    customer = subscription.customer
    return _("The subscription of {customer} is {status}: it takes no plan change").format(
        customer=customer.name or customer.external_id,
        status=subscription.get_status_display().lower(),
    )


def already_subscribed_text(customer: Customer) -> str:
    return _(
        "{customer} already has a live subscription (one at a time): change its plan instead"
    ).format(customer=customer.name or customer.external_id)


def utc_text(moment: datetime) -> str:
    """'1 Nov 2026, 00:00 UTC'."""
    return day_time(moment, UTC)


def outside_period_text(start: datetime, end: datetime) -> str:
    return _("Pick a moment in the current period, from {start} to before {end}").format(
        start=utc_text(start), end=utc_text(end)
    )

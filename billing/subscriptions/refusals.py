"""Why a subscription cannot be created or changed, as the field messages of
the refusals (billing.subscriptions.lifecycle): ops read them on the admin's
forms as they are, and API callers in the error's `fields`, so they are written
for a person, naming the plan and the customer."""

from datetime import UTC, datetime

from billing.core.customer_text import day_time
from customers.models import Customer
from plans.models import Plan, PlanVersion


def refused(field: str, text: str) -> dict:
    """A refusal's keywords: `text` on the field for the API, and as the words
    the admin shows (BillingError.words)."""
    return {"fields": {field: [text]}, "words": text}


def no_published_version_text(plan: Plan) -> str:
    return f"{plan.name} has no published version: publish one before subscribing customers to it"


def not_published_text(version: PlanVersion) -> str:
    """'Pro v3 is a draft: publish it before subscribing customers to it'."""
    name = f"{version.plan.name} v{version.number}"
    if version.status == PlanVersion.DRAFT:
        return f"{name} is a draft: publish it before subscribing customers to it"
    return f"{name} is archived: it takes no new subscribers; choose a published version"


def currency_mismatch_text(version: PlanVersion, customer: Customer) -> str:
    """'Pro v2 bills in EUR and Acme Inc pays in USD: choose a version in USD'."""
    return (
        f"{version.plan.name} v{version.number} bills in {version.currency} and "
        f"{customer.name or customer.external_id} pays in {customer.currency}: "
        f"choose a version in {customer.currency}"
    )


def not_live_text(subscription) -> str:
    """'The subscription of Acme Inc is canceled: it takes no plan change'."""
    customer = subscription.customer
    return (
        f"The subscription of {customer.name or customer.external_id} is "
        f"{subscription.get_status_display().lower()}: it takes no plan change"
    )


def already_subscribed_text(customer: Customer) -> str:
    return (
        f"{customer.name or customer.external_id} already has a live subscription "
        "(one at a time): change its plan instead"
    )


def utc_text(moment: datetime) -> str:
    """'1 Nov 2026, 00:00 UTC'."""
    return day_time(moment, UTC)


def outside_period_text(start: datetime, end: datetime) -> str:
    return f"Pick a moment in the current period, from {utc_text(start)} to before {utc_text(end)}"

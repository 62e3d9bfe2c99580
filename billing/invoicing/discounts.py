"""The close's discount step: after usage and the true-up, before tax (which
invoices.services computes on the subtotal less the discount). A subscription's
running discount takes `percent_off` of the period invoice's subtotal, rounded
half up once to the currency's minor unit, or its `amount_off` capped at the
subtotal, as one line of kind `discount` with a negative amount: never below
zero, and nothing off a subtotal at or below zero. Only period invoices are
discounted: not the start, plan-change, cancel, purchase or threshold ones.

The caller (the close) holds the subscription's row lock; every write to a
discount happens under it (billing.subscriptions.discounts takes it too)."""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.coupon_rule import discount_of, running_discount
from billing.models import Discount, Subscription
from billing.usage.period_fees import closing_lines
from billing.usage.priced import UsageSummary
from billing.usage.summary import PeriodUsage
from common import customer_text
from common.vocabulary import LineKind
from plans.rating import LineInput

ZERO = Decimal(0)


def _description(discount: Discount, currency: str) -> str:
    coupon = discount.coupon
    if coupon.is_percent:
        off = customer_text.percent(coupon.percent_off)
    else:
        off = customer_text.money_text(coupon.amount_off, currency)
    return _("%(coupon)s: %(off)s off") % {"coupon": coupon.name, "off": off}


def period_discount_lines(
    *, subscription: Subscription, lines: list[LineInput], currency: str, at: datetime
) -> list[LineInput]:
    """The discount line of the period invoice made of `lines`, and one period of
    the running discount used (whether or not the subtotal left anything to take
    off): a discount with no period left is ended at `at`. [] without one."""
    discount = running_discount(subscription)
    if discount is None:
        return []
    amount = discount_of(discount, lines=lines, currency=currency)
    discount.periods_applied += 1
    if discount.periods_left is not None:
        discount.periods_left -= 1
        if discount.periods_left == 0:
            discount.ended_at = at
    discount.save(update_fields=["periods_applied", "periods_left", "ended_at"])
    if amount <= 0:
        return []
    return [
        LineInput(
            kind=LineKind.DISCOUNT,
            description=_description(discount, currency),
            meter=None,
            quantity=Decimal(1),
            unit_price=None,
            amount=-amount,
        )
    ]


def discounts_end(*, subscription: Subscription, at: datetime) -> None:
    """End the subscription's running discount: the subscription ended."""
    Discount.objects.filter(subscription=subscription, ended_at__isnull=True).update(ended_at=at)


def projected_discount(
    *, subscription: Subscription, summary: UsageSummary, start: datetime
) -> Decimal:
    """What the running discount will take off the invoice closing the current
    period, as the close will compute it (discount_of): on the lines the
    projected statement's closing invoice bills (its usage with what it draws
    from a commit, its seat changes, its threshold invoices taken off) and the
    next period's fixed fees, none when the subscription ends with the period.
    Zero for another period than the current one, and without a running
    discount."""
    if start != subscription.current_period_start:
        return ZERO
    discount = running_discount(subscription)
    if discount is None:
        return ZERO
    lines = closing_lines(subscription=subscription, lines=summary.projected.invoice_lines())
    return discount_of(discount, lines=lines, currency=subscription.customer.currency)


def usage_discounted(usage: PeriodUsage) -> PeriodUsage:
    """The period's usage with its projected discount (/usage, the admin's
    customer page, the portal)."""
    if usage.summary is None or usage.subscription is None:
        return usage
    return replace(
        usage,
        projected_discount=projected_discount(
            subscription=usage.subscription, summary=usage.summary, start=usage.start
        ),
    )

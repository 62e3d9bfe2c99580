"""What a coupon takes off (the rule, once): a percent of the amount rounded
half up once to the currency's minor unit, or an amount off in the same
currency, never more than the amount; and each line's share of it, as the
invoice writer stamps it. The close writes it as a discount line
(billing.invoicing.discounts); the period statement takes each period's share
of it (billing.usage.statement: the spend, /usage, the portal, the dashboard)."""

from datetime import datetime
from decimal import Decimal

from billing.models import Discount, Subscription
from common import rawsql
from common.money import quantize_money
from common.vocabulary import LineKind
from invoices.totals import discount_shares, invoice_totals

ZERO = Decimal(0)
HUNDRED = Decimal(100)


_RUNNING = (
    "SELECT id FROM billing_discount WHERE subscription_id = %s AND ended_at IS NULL "
    "ORDER BY id DESC"
)


def running_discount(subscription: Subscription) -> Discount | None:
    """The subscription's discount still running, with its coupon (at most one).
    Found by fixed SQL: the close asks for every period, and most have none."""
    found = rawsql.ids(_RUNNING, [subscription.pk], ahead=True)
    if not found:
        return None
    return Discount.objects.select_related("coupon").filter(pk=found[0]).first()


_TOUCHING = (
    "SELECT id FROM billing_discount WHERE subscription_id = %s "
    "AND (ended_at IS NULL OR ended_at >= %s) LIMIT 1"
)


def discounts_touch(subscription: Subscription, *, start: datetime) -> bool:
    """Whether a discount of the subscription may take a share of the period
    that starts at `start`: one running, or one ended since (the close that
    began the period applied it to the period's fees in advance, then ended it).
    Found by fixed SQL: a spend read asks it, and most have none."""
    return bool(rawsql.ids(_TOUCHING, [subscription.pk, start], ahead=True))


def running_discount_none(subscription_ids: list[int]) -> dict:
    """Of these subscriptions, the running_discount reads known to find nothing,
    as rawsql.answered takes them: those of subscriptions with no discount at all
    (one statement for all; what a close group reads once)."""
    asked = [(pk, [pk]) for pk in subscription_ids]
    return rawsql.answers_where_none(_RUNNING, Discount._meta.db_table, "subscription_id", asked)


def discount_amount(
    discount: Discount, *, subtotal: Decimal, currency: str, billed_earlier: Decimal = ZERO
) -> Decimal:
    """What the discount takes off an invoice of this subtotal (rounded lines'
    sum): positive, at most the subtotal; zero for a subtotal at or below zero,
    and for an amount off in another currency (redemption refuses one).

    With threshold invoices in the period (never discounted themselves), the
    discount is of the period's whole amount, `billed_earlier` included, and at
    most that: the period's invoices together are discounted as one closing
    invoice would be, and the closing one may fall below zero (what it owes then
    goes to the customer's credit balance)."""
    coupon = discount.coupon
    whole = subtotal + billed_earlier
    if whole <= 0:
        return ZERO
    if coupon.is_percent:
        return min(whole, quantize_money(whole * coupon.percent_off / HUNDRED, currency))
    if coupon.currency != currency:
        return ZERO
    return min(whole, coupon.amount_off)


def discount_of(discount: Discount, *, lines: list, currency: str) -> Decimal:
    """What `discount` takes off the period invoice made of `lines`: of its
    subtotal, with what the period's threshold invoices billed (the lines taking
    them off say how much) as billed earlier (discount_amount)."""
    subtotal = invoice_totals(lines, rates=[], currency=currency).total
    billed_earlier = -sum(
        (
            quantize_money(line.amount, currency)
            for line in lines
            if line.kind == LineKind.USAGE_INVOICED
        ),
        ZERO,
    )
    return discount_amount(
        discount, subtotal=subtotal, currency=currency, billed_earlier=billed_earlier
    )


def discount_shares_of(discount: Discount, *, lines: list, currency: str) -> list[Decimal]:
    """Each of `lines`' share of what `discount` takes off the period invoice made
    of them (discount_of), positive, as the invoice writer stamps it when it
    writes them with the discount line after them (invoices.totals.discount_shares,
    the one share rule): zeros when it takes nothing off."""
    amount = discount_of(discount, lines=lines, currency=currency)
    amounts = invoice_totals(lines, rates=[], currency=currency).amounts
    kinds = [line.kind for line in lines]
    return discount_shares([*kinds, LineKind.DISCOUNT], [*amounts, -amount], currency=currency)[
        : len(lines)
    ]

"""A period's usage in one shape: the lines with their amounts so far and, for a
wallet-drawn charge, the units its wallet could not pay for; and the body
`GET /customers/{id}/usage` answers with, which the admin's customer page shows
as it is. The portal shows the same lines."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from billing.usage import reads
from billing.usage.breakdowns import Group, usage_groups_of
from billing.usage.held import HoldsSeen, holds_seen
from billing.usage.metering import meter_cache
from billing.usage.priced import UsageSummary, usage_summary
from billing.usage.reads import UsageLine
from common.groups import OTHER_VALUE
from common.money import format_decimal, format_money
from common.periods import iso
from common.vocabulary import DRAWN_MODELS
from plans.commit_drawdown import CommitDraw

ZERO = Decimal(0)


@dataclass(frozen=True)
class SummaryLine:
    line: UsageLine
    # The period's amount so far; None without a subscription or for a charge
    # drawn from a wallet (the wallet paid as usage happened).
    amount: Decimal | None
    # A wallet-drawn charge only: units stored and counted, not paid for.
    uncovered: Decimal | None
    # Asked for a breakdown, of a meter that groups by it: the line's quantity
    # split by the properties' values (usage_broken_down).
    groups: list[Group] | None = None
    # A rate-card charge: each row that priced usage, (group, quantity, amount).
    rates: list | None = None


@dataclass(frozen=True)
class PeriodUsage:
    customer: object
    subscription: object | None
    start: datetime
    end: datetime
    lines: list[SummaryLine]
    # None without a subscription: quantities only.
    summary: UsageSummary | None
    # What a running discount will take off the invoice closing the period
    # (billing.invoicing.discounts.usage_discounted sets it).
    projected_discount: Decimal = ZERO
    # The holds open now and those of the period that billed nothing.
    holds: HoldsSeen | None = None

    @property
    def projected_after_discount(self) -> Decimal | None:
        """What the period's invoices will bill for it, net of its lines' share of
        the discount (the projected statement's net): not the discount on the
        next period's fees the closing invoice bills in advance too."""
        return self.summary.projected.net if self.summary else None


def period_usage(*, customer, subscription, start: datetime, end: datetime, now: datetime):
    """The customer's usage of [start, end): with a subscription, rated at its
    version (amounts so far and projected); without one, quantities only."""
    summary = None
    with meter_cache.pinned():  # one freshness check for the whole read
        if subscription is not None:
            summary = usage_summary(subscription=subscription, start=start, end=end, now=now)
            lines = summary.lines
        else:
            lines = reads.usage_lines(
                customer_id=customer.pk, subscription=None, start=start, end=end
            )
    uncovered = summary.statement.part.uncovered if summary else {}
    rated = summary.statement.rated() if summary else {}
    rows = [
        SummaryLine(
            line=line,
            rates=rated.get(line.meter),
            amount=summary.amounts.get(line.meter) if summary else None,
            uncovered=(uncovered[line.meter].units if line.meter in uncovered else ZERO)
            if line.model in DRAWN_MODELS
            else None,
        )
        for line in lines
    ]
    holds = holds_seen(customer_id=customer.pk, start=start, end=end, now=now)
    return PeriodUsage(customer, subscription, start, end, rows, summary, holds=holds)


def usage_broken_down(usage: PeriodUsage, by: str) -> PeriodUsage:
    """The usage with each line of a meter grouping by `by` split by its
    values, over the range its quantity counts (from usage_from)."""
    start = usage.summary.statement.usage_from if usage.summary else usage.start
    meters = meter_cache.by_codes(row.line.meter for row in usage.lines)
    grouping = [meter for meter in meters.values() if by in meter.group_by]
    groups = usage_groups_of(
        customer_id=usage.customer.pk, meters=grouping, by=by, start=start, end=usage.end
    )
    by_code = {meter.code: groups[meter.id] for meter in grouping}
    rows = [
        replace(row, groups=by_code[row.line.meter]) if row.line.meter in by_code else row
        for row in usage.lines
    ]
    return replace(usage, lines=rows)


def usage_body(usage: PeriodUsage) -> dict:
    """The usage as the API answers it: quantities exact, money in the
    customer's currency."""
    customer, subscription, summary = usage.customer, usage.subscription, usage.summary
    statement = summary.statement if summary else None

    def money(amount: Decimal | None) -> str | None:
        return None if amount is None else format_money(amount, customer.currency)

    def number(value: Decimal | None) -> str | None:
        return None if value is None else format_decimal(value)

    return {
        "subscription": subscription.pk if subscription else None,
        "customer": customer.external_id,
        "period_start": iso(usage.start),
        "period_end": iso(usage.end),
        # The lines count the usage not invoiced yet: from here (an immediate
        # plan change in the period), the earlier usage being on its invoice.
        "usage_from": iso(statement.usage_from if statement else usage.start),
        "invoiced": money(statement.usage_invoiced) if statement else None,
        "currency": customer.currency,
        "lines": [
            {
                **({} if row.uncovered is None else {"uncovered": number(row.uncovered)}),
                **(
                    {}
                    if row.rates is None
                    else {
                        "rates": [
                            {"group": group, "quantity": number(quantity), "amount": money(amount)}
                            for group, quantity, amount in row.rates
                        ]
                    }
                ),
                **(
                    {}
                    if row.groups is None
                    else {
                        "groups": [
                            {"key": group.key, "quantity": number(group.quantity)}
                            | ({"other": True} if OTHER_VALUE in group.key.values() else {})
                            for group in row.groups
                        ]
                    }
                ),
                "meter": row.line.meter,
                "aggregation": row.line.aggregation,
                "model": row.line.model,
                "quantity": number(row.line.quantity),
                "included": number(row.line.included),
                "billable": number(row.line.billable),
                "amount": money(row.amount),
            }
            for row in usage.lines
        ],
        "base_fee": money(statement.part.spec.base_fee) if statement else None,
        "subtotal": money(statement.subtotal) if statement else None,
        # The period's own lines' share of the discount, at the usage so far (its
        # statement's discount line): the spend is what it bills less this.
        "discount": money(statement.discount) if statement else None,
        "projected_total": money(summary.projected.total) if summary else None,
        # What a running discount (coupon) will take off the invoice closing the
        # period, estimated on projected_total; "0.00" without one.
        "projected_discount": money(usage.projected_discount) if summary else None,
        # The period's own lines' share of the discount (its statement's discount
        # line, projected), and projected_total net of it: what its invoices bill.
        "projected_period_discount": money(summary.projected.discount) if summary else None,
        "projected_after_discount": money(summary.projected.net) if summary else None,
        "commit": commit_body(statement.commit, money) if statement and statement.commit else None,
        "holds": holds_body(usage.holds, money) if usage.holds else None,
    }


def holds_body(holds: HoldsSeen, money) -> dict:
    """The holds as /usage shows them: those open (each counted as used) and, by
    why, how many of the period's billed nothing (failed, cancelled, expired)."""
    return {
        "open": [
            {
                "id": hold.public_id,
                "meter": hold.meter,
                "quantity": format_decimal(hold.quantity),
                "amount": money(hold.amount),
                "expires_at": iso(hold.expires_at),
            }
            for hold in holds.open
        ],
        "not_charged": dict(sorted(holds.not_charged.items())),
    }


def commit_body(draw: CommitDraw, money) -> dict:
    """A commit as /usage shows it: the access available once the usage not
    invoiced yet is drawn (postpaid: what usage has still to reach), what the
    period drew (or counted), and the rollover left with its expiry."""
    return {
        "billing": "prepaid" if draw.terms.prepaid else "postpaid",
        "available": money(draw.available),
        "drawn_this_period": money(draw.taken_this_period),
        "rollover": [
            {"amount": money(amount), "expires_at": iso(access.expires_at)}
            for amount, access in draw.rollover()
        ],
    }

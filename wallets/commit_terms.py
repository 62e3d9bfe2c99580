"""What a commit request says and whether it holds: the subscription's periods
its term covers, the refusals in words, and the access it makes available
(signing writes it: wallets.commits; the admin previews it)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext

from django.utils.translation import gettext as _

from billing.models import Subscription
from common import customer_text
from common.errors import InvalidRequest
from common.money import currency_exponent, quantize_money
from common.periods import period_containing
from plans.overrides import subscription_spec
from plans.pricing import EXACT_PRECISION
from wallets.commit_models import Commit

HUNDRED = Decimal(100)
# A term of more periods than this is refused (ten years of months).
MAX_PERIODS = 120


def _schedule_of(subscription: Subscription):
    """How the subscription's periods run: its customer's zone, its plan's
    interval, whether they follow the calendar."""
    zone = customer_text.customer_zone(subscription.customer)
    interval = subscription_spec(subscription).interval
    return zone, interval, subscription.billing_anchor == Subscription.CALENDAR


def term_periods(
    subscription: Subscription, starts_at: datetime, ends_at: datetime
) -> list[tuple[datetime, datetime]] | None:
    """The subscription's periods [start, end) from `starts_at` to `ends_at`, in
    its customer's zone and at its plan's interval; None when the term does not
    start and end on period boundaries (or runs past MAX_PERIODS)."""
    if starts_at < subscription.anchor_at or ends_at <= starts_at:
        return None
    zone, interval, calendar = _schedule_of(subscription)
    periods, moment = [], starts_at
    while moment < ends_at and len(periods) <= MAX_PERIODS:
        start, end = period_containing(
            subscription.anchor_at,
            zone,
            interval=interval,
            calendar_aligned=calendar,
            moment=moment,
        )
        if start != moment:
            return None
        periods.append((start, end))
        moment = end
    if moment != ends_at or len(periods) > MAX_PERIODS:
        return None
    return periods


def _per_period_amounts(amount: Decimal, periods: int, currency: str) -> list[Decimal]:
    """`amount` shared over `periods`, each rounded to the currency; the last
    takes what rounding left, so that they add up to it exactly. Where rounding
    half up would give the first periods more than the amount (1.00 over 36
    months: 0.03 each), each is rounded down instead, so that none is negative
    and none more than was committed."""
    with localcontext(prec=EXACT_PRECISION):
        share = amount / periods
        each = quantize_money(share, currency)
        if each * (periods - 1) > amount:
            minor = Decimal(1).scaleb(-currency_exponent(currency))
            each = share.quantize(minor, rounding=ROUND_DOWN)
    return [each] * (periods - 1) + [amount - each * (periods - 1)]


@dataclass(frozen=True)
class CommitRequest:
    """A commit as asked for, read by the API or the admin (numbers as Decimals)."""

    amount: Decimal
    currency: str
    starts_at: datetime
    ends_at: datetime
    billing: str
    access: str = ""
    applies_to: tuple[str, ...] = ()
    overage_multiplier: Decimal | None = None
    rollover_percent: Decimal | None = None
    rollover_periods: int | None = None


def _refuse(message: str, field: str, words: str):
    raise InvalidRequest(message, fields={field: [message]}, words=words)


def check_request(
    request: CommitRequest, subscription: Subscription, known_meters: set[str]
) -> list:
    """The request's refusals, in words; the term's periods when it passes."""
    if request.billing not in (Commit.PREPAID, Commit.POSTPAID):
        _refuse("billing must be prepaid or postpaid", "billing", _("Choose prepaid or postpaid."))
    if not request.amount.is_finite() or request.amount <= 0:
        _refuse("amount must be positive", "amount", _("Type an amount greater than zero."))
    currency = subscription_spec(subscription).currency
    if request.currency != currency:
        _refuse(
            f"the subscription bills in {currency}, not {request.currency}",
            "currency",
            _("A commit is in its subscription's currency: {currency}.").format(currency=currency),
        )
    if quantize_money(request.amount, currency) != request.amount:
        _refuse(
            f"amount has more decimals than {currency} allows",
            "amount",
            _("{currency} amounts have at most {digits} decimals.").format(
                currency=currency, digits=currency_exponent(currency)
            ),
        )
    unknown = [code for code in request.applies_to if code not in known_meters]
    if unknown:
        _refuse(
            f"applies_to names unknown meters: {', '.join(unknown)}",
            "applies_to",
            _(
                "No meter has the code {codes}: name meters that exist, or none for all usage."
            ).format(codes=", ".join(repr(c) for c in unknown)),
        )
    if len(set(request.applies_to)) != len(request.applies_to):
        _refuse("applies_to names a meter twice", "applies_to", _("Name each meter once."))
    if request.billing == Commit.POSTPAID:
        for name, value in (
            ("access", request.access),
            ("overage_multiplier", request.overage_multiplier),
            ("rollover", request.rollover_percent),
        ):
            if value not in (None, ""):
                _refuse(
                    f"{name} is for prepaid commits only",
                    name,
                    _(
                        "A postpaid commit draws nothing down: it has no access, overage "
                        "multiplier or rollover. Leave them out, or make the commit prepaid."
                    ),
                )
    else:
        if request.access not in (Commit.PER_PERIOD, Commit.UPFRONT):
            _refuse(
                "access must be per_period or upfront",
                "access",
                _("Choose per period or up front."),
            )
        multiplier = request.overage_multiplier
        if multiplier is not None and (not multiplier.is_finite() or multiplier < 1):
            _refuse(
                "overage_multiplier must be 1 or more",
                "overage_multiplier",
                _("Usage beyond the commit is billed at its price times this: 1 or more."),
            )
        if request.rollover_percent is not None:
            if request.access != Commit.PER_PERIOD:
                _refuse(
                    "rollover is for per_period access",
                    "rollover",
                    _("Up-front access is the whole term's already: nothing rolls over."),
                )
            percent = request.rollover_percent
            if not percent.is_finite() or not 0 < percent <= HUNDRED:
                _refuse(
                    "rollover percent must be in (0, 100]",
                    "rollover",
                    _("Type a percent from 0 to 100."),
                )
            if not request.rollover_periods or request.rollover_periods < 1:
                _refuse(
                    "rollover expires_after_periods must be 1 or more",
                    "rollover",
                    _("Say after how many periods rolled-over access expires (1 or more)."),
                )
    periods = term_periods(subscription, request.starts_at, request.ends_at)
    if not periods:
        current = customer_text.period(
            subscription.current_period_start,
            subscription.current_period_end,
            customer_text.customer_zone(subscription.customer),
        )
        _refuse(
            "the term must cover whole periods of the subscription",
            "starts_at",
            _(
                "A commit starts and ends on the subscription's period boundaries "
                "(its current period: {period})."
            ).format(period=current),
        )
    return periods


def access_schedule(
    *, access: str, amount: Decimal, currency: str, periods: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime, Decimal]]:
    """What a prepaid commit makes available, as (from, until, amount) rows: its
    amount for the whole term up front, or shared over its periods."""
    if access == Commit.UPFRONT:
        return [(periods[0][0], periods[-1][1], amount)]
    amounts = _per_period_amounts(amount, len(periods), currency)
    return [(s, e, a) for a, (s, e) in zip(amounts, periods, strict=True) if a > 0]


def periods_from(
    subscription: Subscription, *, moment: datetime, count: int
) -> list[tuple[datetime, datetime]]:
    """`count` consecutive periods [start, end) of the subscription from the one
    holding `moment`, in its customer's zone and at its plan's interval, as
    term_periods reads them."""
    zone, interval, calendar = _schedule_of(subscription)
    periods: list[tuple[datetime, datetime]] = []
    for _n in range(min(count, MAX_PERIODS)):
        periods.append(
            period_containing(
                subscription.anchor_at,
                zone,
                interval=interval,
                calendar_aligned=calendar,
                moment=moment,
            )
        )
        moment = periods[-1][1]
    return periods


def commit_schedule(
    *, subscription: Subscription, request: CommitRequest, known_meters: set[str]
) -> list[tuple[datetime, datetime, Decimal]]:
    """What signing `request` would make available, as (from, until, amount) rows
    in the order commit_sign writes them (none for a postpaid commit). Writes
    nothing; refuses in words as commit_sign does, except for an overlap with
    another commit, which only signing sees (under the subscription's lock)."""
    periods = check_request(request, subscription, known_meters)
    if request.billing != Commit.PREPAID:
        return []
    return access_schedule(
        access=request.access, amount=request.amount, currency=request.currency, periods=periods
    )

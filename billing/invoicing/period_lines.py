"""The lines of a period's invoice, and of the invoices between closes: fixed
fees in advance (prorated for a first partial period or a seat change), usage
in arrears with the minimum commitment true-up, late usage re-rated within the
late window, and the usage billed so far at a plan change. Each is rated by
plans.rating and handed to invoices.services as LineInput."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

from billing.locks import billed_periods_lock
from billing.models import BilledPeriod, Subscription
from billing.usage.breakdowns import ADDITIVE, top_and_rest, usage_groups
from billing.usage.metering import meter_cache
from billing.usage.statement import COMMIT_BILLED, meter_names, period_statement, usage_part
from common import customer_text, rawsql
from common.vocabulary import LineKind
from plans import rating
from plans.commit_drawdown import CommitDraw
from plans.overrides import terms_spec
from plans.rating import LineInput
from plans.validation import VersionSpec
from wallets.commits import commit_draw_record

ONE = Decimal(1)


def with_breakdowns(
    rated: list[LineInput], *, customer_id: int, start: datetime, end: datetime
) -> list[LineInput]:
    """The first line of each meter with an invoice breakdown carries its
    quantity of [start, end) split by that property's values (shown on the
    invoice as quantities; the amount stays priced on the whole quantity): the
    largest groups and the rest as one "Other" row (breakdowns.top_and_rest)."""
    out, done = [], set()
    meters = meter_cache.by_codes(line.meter for line in rated if line.meter)
    for line in rated:
        meter = meters.get(line.meter)
        if meter is not None and meter.invoice_breakdown and line.meter not in done:
            done.add(line.meter)
            groups = usage_groups(
                customer_id=customer_id,
                meter=meter,
                by=meter.invoice_breakdown,
                start=start,
                end=end,
            )
            key = meter.invoice_breakdown
            # The portal's rule: the largest groups, the rest as one "Other" row.
            shown, rest = top_and_rest(
                [(g.key[key], g.quantity) for g in groups], additive=meter.aggregation in ADDITIVE
            )
            parts = (*shown, (rating.OTHER_GROUPS, rest)) if rest is not None else tuple(shown)
            line = replace(line, breakdown=(key, parts))
        out.append(line)
    return out


@dataclass(frozen=True)
class RatedAgain:
    """A billed part of a period (BilledPeriod) rated again from its stored usage at
    the terms that billed it (its version and overrides): what it bills now per
    meter and for the true-up (`now`, shaped as BilledPeriod.billed), beside what
    it billed. What it drew from a commit stays as billed: usage found later is
    billed at its full price."""

    billed_period: BilledPeriod
    spec: VersionSpec
    now: dict

    def differences(self, keys=None) -> list[tuple[str, Decimal, Decimal]]:
        """(meter code or "minimum_commitment", amount, billable units) by which
        each one (of `keys`, when given) bills otherwise now than it billed."""
        found = []
        for key, now_values in self.now.items():
            if keys is not None and key not in keys:
                continue
            was = self.billed_period.billed.get(key, {"amount": "0", "billable": "0"})
            delta = Decimal(now_values["amount"]) - Decimal(was["amount"])
            if delta:
                units = Decimal(now_values.get("billable", "0")) - Decimal(was.get("billable", "0"))
                found.append((key, delta, units))
        return found


def billed_period_rated_again(
    subscription: Subscription, billed_period: BilledPeriod
) -> RatedAgain:
    """The one rule pricing a billed part of a period again (late usage, re-rating):
    its usage as stored now, at the version and overrides that billed it. Reads only."""
    spec = terms_spec(version=billed_period.version, overrides=billed_period.overrides)
    now = usage_part(
        subscription,
        spec,
        start=billed_period.period_start,
        end=billed_period.period_end,
        usage_from=billed_period.usage_from,
        until=billed_period.usage_to,
    ).billed()
    if COMMIT_BILLED in billed_period.billed:
        now[COMMIT_BILLED] = billed_period.billed[COMMIT_BILLED]
    return RatedAgain(billed_period, spec, now)


def difference_lines(
    rated: RatedAgain, *, words: str, names: dict[str, str], zone: ZoneInfo, keys=None
) -> list[LineInput]:
    """The lines billing what a part rated again bills more (or less) than it
    billed (of `keys` only, when given), at its prices: a line per meter, and one
    for the minimum commitment's adjustment. `words` says each, with {period} and
    {charge}."""
    billed_period = rated.billed_period
    when = customer_text.period(billed_period.period_start, billed_period.period_end, zone)
    prices = {c.meter: c.pricing for c in rated.spec.charges}
    lines = []
    for meter, delta, units in rated.differences(keys):
        true_up = meter == LineKind.MINIMUM_COMMITMENT
        pricing = prices.get(meter)
        per_unit = pricing is not None and pricing.scheme == "per_unit"
        unit_price = pricing.unit_price if per_unit else None
        what = _("minimum commitment adjustment") if true_up else names.get(meter, meter)
        lines.append(
            LineInput(
                LineKind.LATE_USAGE,
                words.format(period=when, charge=what),
                None if true_up else meter,
                Decimal(1) if true_up else units,
                delta if true_up else unit_price,
                delta,
                billed_period.period_start,
                billed_period.period_end,
                per=pricing.per if per_unit else ONE,
                version=billed_period.version,
            )
        )
    return lines


def rated_again_record(rated: RatedAgain, keys=None) -> None:
    """Record what the part bills now (of `keys` only, when given) as what it
    billed, once the lines billing the difference are written: the same
    difference is never billed twice."""
    billed_period = rated.billed_period
    now = rated.now if keys is None else {**billed_period.billed}
    if keys is not None:
        now.update({key: values for key, values in rated.now.items() if key in keys})
    if now != billed_period.billed:
        billed_period.billed = now
        billed_period.save(update_fields=["billed"])


def late_usage_lines(
    *, subscription: Subscription, before: datetime, zone: ZoneInfo
) -> list[LineInput]:
    """Usage that arrived after its period was billed: each recently billed
    period is rated again and the difference billed at that period's prices.
    Updates the periods' records so the same difference is never billed twice."""
    horizon = before - timedelta(days=settings.BILLING_LATE_EVENT_DAYS + 1)
    names = meter_names(m.code for m in meter_cache.by_id().values())
    lines: list[LineInput] = []
    periods = billed_periods_lock(subscription=subscription, ended_after=horizon, ended_by=before)
    for billed_period in periods:
        rated = billed_period_rated_again(subscription, billed_period)
        lines += difference_lines(
            rated, words=_("Late usage for {period}: {charge}"), names=names, zone=zone
        )
        rated_again_record(rated)
    return lines


@dataclass(frozen=True)
class UsageSoFar:
    """What an invoice bills of the current period's usage up to a moment: its
    lines, what they bill per meter (recorded for late usage) and what they
    draw from (or count toward) a commit (recorded with it)."""

    lines: list[LineInput]
    billed: dict
    commit: CommitDraw | None = None


def usage_so_far(subscription: Subscription, *, until: datetime) -> UsageSoFar:
    """The lines the invoice ending the current period's part under way at
    `until` (the period's end, or an immediate change) bills of it: the period
    statement's (PeriodStatement.invoice_lines), with what it draws from a
    commit; and what the usage bills per meter, threshold invoices included.
    Reads only."""
    statement = period_statement(
        subscription,
        start=subscription.current_period_start,
        end=subscription.current_period_end,
        until=until,
    )
    # All priced at the subscription's terms (the statement's, as period_statement
    # reads them): the version its invoice's writer is given.
    return UsageSoFar(statement.invoice_lines(), statement.billed(), statement.commit)


def record_billed(
    subscription: Subscription, *, until: datetime, so_far: UsageSoFar, invoice
) -> None:
    """A record of what the usage up to `until` billed, for late usage, and of
    what it drew from (or counted toward) a commit, naming `invoice`, which
    billed it (written just before, in the same transaction). Under the
    subscription's row lock, once per segment (a unique constraint too). Fixed
    SQL (rawsql.insert): the close writes one per period."""
    usage_from = subscription.usage_from or subscription.current_period_start
    if so_far.commit is not None:
        commit_draw_record(
            draw=so_far.commit, usage_from=usage_from, until=until, now=until, invoice=invoice
        )
    record = BilledPeriod(
        subscription=subscription,
        usage_from=usage_from,
        usage_to=until,
        version=subscription.version,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        billed=so_far.billed,
        overrides=subscription.overrides,
    )
    rawsql.insert([record])


def bill_usage(subscription: Subscription, *, until: datetime) -> UsageSoFar:
    """usage_so_far, its lines with their meters' invoice breakdowns (the close's
    and a cancel's invoice); record_billed records it once the invoice is written."""
    so_far = usage_so_far(subscription, until=until)
    since = subscription.usage_from or subscription.current_period_start
    lines = with_breakdowns(
        so_far.lines, customer_id=subscription.customer_id, start=since, end=until
    )
    return replace(so_far, lines=lines)

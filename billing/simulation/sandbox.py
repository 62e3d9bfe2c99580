"""One period of a plan version's prices for quantities typed in (the admin's
Try prices page, plans.admin.plan_versions): its lines, tax and total, rated by
the code the period close bills with (billing.usage.statement, totalled and
taxed by invoices.totals). It writes nothing."""

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from django.utils import timezone

from billing.usage.statement import meter_names, statement_of
from common import customer_text, periods
from plans import rating
from plans.models import PlanVersion, TaxRate
from plans.rate_card_pricing import Combination
from plans.validation import VersionSpec


def interval_end(day: date, interval: str) -> date:
    """The day one billing interval after `day` (common.periods.interval_end)."""
    zone = timezone.get_current_timezone()
    return periods.interval_end(start_of_day(day), zone, interval=interval).astimezone(zone).date()


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.get_current_timezone())


@dataclass(frozen=True)
class SandboxInvoice:
    lines: list[rating.LineInput]
    subtotal: Decimal
    taxes: list
    total: Decimal
    label: str
    fraction: Decimal


def sandbox_invoice(
    version: PlanVersion,
    spec: VersionSpec,
    *,
    quantities: dict[str, Decimal],
    seats: int,
    start: datetime,
    end: datetime,
    tax_rate: TaxRate | None,
    combinations: dict[str, dict[Combination, Decimal]] | None = None,
) -> SandboxInvoice:
    """The lines, tax and total of one period of `spec` as the close rates it: fixed
    fees and minimum commitment for the part of a whole interval from `start` that
    the period is, usage at the quantities given (by meter code), a rate card's
    at its `combinations` (by meter code: one per row, row_combination)."""
    zone = timezone.get_current_timezone()
    fraction = periods.period_fraction(start, end, zone, interval=spec.interval)
    label = customer_text.period(start, end, zone)
    statement = statement_of(
        spec,
        start=start,
        end=end,
        seats=seats,
        quantities=quantities,
        fraction=fraction,
        names=meter_names(c.meter for c in spec.charges),
        plan_name=version.plan.name,
        label=label,
        combinations=combinations,
    )
    totals = statement.totals([tax_rate] if tax_rate else [])
    return SandboxInvoice(
        statement.lines, totals.subtotal, totals.taxes, totals.total, label, fraction
    )

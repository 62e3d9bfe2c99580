"""A price simulation's result: its rows in the customers' order, and the same
as CSV for a spreadsheet."""

from billing.usage.breakdowns import meter_breakdown
from billing.usage.statement import usage_combinations_by_meter
from common import customer_text
from common.money import format_decimal, format_money
from common.spreadsheet_csv import Figure, SpreadsheetCsv
from plans.models import PriceSimulation, PriceSimulationRow
from plans.rate_card_pricing import rated_quantities
from plans.selectors import version_spec
from plans.validation import VersionSpec

CSV_HEADER = [
    "customer",
    "name",
    "current version",
    "current total",
    "simulated total",
    "difference",
    "currency",
    "usage breakdown",
]


def simulation_rows(*, simulation: PriceSimulation) -> list[PriceSimulationRow]:
    """The rows in the customers' order (by external id)."""
    return list(simulation.rows.select_related("customer").order_by("customer__external_id", "id"))


def simulation_csv(*, simulation: PriceSimulation) -> str:
    """The rows as CSV, one line a customer, amounts in the currency's minor unit."""
    spec = version_spec(version=simulation.version)
    rows = (
        [
            row.customer.external_id,
            row.customer.name,
            row.current_version_label,
            Figure(format_money(row.current_total, row.currency)),
            Figure(format_money(row.simulated_total, row.currency)),
            Figure(format_money(row.difference, row.currency)),
            row.currency,
            _breakdown(row.customer_id, spec, simulation),
        ]
        for row in simulation_rows(simulation=simulation)
    )
    return SpreadsheetCsv().text(CSV_HEADER, rows)


def _breakdown(customer_id: int, spec: VersionSpec, simulation: PriceSimulation) -> str:
    """The customer's usage of the simulated period of each grouping meter the
    version charges: a rate card's by the rows that priced it ('tokens by rate:
    gpt-4o · input 1000000, other usage 20000'), another's by its first group_by
    property ('tokens by model: gpt-4o 1500, o1 300'), joined by ' | '; empty
    when none groups."""
    span = {"start": simulation.period_start, "end": simulation.period_end}
    rated = usage_combinations_by_meter(customer_id=customer_id, spec=spec, **span)
    parts = []
    for charge in spec.charges:
        if charge.meter in rated:
            rows = [
                (customer_text.rate_group(v for _, v in charge.rates[index].when), quantity)
                for index, quantity in rated_quantities(charge.rates, rated[charge.meter])
            ]
            heading = f"{charge.meter} by rate"
        else:
            prop, found = meter_breakdown(customer_id=customer_id, meter_code=charge.meter, **span)
            rows = [(label, quantity) for _, label, quantity in found]
            heading = f"{charge.meter} by {prop}"
        if rows:
            shown = ", ".join(f"{label} {format_decimal(q)}" for label, q in rows)
            parts.append(f"{heading}: {shown}")
    return " | ".join(parts)

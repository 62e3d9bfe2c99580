"""A price simulation's result: its rows in the customers' order, and the same
as CSV for a spreadsheet."""

import csv
import io

from billing.core.money import format_decimal, format_money
from billing.usage.breakdowns import meter_breakdown
from plans.models import PriceSimulation, PriceSimulationRow
from plans.selectors import version_spec

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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    meters = [charge.meter for charge in version_spec(version=simulation.version).charges]
    for row in simulation_rows(simulation=simulation):
        writer.writerow(
            [
                _text_cell(row.customer.external_id),
                _text_cell(row.customer.name),
                _text_cell(row.current_version_label),
                format_money(row.current_total, row.currency),
                format_money(row.simulated_total, row.currency),
                format_money(row.difference, row.currency),
                row.currency,
                _text_cell(_breakdown(row.customer_id, meters, simulation)),
            ]
        )
    return out.getvalue()


def _breakdown(customer_id: int, meters: list[str], simulation: PriceSimulation) -> str:
    """The customer's usage of the simulated period of each grouping meter the
    version charges, by its first group_by property: 'tokens by model: gpt-4o
    1500, o1 300 | runs by workflow: ...'; empty when none groups."""
    parts = []
    for code in meters:
        prop, rows = meter_breakdown(
            customer_id=customer_id,
            meter_code=code,
            start=simulation.period_start,
            end=simulation.period_end,
        )
        if rows:
            shown = ", ".join(f"{label} {format_decimal(q)}" for _, label, q in rows)
            parts.append(f"{code} by {prop}: {shown}")
    return " | ".join(parts)


def _text_cell(text: str) -> str:
    """A name a spreadsheet would read as a formula (=, +, -, @) is quoted as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text

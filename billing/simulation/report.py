"""A price simulation's result: its rows in the customers' order, and the same
as CSV for a spreadsheet."""

import csv
import io

from billing.core.money import format_money
from plans.models import PriceSimulation, PriceSimulationRow

CSV_HEADER = [
    "customer",
    "name",
    "current version",
    "current total",
    "simulated total",
    "difference",
    "currency",
]


def simulation_rows(*, simulation: PriceSimulation) -> list[PriceSimulationRow]:
    """The rows in the customers' order (by external id)."""
    return list(simulation.rows.select_related("customer").order_by("customer__external_id", "id"))


def simulation_csv(*, simulation: PriceSimulation) -> str:
    """The rows as CSV, one line a customer, amounts in the currency's minor unit."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
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
            ]
        )
    return out.getvalue()


def _text_cell(text: str) -> str:
    """A name a spreadsheet would read as a formula (=, +, -, @) is quoted as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text

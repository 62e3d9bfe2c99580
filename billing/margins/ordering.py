"""The orders a margins table may be read in (the admin page's sorting and
its CSV): by revenue, margin or margin %, either way. Orders the rows
billing.margins.report computed; changes no figure."""

from collections.abc import Callable
from decimal import Decimal

from billing.margins.report import Margin

# The report's own order (margins()): largest revenue first.
DEFAULT_SORT = "-revenue"


def _percent_up(row: Margin) -> tuple:
    """Lowest margin % first, as lowest_margins ranks: a row that cost without
    earning (no percent, a loss) before all, one that neither earned nor cost
    after all."""
    if row.margin_percent is not None:
        return (1, row.margin_percent)
    return (0, Decimal(0)) if row.margin < 0 else (2, Decimal(0))


def _percent_down(row: Margin) -> tuple:
    """Highest margin % first; rows without a percent last, the losses last of all."""
    if row.margin_percent is not None:
        return (0, -row.margin_percent)
    return (2, Decimal(0)) if row.margin < 0 else (1, Decimal(0))


SORTS: dict[str, Callable[[Margin], tuple]] = {
    "-revenue": lambda row: (-row.revenue,),
    "revenue": lambda row: (row.revenue,),
    "margin": lambda row: (row.margin,),
    "-margin": lambda row: (-row.margin,),
    "margin_percent": lambda row: (*_percent_up(row), row.margin),
    "-margin_percent": lambda row: (*_percent_down(row), -row.margin),
}


def sorted_margins(rows: list[Margin], *, sort: str, group_by: str) -> list[Margin]:
    """The rows in the order `sort` (a key of SORTS) names; rows that tie in
    the order by their key (none last), so every order is the same each time."""
    order = SORTS[sort]

    def key(row: Margin) -> tuple:
        value = row.key[group_by]
        return (*order(row), value is None, str(value))

    return sorted(rows, key=key)

"""A provider's price list as finance pastes it on the admin's import page
(plans.admin.cost_rates): one line per cost rate, the values of the meter's
group_by properties in order (empty: any value), then the cost and optionally
`per` (the form's default `per` when left out, 1000000 for a "cost per 1M"
list): `gpt-4o,input,2.50`. A first line without a number names the columns
(`model,token_type,cost,per`). Cells are split by tabs (pasted from a
spreadsheet), semicolons or commas; numbers are read as the user types them
(common.typed_numbers).

Only reading here: the rows are written, and checked, by
plans.cost_rules.cost_rate_create. The preview is the rate-card grid's table
(plans.admin.rate_card_grid.grid_table)."""

from decimal import Decimal

from django.utils.translation import gettext as _

from common.money import DecimalRefused
from common.typed_numbers import typed_number_read
from plans.admin.rate_card_grid import Grid, GridRow, is_header, pasted_lines

MAX_LINES = 500


def read_price_list(
    text: str, group_by: tuple[str, ...], *, default_per: Decimal, language: str
) -> Grid:
    """The lines of `text` as a grid with a column per group_by property; each
    row's problems found in reading it (not the cost rules')."""
    lines = pasted_lines(text)
    grid = Grid(price_by=group_by)
    if len(lines) > MAX_LINES:
        grid.problems.append(_("At most {count} rows.").format(count=MAX_LINES))
        return grid
    columns = list(group_by)
    if lines and is_header(lines[0]):
        header = lines.pop(0)
        named = header[:-2] if len(header) > 1 and header[-1].lower() == "per" else header[:-1]
        if sorted(named) != sorted(group_by):
            grid.problems.append(
                _(
                    "The header names {named}; the meter breaks usage down by {group_by}, "
                    "then the cost and optionally per."
                ).format(named=", ".join(named) or "—", group_by=", ".join(group_by) or "—")
            )
            return grid
        columns = named
    if not lines:
        grid.problems.append(_("Paste at least one line."))
        return grid
    for cells in lines:
        grid.rows.append(_read_line(cells, columns, default_per, language))
    return grid


def _read_line(
    cells: list[str], columns: list[str], default_per: Decimal, language: str
) -> GridRow:
    width = len(columns)
    row = GridRow(
        values={name: value for name, value in zip(columns, cells, strict=False) if value},
        per=default_per,
    )
    if len(cells) not in (width + 1, width + 2):
        expected = [*columns, _("cost")]
        row.problems.append(
            _(
                "Expected {expected} and optionally per: found {count} cells. A number "
                "with commas needs quotes, or paste with tabs."
            ).format(expected=", ".join(expected), count=len(cells))
        )
        return row
    row.price_text = cells[width]
    row.per_text = cells[width + 1] if len(cells) == width + 2 else ""
    if not row.price_text:
        row.problems.append(_("Give the cost."))
    else:
        row.price = _number(row, _("Cost"), row.price_text, language)
    if row.per_text:
        per = _number(row, _("Per"), row.per_text, language)
        if per is not None:
            row.per = per
    return row


def _number(row: GridRow, label: str, text: str, language: str) -> Decimal | None:
    try:
        return typed_number_read(text, language=language)
    except DecimalRefused as refused:
        row.problems.append(f"{label}: {refused}")
        return None

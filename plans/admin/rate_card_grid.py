"""A charge's rate card as finance edits it in the admin: rows of text, one per
`when`, pasted from a spreadsheet (tab-separated) or typed as CSV, read into the
rows plans.validation checks (RateSpec), and written back as text and as a
table (the grid) with each refused row marked.

A line is the values of the charge's Price by properties, in order (empty: any
value, so the property is not in the row's `when`), then the price and,
optionally, `per`: `gpt-4o,input,2.50,1000000`; `,,4.00,1000000` is the default
row. A first line without a number is a header naming the properties
(`model,token_type,unit_price,per`). Prices are read as the user types numbers
(common.typed_numbers): in French and German, '2,50' after a tab or a
semicolon, or in quotes."""

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from common import customer_text
from common.money import DecimalRefused
from common.typed_numbers import convention, typed_number_read
from plans.pricing import PER_UNIT, PricingSpec
from plans.pricing_validation import SCHEME_WORDS
from plans.rate_card_pricing import RateSpec
from plans.rate_cards import MAX_RATES

ONE = Decimal(1)
MAX_LINES = MAX_RATES


@dataclass
class GridRow:
    """One line of the card: its values by property, its price and per as typed
    and as read, and what is wrong with it."""

    values: dict[str, str]
    price_text: str = ""
    per_text: str = ""
    price: Decimal | None = None
    per: Decimal = ONE
    problems: list[str] = field(default_factory=list)


@dataclass
class Grid:
    price_by: tuple[str, ...]
    rows: list[GridRow] = field(default_factory=list)
    # Problems of the card as a whole (no row of their own).
    problems: list[str] = field(default_factory=list)

    def mark(self, index: int, message: str) -> None:
        if 0 <= index < len(self.rows):
            self.rows[index].problems.append(message)
        else:
            self.problems.append(message)

    @property
    def refused(self) -> bool:
        return bool(self.problems) or any(row.problems for row in self.rows)


def split_names(text: str) -> tuple[str, ...]:
    """'model, token_type' -> ('model', 'token_type')."""
    return tuple(
        name for name in (part.strip() for part in text.replace(";", ",").split(",")) if name
    )


def _delimiter(text: str) -> str:
    if "\t" in text:
        return "\t"
    return ";" if ";" in text else ","


# A cell that is a number however it is written (2.50, 2,50, 1 000 000).
_NUMBER_LIKE = re.compile(r"[-+]?[0-9][0-9.,'\s\u00a0\u202f]*")


def is_header(cells: list[str]) -> bool:
    """A first line without a number, its last cell named, names the columns
    (a row whose price is missing is a row)."""
    return bool(cells[-1]) and not any(_NUMBER_LIKE.fullmatch(cell) for cell in cells)


def pasted_lines(text: str) -> list[list[str]]:
    """Lines pasted from a spreadsheet (or typed) as their cells, trimmed, blank
    lines left out: cells split by tabs, semicolons or commas, quotes honoured."""
    return [
        [cell.strip() for cell in cells]
        for cells in csv.reader(io.StringIO(text.strip()), delimiter=_delimiter(text))
        if any(cell.strip() for cell in cells)
    ]


def read_grid(text: str, price_by: tuple[str, ...], *, language: str) -> Grid:
    """The rows of `text` (see the module's doc); a header fills an empty Price by."""
    lines = pasted_lines(text)
    grid = Grid(price_by=price_by)
    if len(lines) > MAX_LINES:
        grid.problems.append(_("At most {count} rows.").format(count=MAX_LINES))
        return grid
    columns = list(price_by)
    if lines and is_header(lines[0]):
        header = lines.pop(0)
        named = header[:-2] if len(header) > 2 and header[-1].lower() == "per" else header[:-1]
        if not price_by:
            grid.price_by = tuple(named)
            columns = list(named)
        elif set(named) != set(price_by) or len(named) != len(price_by):
            grid.problems.append(
                _("The header names {named}; the charge prices by {price_by}.").format(
                    named=", ".join(named) or "—", price_by=", ".join(price_by)
                )
            )
            return grid
        else:
            columns = list(named)
    if lines and not columns:
        grid.problems.append(
            _(
                "Name the properties under Price by, or start with a header row "
                "(model,token_type,unit_price,per)."
            )
        )
        return grid
    for cells in lines:
        grid.rows.append(_read_row(cells, columns, language))
    return grid


def _read_row(cells: list[str], columns: list[str], language: str) -> GridRow:
    width = len(columns)
    row = GridRow(
        values={name: value for name, value in zip(columns, cells, strict=False) if value}
    )
    if len(cells) not in (width + 1, width + 2):
        row.problems.append(
            _(
                "Expected {expected}, then the price and optionally per: found {count} "
                "cells. A number with commas needs quotes, or paste with tabs."
            ).format(expected=", ".join(columns), count=len(cells))
        )
        return row
    row.price_text = cells[width]
    row.per_text = cells[width + 1] if len(cells) == width + 2 else ""
    for name, text, required in (("price", row.price_text, True), ("per", row.per_text, False)):
        if not text:
            if required:
                row.problems.append(_("Give the price."))
            continue
        try:
            number = typed_number_read(text, language=language)
        except DecimalRefused as refused:
            label = _("Price") if name == "price" else _("Per")
            row.problems.append(f"{label}: {refused}")
            continue
        if name == "price":
            row.price = number
        else:
            row.per = number
    return row


def grid_rates(grid: Grid, *, credits: bool) -> tuple[RateSpec, ...]:
    """The rows as plans.validation reads them: a per unit price, or for a
    credits charge the credits drawn for every `per` units."""
    rates = []
    for row in grid.rows:
        when = tuple(sorted(row.values.items()))
        if credits:
            rates.append(RateSpec(when=when, credits_per_unit=row.price, per=row.per))
        else:
            pricing = PricingSpec(scheme=PER_UNIT, unit_price=row.price, per=row.per)
            rates.append(RateSpec(when=when, pricing=pricing))
    return tuple(rates)


def editable(rates) -> bool:
    """Whether stored rows (plans.models.ChargeRate) are all a grid can hold:
    per unit prices or credits. Tiered and package rows are kept, not edited."""
    return all(r.pricing is None or r.pricing.get("scheme") == PER_UNIT for r in rates)


def stored_grid(price_by, rates) -> Grid:
    """Stored rows (plans.models.ChargeRate) as a grid."""
    grid = Grid(price_by=tuple(price_by or ()))
    for rate in rates:
        pricing = rate.pricing or {}
        if rate.pricing is None:
            price, per = rate.credits_per_unit, rate.per
        else:
            price = None if pricing.get("unit_price") is None else Decimal(pricing["unit_price"])
            per = Decimal(pricing.get("per") or rate.per or 1)
        row = GridRow(values=dict(rate.when), price=price, per=per)
        if pricing and pricing.get("scheme") != PER_UNIT:
            # A row the grid cannot edit, named by its scheme (kept as it is).
            row.price_text = SCHEME_WORDS.get(pricing.get("scheme"), pricing.get("scheme"))
        grid.rows.append(row)
    return grid


CENTS = Decimal("0.01")


def _typed(
    value: Decimal | None, language: str, *, money: bool = False, grouped: bool = False
) -> str:
    """As the admin's number boxes show them: no trailing zeros, never 1E+6; a
    price with its cents at least (8.00, 0.0000025)."""
    if value is None:
        return ""
    value = value.normalize()
    if value == value.to_integral_value():
        value = value.quantize(ONE)
    if money and value.as_tuple().exponent > -2:
        value = value.quantize(CENTS)
    with customer_text.speaking(language):
        return customer_text.typed_number(value, grouped=grouped)


def grid_text(grid: Grid, *, credits: bool, language: str) -> str:
    """The card as the text box holds it: a header, then a line per row, in the
    user's number convention (cells split by ';' where the decimal mark is a comma)."""
    if not grid.rows:
        return ""
    delimiter = ";" if convention(language)[0] == "," else ","
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([*grid.price_by, "credits_per_unit" if credits else "unit_price", "per"])
    for row in grid.rows:
        writer.writerow(
            [
                *(row.values.get(name, "") for name in grid.price_by),
                _typed(row.price, language, money=not credits),
                _typed(row.per, language),
            ]
        )
    return out.getvalue()


def grid_table(
    grid: Grid, *, credits: bool, language: str, price_heading: str | None = None
) -> str:
    """The grid as a table: a column per Price by property ('any' where a row
    names none), the price and per beside it; a refused row in red, with its
    problem right under it. `price_heading` names the price's column where it
    is not a price (a cost rate's cost)."""
    if not grid.rows and not grid.problems:
        return ""
    if price_heading is None:
        price_heading = _("Credits per unit") if credits else _("Unit price")
    headings = [_("Row"), *grid.price_by, price_heading, _("Per")]
    body = []
    for index, row in enumerate(grid.rows):
        cells = [format_html("<td>{}</td>", index + 1)]
        for name in grid.price_by:
            value = row.values.get(name)
            cells.append(
                format_html("<td>{}</td>", value)
                if value
                else format_html('<td class="rate-any">{}</td>', _("any"))
            )
        price = row.price_text
        if row.price is not None:
            price = _typed(row.price, language, money=not credits, grouped=True)
        per = row.per_text
        if not per or row.per != ONE:
            per = _typed(row.per, language, grouped=True)
        cells.append(format_html('<td class="rate-number">{}</td>', price))
        cells.append(format_html('<td class="rate-number">{}</td>', per))
        body.append(
            format_html(
                '<tr class="{}" data-row="{}">{}</tr>',
                "rate-row rate-row-refused" if row.problems else "rate-row",
                index + 1,
                format_html_join("", "{}", ((c,) for c in cells)),
            )
        )
        if row.problems:
            body.append(
                format_html(
                    '<tr class="rate-problem-row" data-problem-row="{}"><td></td>'
                    '<td colspan="{}">{}</td></tr>',
                    index + 1,
                    len(headings) - 1,
                    format_html_join(
                        "", '<div class="rate-problem">{}</div>', ((p,) for p in row.problems)
                    ),
                )
            )
    problems = format_html_join("", '<p class="rate-problem">{}</p>', ((p,) for p in grid.problems))
    return format_html(
        '<table class="rate-card"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}',
        format_html_join("", "<th>{}</th>", ((h,) for h in headings)),
        format_html_join("", "{}", ((b,) for b in body)),
        problems,
    )


# The grid's look, beside the admin's own styles (light and dark).
GRID_STYLE = format_html(
    "<style>{}</style>",
    ".rate-card-editor{flex:1 1 auto;min-width:0;display:block}"
    ".rate-card-editor textarea{display:block;margin-top:4px}"
    ".rate-card-stale{opacity:.45}"
    ".rate-card-stale-note{margin:4px 0;font-style:italic}"
    "table.rate-card{margin:0 0 8px;border-collapse:collapse}"
    "table.rate-card td{white-space:nowrap}"
    "table.rate-card tr.rate-problem-row td{white-space:normal;background:#fde8e8;"
    "border-top:none;max-width:40em}"
    "table.rate-card th,table.rate-card td{padding:4px 10px;border-bottom:1px solid "
    "var(--hairline-color,#e8e8e8)}"
    "table.rate-card td.rate-number{text-align:right;font-variant-numeric:tabular-nums}"
    "table.rate-card td.rate-any{color:var(--body-quiet-color,#888);font-style:italic}"
    "table.rate-card tr.rate-row-refused td{background:#fde8e8;color:#8a1f11}"
    ".rate-problem{color:#ba2121;font-weight:600}"
    "textarea.rate-card-text{font-family:monospace;width:100%;max-width:46em;box-sizing:border-box}",
)

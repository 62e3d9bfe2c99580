"""Exchange rates as finance pastes them on the admin's paste page
(plans.admin.exchange_rates): one line per rate, `base,quote,rate,effective_from,source`
(`USD,EUR,0.9210,2026-11-01,ECB reference`). A first line without a number
names the columns, in any order. Cells are split by tabs (pasted from a
spreadsheet), semicolons or commas; the rate is read as the user types numbers
(common.typed_numbers); a moment is a date (its UTC midnight), a UTC
"YYYY-MM-DD HH:MM", or ISO 8601 with an offset.

Only reading here: the rows are checked and written, all or none, by
plans.exchange_rate_rules.exchange_rates_create."""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.utils.translation import gettext as _

from common.money import DecimalRefused
from common.periods import parse_instant
from common.typed_numbers import typed_number_read
from plans.admin.rate_card_grid import is_header, pasted_lines
from plans.exchange_rate_rules import FIELDS

MAX_LINES = 1000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_UTC_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?", re.ASCII)


@dataclass
class PastedRates:
    """The rows read (each a dict of FIELDS), their cells as pasted, and what
    could not be read: {row number (from 1): [(field or "", message)]}."""

    rows: list[dict] = field(default_factory=list)
    cells: list[list[str]] = field(default_factory=list)
    problems: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def read_moment(text: str) -> datetime:
    """A pasted moment in UTC; ValueError when it is none."""
    if _DATE.fullmatch(text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    if _UTC_MINUTE.fullmatch(text):
        return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)
    return parse_instant(text)


def read_rates(text: str, *, language: str) -> PastedRates:
    """The lines of `text` as rows of FIELDS, with what could not be read."""
    lines = pasted_lines(text)
    pasted = PastedRates()
    if len(lines) > MAX_LINES:
        pasted.refused.append(_("At most {count} rows.").format(count=MAX_LINES))
        return pasted
    columns = list(FIELDS)
    if lines and is_header(lines[0]):
        named = [cell.lower() for cell in lines.pop(0)]
        if sorted(named) != sorted(FIELDS):
            pasted.refused.append(
                _("The header names {named}; the columns are {columns}.").format(
                    named=", ".join(named), columns=", ".join(FIELDS)
                )
            )
            return pasted
        columns = named
    if not lines:
        pasted.refused.append(_("Paste at least one line."))
        return pasted
    for number, cells in enumerate(lines, start=1):
        pasted.cells.append(cells)
        pasted.rows.append(_read_row(pasted, number, cells, columns, language))
    return pasted


def _read_row(
    pasted: PastedRates, number: int, cells: list[str], columns: list[str], language: str
) -> dict:
    problems = pasted.problems.setdefault(number, [])
    if len(cells) != len(columns):
        problems.append(
            (
                "",
                _(
                    "Expected {count} cells ({columns}), found {found}. A number with "
                    "commas needs quotes, or paste with tabs."
                ).format(count=len(columns), columns=", ".join(columns), found=len(cells)),
            )
        )
        return {}
    row: dict[str, object] = dict(zip(columns, cells, strict=True))
    row["base"], row["quote"] = row["base"].upper(), row["quote"].upper()
    try:
        row["rate"] = typed_number_read(row["rate"], language=language)
    except DecimalRefused as refused:
        problems.append(("rate", str(refused)))
    try:
        row["effective_from"] = (
            read_moment(row["effective_from"]) if row["effective_from"] else None
        )
    except ValueError:
        problems.append(
            (
                "effective_from",
                _("Give a date (2026-11-01), a UTC time (2026-11-01 00:00) or ISO 8601."),
            )
        )
    if not problems:
        del pasted.problems[number]
    return row

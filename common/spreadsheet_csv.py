"""CSV that a spreadsheet opens safely: every CSV file the project writes (the
journal and its Xero form, the trial balance, margins, credit revenue, price
simulations) writes its rows through SpreadsheetCsv.

A text cell that begins with =, +, -, @, a tab or a carriage return is what a
spreadsheet runs as a formula (=HYPERLINK(...) sending the sheet away), so it is
written with a ' in front (OWASP's "CSV injection" rule) and shows as the text it is.
The file is comma-separated, but a spreadsheet set for French or German splits a line
at ';', pasted text splits at tabs, and a line break inside a quoted cell ends the line
for a reader whose split left the quote mid-cell: `a;=HYPERLINK(...)` is one quoted-or-
not cell here and two cells there, the second a formula. So the same ' goes before a
formula's first character after any ',', ';', tab or line break in the text too, and
past spaces and double quotes (a cell a reader trims or unquotes): every piece of the
text any of those splits makes starts as text (OWASP: "take care of the field
separator ... and quotes"). `a;=1+1` is written `a;'=1+1`.

The writer knows a cell by its type, never by its content: a `str` is text (ids,
references, names, memos, property values: whatever a user or an API client typed)
and is neutralised; a number the project wrote itself is a `Figure` (the text of
format_money or format_decimal), a Decimal or an int, and is written as it is, so an
amount of -8.47 stays a number a spreadsheet sums. Deciding by content (a cell that
looks like a number is left alone) would let a customer's id choose how it is written.
"""

import csv
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal

FORMULA_STARTS = frozenset("=+-@\t\r")
# Where a piece of the text begins for some spreadsheet's split.
SEPARATORS = ",;\t\r\n"
# A formula's first character where a piece begins, past spaces and double quotes.
_FORMULA = re.compile(r'(?:^|(?<=[,;\t\r\n]))[ "]*[=+\-@\t\r]')
# What a text needs to begin with, or hold, for _FORMULA to find anything in it.
_RISKY_FIRST = FORMULA_STARTS | frozenset(' "')


class Figure(str):
    """The text of a number the project formatted itself: written as it is."""

    __slots__ = ()


def _quoted(match: re.Match) -> str:
    return "'" + match[0]


def text_cell(text: str) -> str:
    """Text as a spreadsheet must show it: with a ' before a formula's first character,
    at its start and after each separator."""
    if (
        text[:1] in _RISKY_FIRST
        or "," in text
        or ";" in text
        or "\t" in text
        or "\n" in text
        or "\r" in text
    ):
        return _FORMULA.sub(_quoted, text)
    return text


def _cell(cell) -> str:
    """A cell other than a plain str (row() handles those inline: the hot case)."""
    kind = type(cell)
    if kind is Figure:
        return cell
    if cell is None:
        return ""
    if kind is Decimal:
        return format(cell, "f")
    if kind is int:
        return str(cell)
    if isinstance(cell, str):  # a str of another class (a lazy translation, safe text)
        return text_cell(str(cell))
    raise TypeError(f"a CSV cell is text, a Figure, a Decimal or an int, not {kind.__name__}")


class _Echo:
    """A file-like object csv.writer writes one row to, handed back as text."""

    def write(self, text: str) -> str:
        return text


class SpreadsheetCsv:
    """One CSV line a row (`row`), its cells neutralised by type; the line's end
    (default '\\n') and csv.writer's other parameters as given."""

    def __init__(self, *, lineterminator: str = "\n", **fmtparams):
        # csv.writer quotes a cell holding a character of its line end: written with
        # \r\n, a cell holding a lone \r is quoted too (a reader ends a line at it).
        self._writer = csv.writer(_Echo(), lineterminator="\r\n", **fmtparams)
        self._end = lineterminator

    def row(self, cells: Iterable) -> str:
        return (
            self._writer.writerow(
                [text_cell(cell) if type(cell) is str else _cell(cell) for cell in cells]
            )[:-2]
            + self._end
        )

    def lines(self, header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
        """The header's line, then a line a row: for a streamed download."""
        yield self.row(header)
        for cells in rows:
            yield self.row(cells)

    def text(self, header: Iterable[str], rows: Iterable[Iterable]) -> str:
        """The header and the rows in one text."""
        return "".join(self.lines(header, rows))

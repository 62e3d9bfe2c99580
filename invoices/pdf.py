"""Invoice PDFs: templates/invoices/invoice.html, laid out by WeasyPrint.

Each process keeps one renderer: the stylesheet parsed once, one
FontConfiguration, and one font, the system's DejaVu Sans, so that a document
embeds a single font subset. Most of a render's time is font work where
WeasyPrint subsets with fontTools (no libharfbuzz-subset installed): there the
font is first trimmed, once per process, to the characters most invoices use,
without hinting, kerning or shaping tables, which makes each document's subset
several times quicker; other characters fall back to the full system fonts. A
document loads nothing but that local font file.

The same invoice in the same state renders to the same bytes on the same
system: the PDF's dates come from the invoice, and subset fonts are stamped
with a fixed time.
"""

import atexit
import functools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.template.loader import render_to_string

from billing.core.money import format_decimal, format_money
from billing.core.vocabulary import LineKind
from invoices.models import Invoice, InvoiceLine

TEMPLATE = "invoices/invoice.html"
STYLESHEET = "invoices/invoice.css"

WATERMARKS = {Invoice.DRAFT: "DRAFT", Invoice.PAID: "PAID", Invoice.VOID: "VOID"}
KIND_LABELS = dict(LineKind.choices)
KIND_ORDER = {kind: index for index, (kind, _) in enumerate(LineKind.choices)}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ADDRESS_KEYS = ("line1", "line2", "line3", "postal_code", "city", "state", "country")

# What the trimmed invoice font keeps: Latin-1 and Latin Extended-A (most European
# names and addresses), Romanian's comma-below letters, punctuation, currency and
# a few symbols. Every glyph kept costs time in each document's font subset; other
# characters (Greek, Cyrillic, ...) are drawn from the full system fonts.
FONT_RANGES = (
    (0x0020, 0x007E),
    (0x00A0, 0x017F),
    (0x0218, 0x021B),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2116, 0x2116),
    (0x2122, 0x2122),
    (0x2190, 0x2193),
    (0x2212, 0x2212),
)
FONT_DROPPED_TABLES = ("GSUB", "GPOS", "GDEF", "kern", "MATH", "FFTM", "hdmx", "LTSH", "VDMX")
# fontTools stamps every font it writes (WeasyPrint's per-document subsets too)
# with the current time unless SOURCE_DATE_EPOCH says otherwise: 2000-01-01.
FONT_TIMESTAMP = "946684800"


@dataclass(frozen=True)
class PdfLine:
    description: str
    period: str
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class PdfLineGroup:
    label: str
    lines: list[PdfLine]
    # Shown when the group has more than one line.
    subtotal: str | None


def invoice_pdf_filename(invoice: Invoice) -> str:
    """The name a download is offered under: the number, or draft-<id>."""
    return f"{invoice.number}.pdf" if invoice.number else f"draft-{invoice.pk}.pdf"


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF, as it stands now (watermarked DRAFT, PAID or VOID by
    its status). Reads the invoice's lines; writes nothing."""
    html = render_to_string(TEMPLATE, invoice_pdf_context(invoice))
    return _renderer().write_pdf(html)


def invoice_pdf_context(invoice: Invoice) -> dict:
    currency = invoice.currency
    snapshot = invoice.customer_snapshot or {}
    zone = _zone(snapshot.get("timezone"))
    invoice_period = (invoice.period_start, invoice.period_end)
    groups: dict[str, list[InvoiceLine]] = {}
    for line in sorted(invoice.lines.all(), key=lambda line: line.position):
        groups.setdefault(line.kind, []).append(line)
    changed = [moment for moment in (invoice.paid_at, invoice.voided_at) if moment is not None]
    issued = invoice.finalized_at or invoice.created_at
    return {
        "seller": settings.BILLING_SELLER,
        "customer": {
            "name": snapshot.get("name") or "",
            "external_id": snapshot.get("external_id") or "",
            "email": snapshot.get("email") or "",
            "address": address_lines(snapshot.get("address")),
            "tax_id": snapshot.get("tax_id") or "",
        },
        "number": invoice.number or "",
        "status": invoice.get_status_display(),
        "watermark": WATERMARKS.get(invoice.status, ""),
        "currency": currency,
        "issue_date": _date(invoice.finalized_at, zone),
        "due_date": _date(invoice.due_at, zone),
        "paid_date": _date(invoice.paid_at, zone),
        "void_date": _date(invoice.voided_at, zone),
        "period": _period(invoice.period_start, invoice.period_end, zone),
        "groups": [
            PdfLineGroup(
                label=KIND_LABELS.get(kind, kind),
                lines=[
                    PdfLine(
                        description=line.description,
                        period=_line_period(line, invoice_period, zone),
                        quantity=group_thousands(format_decimal(line.quantity)),
                        unit_price=_money(line.unit_price, currency),
                        amount=_money(line.amount, currency),
                    )
                    for line in lines
                ],
                subtotal=(
                    _money(sum((line.amount for line in lines), Decimal(0)), currency)
                    if len(lines) > 1
                    else None
                ),
            )
            for kind, lines in sorted(groups.items(), key=lambda item: _kind_rank(item[0]))
        ],
        "subtotal": _money(invoice.subtotal, currency),
        "credits_applied": _money(invoice.credits_applied, currency),
        "tax": _money(invoice.tax, currency),
        "total": _money(invoice.total, currency),
        # The document's dates, for its metadata: issued, and last changed in status.
        "created": _w3c(issued),
        "modified": _w3c(max([issued, *changed])),
    }


def address_lines(address: object) -> list[str]:
    """A customer's address (free-form JSON) as printed lines: the usual keys in
    postal order, postal code and city on one line, then any other values."""
    if isinstance(address, str):
        return [line.strip() for line in address.splitlines() if line.strip()]
    if isinstance(address, list):
        return [str(line).strip() for line in address if str(line).strip()]
    if not isinstance(address, dict):
        return []
    values = {key: str(value).strip() for key, value in address.items() if value not in (None, "")}
    lines = [values[key] for key in ("line1", "line2", "line3") if values.get(key)]
    city = " ".join(values[key] for key in ("postal_code", "city") if values.get(key))
    lines += [text for text in (city, values.get("state"), values.get("country")) if text]
    lines += [value for key, value in values.items() if key not in ADDRESS_KEYS and value]
    return lines


def group_thousands(text: str) -> str:
    """'-1234567.50' -> '-1,234,567.50'; the digits after the point are kept as they are."""
    sign = "-" if text.startswith("-") else ""
    whole, point, fraction = text.removeprefix("-").partition(".")
    return f"{sign}{int(whole):,}{point}{fraction}"


def _money(amount: Decimal | None, currency: str) -> str:
    # Decimal(): a model's defaults (0) are ints until it is read back.
    return "" if amount is None else group_thousands(format_money(Decimal(amount), currency))


def _kind_rank(kind: str) -> tuple[int, str]:
    return KIND_ORDER.get(kind, len(KIND_ORDER)), kind


def _zone(name: object) -> ZoneInfo:
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _date(moment: datetime | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


def _period(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """A period's first and last day in the customer's time zone; its end is
    exclusive (a November ends on December 1st, 00:00), so the last day is the one
    before it."""
    if end <= start:
        return _date(start, zone)
    return f"{_date(start, zone)} \N{EN DASH} {_date(end - timedelta(microseconds=1), zone)}"


def _line_period(line: InvoiceLine, invoice_period: tuple, zone: ZoneInfo) -> str:
    if line.period_start is None or line.period_end is None:
        return ""
    if (line.period_start, line.period_end) == invoice_period:
        return ""
    return _period(line.period_start, line.period_end, zone)


def _w3c(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# The renderer: one per process, built on first use.


def _trimmed_font(data: bytes) -> bytes:
    """The font without what invoices do not need (see the module docstring), or
    the font as it is when fontTools cannot read it."""
    from fontTools import subset
    from fontTools.ttLib import TTFont, TTLibError

    options = subset.Options(
        layout_features=[],
        hinting=False,
        notdef_outline=True,
        glyph_names=False,
        name_IDs=["*"],
        name_languages=["*"],
    )
    options.drop_tables += list(FONT_DROPPED_TABLES)
    try:
        font = TTFont(BytesIO(data), recalcTimestamp=False)
        subsetter = subset.Subsetter(options)
        subsetter.populate(
            unicodes=[code for first, last in FONT_RANGES for code in range(first, last + 1)]
        )
        subsetter.subset(font)
        trimmed = BytesIO()
        font.save(trimmed)
    except (TTLibError, OSError, AssertionError):
        return data
    return trimmed.getvalue()


@contextmanager
def _fixed_font_timestamps() -> Iterator[None]:
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = FONT_TIMESTAMP
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous


class _SayOnce(logging.Filter):
    """Lets a message through once per process (WeasyPrint repeats some for every
    document)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        said, self.said = self.said, True
        return not said


def subsets_with_harfbuzz() -> bool:
    """Whether WeasyPrint subsets each document's fonts with HarfBuzz (when
    libharfbuzz-subset is installed: fast) rather than fontTools (slow on a big
    font such as DejaVu Sans: about 130 ms a document)."""
    from weasyprint.pdf import fonts

    return bool(fonts.harfbuzz_subset) and fonts.harfbuzz.hb_version_atleast(4, 1, 0)


class _Renderer:
    def __init__(self):
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher, URLFetcherResponse

        # The font is only trimmed for fontTools; HarfBuzz subsets the full font
        # (kerning and all its scripts included) as fast.
        self.trims_font = trims_font = not subsets_with_harfbuzz()
        fonts: dict[str, bytes] = {}

        class LocalFontsOnly(URLFetcher):
            """Serves the local font files the stylesheet names and refuses every
            other URL: an invoice loads no external resource."""

            def fetch(self, url, headers=None):
                parts = urlsplit(url)
                path = url2pathname(parts.path)
                if parts.scheme != "file" or not path.lower().endswith((".ttf", ".otf")):
                    raise ValueError(f"invoice PDFs load nothing from {url!r}")
                if path not in fonts:
                    content = Path(path).read_bytes()
                    fonts[path] = _trimmed_font(content) if trims_font else content
                return URLFetcherResponse(url, fonts[path], {"Content-Type": "font/ttf"})

        self.fetcher = LocalFontsOnly()
        self.font_config = FontConfiguration()
        self.stylesheet = CSS(
            string=render_to_string(STYLESHEET),
            font_config=self.font_config,
            url_fetcher=self.fetcher,
        )
        # WeasyPrint's objects are not meant to be shared between threads; renders
        # in one process take turns (Celery's prefork and gunicorn's sync workers
        # run one at a time anyway).
        self.lock = threading.Lock()
        # Without libharfbuzz-subset, WeasyPrint warns on every document; once is enough.
        logging.getLogger("weasyprint").addFilter(_SayOnce("Using fontTools instead of"))

    def write_pdf(self, html: str) -> bytes:
        from weasyprint import HTML

        with self.lock, _fixed_font_timestamps():
            return HTML(string=html, url_fetcher=self.fetcher).write_pdf(
                stylesheets=[self.stylesheet], font_config=self.font_config
            )


@functools.cache
def _renderer() -> _Renderer:
    return _Renderer()


# Dropped before the interpreter tears modules down, which WeasyPrint's font
# configuration would otherwise complain about on its way out.
atexit.register(_renderer.cache_clear)


def renderer_cache_clear() -> None:
    _renderer.cache_clear()

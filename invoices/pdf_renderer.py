"""The PDF renderer: WeasyPrint, one per process, built on first use.

Each process keeps one renderer: the stylesheet parsed once, one
FontConfiguration, and one font, the system's DejaVu Sans, so that a document
embeds a single font subset. Most of a render's time is font work where
WeasyPrint subsets with fontTools (no libharfbuzz-subset installed): there the
font is first trimmed, once per process, to the characters most invoices use,
without hinting, kerning or shaping tables, which makes each document's subset
several times quicker; other characters fall back to the full system fonts. A
document whose every character the trimmed font has embeds that font whole
(about 20 KiB compressed) instead of a subset of it, which saves the subset's
time (about 10 ms of fontTools a document); any other document embeds subsets
of its fonts, as a fallback font embedded whole would be several hundred KiB. A
document loads nothing but that local font file, and subset fonts are stamped
with a fixed time, so the same HTML renders to the same bytes.

Two shortcuts leave every PDF as WeasyPrint would write it (tests compare the
bytes): the user-agent stylesheet without its rules for list markers, footnotes
and notes, and well-formed documents parsed as XML (see _document_class).
"""

import atexit
import functools
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname
from xml.etree import ElementTree

from django.template.loader import render_to_string

STYLESHEET = "invoices/invoice.css"

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
# The user-agent stylesheet's rules for pseudo-elements no invoice has: each
# matches every element, so WeasyPrint would compute six more styles for each.
UA_UNUSED_PSEUDO_RULES = re.compile(
    r"(?m)^::(marker|footnote-call|footnote-marker|note-[a-z]+) \{[^}]*\}$"
)
# fontTools stamps every font it writes (WeasyPrint's per-document subsets too)
# with the current time unless SOURCE_DATE_EPOCH says otherwise: 2000-01-01.
FONT_TIMESTAMP = "946684800"
# Characters a document's text may hold that are never drawn with a glyph.
UNDRAWN = frozenset("\t\n\r")


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


def _font_characters(data: bytes) -> frozenset[str]:
    """The characters a font has a glyph for (none when fontTools cannot read it)."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        cmap = TTFont(BytesIO(data), lazy=True).getBestCmap() or {}
    except (TTLibError, OSError, AssertionError, KeyError):
        return frozenset()
    return frozenset(map(chr, cmap))


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


def _document_class():
    """WeasyPrint's HTML document class, made quicker for invoices in two ways that
    leave the PDF as it was:

    - its user-agent stylesheet has no rules for ::marker, ::footnote-* and
      ::note-* (UA_UNUSED_PSEUDO_RULES): such a rule matches every element, and
      WeasyPrint then computes a style for that pseudo-element of each one, six
      times as many styles as elements; an invoice has no list, footnote or note;
    - a document that is well-formed XML (the invoice templates are) is parsed
      by the C XML parser, several times quicker than WeasyPrint's HTML parser
      written in Python, into the same tree; any other is parsed as HTML.
    """
    import cssselect2
    from weasyprint import CSS, HTML, css
    from weasyprint.css.counters import CounterStyle

    stock = (files(css) / "html5_ua.css").read_text("utf-8")
    user_agent = CSS(string=UA_UNUSED_PSEUDO_RULES.sub("", stock), counter_style=CounterStyle())

    class InvoiceDocument(HTML):
        def __init__(self, *, string: str, url_fetcher):
            try:
                # The document comes from our templates, its values escaped.
                root = ElementTree.fromstring(string)  # noqa: S314
            except ElementTree.ParseError:
                super().__init__(string=string, url_fetcher=url_fetcher)
                return
            # What HTML.__init__ sets, from the parsed tree.
            self.base_url = None
            self.url_fetcher = url_fetcher
            self.media_type = "print"
            self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root)
            self.etree_element = self.wrapper_element.etree_element

        def _ua_stylesheets(self, forms=False):
            return [user_agent]

    return InvoiceDocument


class _Renderer:
    def __init__(self):
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher, URLFetcherResponse

        # The font is only trimmed for fontTools; HarfBuzz subsets the full font
        # (kerning and all its scripts included) as fast.
        self.trims_font = trims_font = not subsets_with_harfbuzz()
        # The font files served to WeasyPrint, by path, trimmed or not; and the
        # characters each trimmed one has a glyph for.
        self.fonts: dict[str, bytes] = {}
        fonts = self.fonts
        trimmed: dict[str, frozenset[str]] = {}

        class LocalFontsOnly(URLFetcher):
            """Serves the local font files the stylesheet names and the images inline
            in the document (data: URLs), and refuses every other URL: an invoice
            loads no external resource."""

            def fetch(self, url, headers=None):
                if url.startswith("data:image/"):
                    # The seller's logo, inline in the document (invoices.pdf).
                    return super().fetch(url, headers)
                parts = urlsplit(url)
                path = url2pathname(parts.path)
                if parts.scheme != "file" or not path.lower().endswith((".ttf", ".otf")):
                    raise ValueError(f"invoice PDFs load nothing from {url!r}")
                if path not in fonts:
                    content = Path(path).read_bytes()
                    fonts[path] = _trimmed_font(content) if trims_font else content
                    if fonts[path] is not content:
                        trimmed[path] = _font_characters(fonts[path])
                return URLFetcherResponse(url, fonts[path], {"Content-Type": "font/ttf"})

        self.fetcher = LocalFontsOnly()
        self.font_config = FontConfiguration()
        self.stylesheet = CSS(
            string=render_to_string(STYLESHEET),
            font_config=self.font_config,
            url_fetcher=self.fetcher,
        )
        # What every trimmed font has a glyph for, plus the white space that is never
        # drawn: a document of these characters only is drawn in the trimmed font
        # alone (no fallback font), which it then embeds whole. Known from here on:
        # the stylesheet fetched its fonts, so a process's first document is decided
        # as the rest are.
        self.trimmed_characters = (
            frozenset.intersection(*trimmed.values()) | UNDRAWN if trimmed else frozenset()
        )
        # WeasyPrint's objects are not meant to be shared between threads; renders
        # in one process take turns (Celery's prefork and gunicorn's sync workers
        # run one at a time anyway).
        self.lock = threading.Lock()
        self.document_class = _document_class()
        # Without libharfbuzz-subset, WeasyPrint warns on every document; once is enough.
        logging.getLogger("weasyprint").addFilter(_SayOnce("Using fontTools instead of"))

    def embeds_whole_font(self, html: str) -> bool:
        """Whether this document embeds the trimmed font whole rather than a subset:
        when every character of it (its markup included, which is ASCII), and of it
        in capitals (the stylesheet sets some headings in capitals: the micro sign
        becomes a Greek capital mu), is one the trimmed font has."""
        characters = self.trimmed_characters
        return characters.issuperset(html) and characters.issuperset(html.upper())

    def write_pdf(self, html: str, *, pdf_variant: str | None = None, finisher=None) -> bytes:
        """The document as a PDF; as the PDF `pdf_variant` says when told (WeasyPrint's
        name: "pdf/a-3b" for a Factur-X invoice, its fonts embedded as every PDF's
        are here), `finisher(document, pdf)` called on WeasyPrint's PDF before it is
        written."""
        variant = {"pdf_variant": pdf_variant} if pdf_variant else {}
        if finisher is not None:
            variant["finisher"] = finisher
        with self.lock, _fixed_font_timestamps():
            return self.document_class(string=html, url_fetcher=self.fetcher).write_pdf(
                stylesheets=[self.stylesheet],
                font_config=self.font_config,
                full_fonts=self.embeds_whole_font(html),
                **variant,
            )


@functools.cache
def renderer() -> _Renderer:
    return _Renderer()


# Dropped before the interpreter tears modules down, which WeasyPrint's font
# configuration would otherwise complain about on its way out.
atexit.register(renderer.cache_clear)


def renderer_cache_clear() -> None:
    renderer.cache_clear()

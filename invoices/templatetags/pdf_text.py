"""Attributes for the PDF's elements that print what a customer typed (a name, an
address, a line's description): dir="rtl" for right-to-left text, since
WeasyPrint ignores dir="auto"; lang for CJK text, whose Han characters take the
regional forms of the font the stylesheet gives that language (invoice.css).
Latin text gets none, and its PDF is unchanged."""

from django import template
from django.utils.html import format_html, format_html_join

from common import customer_text
from invoices.pdf_fonts import cjk_language, isolate_lines, text_direction

register = template.Library()


@register.filter
def script_attrs(text) -> str:
    """' dir="rtl" lang="ja"', or "" for left-to-right, non-CJK text."""
    text = str(text or "")
    attributes = []
    if text_direction(text) == "rtl":
        attributes.append(("dir", "rtl"))
    language = cjk_language(text)
    if language:
        attributes.append(("lang", language))
    return format_html_join("", ' {}="{}"', attributes) if attributes else ""


@register.filter
def isolated_lines(text) -> str:
    """The lines of `text`, each reading in its own direction (pdf_fonts.isolate_lines)."""
    return format_html("{}", isolate_lines(str(text or "")))


@register.filter
def iban(value) -> str:
    """An IBAN in groups of four (customer_text.iban)."""
    return customer_text.iban(value)

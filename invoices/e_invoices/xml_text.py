"""What the CII and UBL writers share: elements in a namespace, text made safe for
XML, and EN 16931's number forms. lxml escapes &, < and > itself; what XML 1.0
cannot hold at all (control characters, lone surrogates) is dropped here, so a
name or reference never breaks the document."""

import re
from datetime import date
from decimal import Decimal

from lxml import etree

from common.money import quantize_money

# Characters XML 1.0 does not allow (C0 controls but tab, newline and return;
# surrogates; U+FFFE and U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(value: str) -> str:
    return _NOT_XML.sub("", str(value))


def sub(parent, tag: str, text: str | None = None, **attributes: str):
    """A child element `tag` ('{namespace}name') of `parent`, with text and attributes."""
    element = etree.SubElement(parent, tag, {k: xml_safe(v) for k, v in attributes.items()})
    if text is not None:
        element.text = xml_safe(text)
    return element


def amount_text(value: Decimal, currency: str) -> str:
    """An amount in the currency's minor unit (EUR 2 decimals: BR-DEC rules)."""
    return f"{quantize_money(value, currency):f}"


def number_text(value: Decimal) -> str:
    """A quantity, price or rate without trailing zeros or exponent: 20, 0.0001."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def day_compact(value: date) -> str:
    return value.strftime("%Y%m%d")


def serialized(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

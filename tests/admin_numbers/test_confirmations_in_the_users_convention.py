"""The admin's confirmation pages show the amounts they act on in the user's
convention, with the currency (through common.admin_forms.money_text)."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from config.user_language import user_language_set
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.factories import CustomerFactory

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NBSP = "\N{NO-BREAK SPACE}"


@pytest.fixture
def invoice(db, settings):
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[LineInput("base_fee", "Chat Growth", None, D(1), D("1234.50"), D("1234.50"))],
        now=DEC_1,
    )
    return invoice_finalize(invoice=draft, now=DEC_1, collect=False)


def log_in(client, language: str) -> None:
    user = User.objects.create_superuser(f"user_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)


# The sentences in the user's language too (issue 49): {a} is the amount.
SENTENCES = {
    "en": ("for Acme SARL ({a}) will be void", "A credit note of {a} is issued for it ({a} off"),
    "de": ("für Acme SARL ({a}) wird storniert", "Eine Gutschrift über {a} wird dafür ausgestellt"),
    "fr": ("pour Acme SARL ({a}) sera annulée", "Un avoir de {a} est émis pour elle ({a} déduits"),
}


@pytest.mark.parametrize(
    ("language", "amount"),
    [("en", "1,234.50 EUR"), ("de", "1.234,50 EUR"), ("fr", f"1{NBSP}234,50 EUR")],
)
def test_the_void_confirmation_says_the_amounts_in_the_users_convention(
    client, invoice, language, amount
):
    log_in(client, language)

    page = client.get(f"/admin/invoices/invoice/{invoice.pk}/void/")

    consequences = " ".join(page.context["confirmation"].consequences)
    void, credit_note = (sentence.format(a=amount) for sentence in SENTENCES[language])
    assert f"{invoice.number} {void}" in consequences
    assert credit_note in consequences
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED


def test_a_credit_note_typed_two_ways_gets_no_preview_and_nothing_is_issued(client, invoice):
    log_in(client, "en")
    line = invoice.lines.get()
    url = f"/admin/invoices/invoice/{invoice.pk}/credit-note/"

    page = client.post(url, {"reason": "duplicate", f"line_{line.pk}": "0,50"})

    assert "preview" not in page.context
    assert page.context["error"] == (
        "Chat Growth: “0,50” can be read two ways: did you mean 0.50 or 50?"
    )
    # even sent straight to "Issue credit note"
    page = client.post(
        url, {"reason": "duplicate", f"line_{line.pk}": "$0.50", "confirm": "1", "credited": "0"}
    )
    assert page.context["error"] == "Chat Growth: Type the amount without its currency sign."
    assert not CreditNote.objects.exists()

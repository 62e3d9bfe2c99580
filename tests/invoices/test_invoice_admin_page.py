"""An invoice's page in the admin as finance reads it: amounts with their
currency, grouped by thousands (a unit price keeps its own precision), its lines
as a table, dates in the customer's time zone, named, one link to its PDF, its
credit notes and payments listed; void and mark uncollectible through the shared
confirmation page."""

import html
import re
from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from pypdf import PdfReader

from customers.services import customer_create
from invoices import credit_notes
from invoices.models import CreditNote, Invoice, Payment
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 8, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
PAGE = "/admin/invoices/invoice/{}/change/"
LIST = "/admin/invoices/invoice/"


def acme_invoice(*, email: str = "billing@acme.test") -> Invoice:
    """Acme Inc's November invoice (Paris time): a 1,000.00 USD fee and
    1,250,000 LLM tokens at 0.0001876 USD, 1,234.50 USD in all, finalized on
    2 Dec 2026 at 09:00 Paris time, not collected."""
    acme = customer_create(
        external_id="acme",
        name="Acme Inc",
        currency="USD",
        email=email,
        timezone_name="Europe/Paris",
        address={"line1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001"},
    )
    draft = invoice_write_draft(
        customer=acme,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[
            LineInput("base_fee", "Pro plan", None, D(1), D("1000.00"), D("1000.00")),
            LineInput("usage", "LLM tokens", "llm_tokens", D(1250000), D("0.0001876"), D("234.50")),
        ],
        now=DEC_1,
    )
    return invoice_finalize(invoice=draft, now=DEC_2, collect=False)


def credit_on_tokens(invoice: Invoice, amount: str) -> CreditNote:
    tokens = invoice.lines.get(description="LLM tokens")
    return credit_notes.credit_note_issue(
        invoice=invoice,
        lines=[credit_notes.CreditLineInput(tokens.pk, D(amount))],
        reason=CreditNote.PRODUCT_UNSATISFACTORY,
        memo="outage on 12 Nov",
        now=DEC_5,
    )


def stripe_payment(invoice: Invoice, **fields) -> Payment:
    values = {
        "customer": invoice.customer,
        "invoice": invoice,
        "amount": invoice.amount_due,
        "currency": invoice.currency,
        "status": Payment.FAILED,
        "attempts": 1,
        "max_attempts": 3,
        "last_error": "Your card was declined.",
        "created_at": DEC_2,
        "updated_at": DEC_5,
        **fields,
    }
    return Payment.objects.create(**values)


def words(response) -> str:
    """The page's text, tags removed, blanks collapsed."""
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(text).split())


def test_the_page_shows_amounts_lines_and_dates_as_finance_reads_them(admin_client):
    invoice = acme_invoice()

    page = words(admin_client.get(PAGE.format(invoice.pk)))

    assert "Subtotal: 1,234.50 USD" in page
    assert "Discount: 0.00 USD" in page
    assert "Tax: 0.00 USD" in page
    assert "Total: 1,234.50 USD" in page
    assert "Amount due: 1,234.50 USD" in page
    assert "Amount paid: 0.00 USD" in page
    # the lines as a table: description, period, quantity, unit price, amount
    assert "Description Period (Europe/Paris) Quantity Unit price Amount" in page
    assert "Pro plan 1 Nov – 30 Nov 2026 1 1,000.00 USD 1,000.00 USD" in page  # noqa: RUF001
    assert "LLM tokens 1 Nov – 30 Nov 2026 1,250,000 0.0001876 USD 234.50 USD" in page  # noqa: RUF001
    # dates in the customer's zone, named
    assert "Issued: 2 Dec 2026, 09:00 (Europe/Paris)" in page
    assert "Period: 1 Nov – 30 Nov 2026 (Europe/Paris)" in page  # noqa: RUF001
    assert "Address: 1 Rue de Rivoli, 75001 Paris" in page
    # no raw decimal, no JSON, no field names
    assert not re.search(r"\d\.\d{5,}0\b|0E-10", page)
    assert "{" not in page.split("Billing details")[1]
    assert "Pdf file" not in page and "/media/" not in page


def test_the_list_shows_the_total_formatted_in_few_columns(admin_client):
    invoice = acme_invoice()

    page = words(admin_client.get(LIST))

    assert "Number Customer Status Issued Due Total" in page
    assert f"{invoice.number} Acme Inc Finalized 2 Dec 2026" in page
    assert "1,234.50 USD" in page


def test_the_page_offers_one_pdf_link_which_serves_the_pdf(admin_client):
    invoice = acme_invoice()

    page = admin_client.get(PAGE.format(invoice.pk)).content.decode()
    url = f"/admin/invoices/invoice/{invoice.pk}/pdf/"
    download = admin_client.get(url)

    assert page.count(f'href="{url}"') == 1
    assert page.count("Download PDF") == 1
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download.content.startswith(b"%PDF")
    text = " ".join(p.extract_text() for p in PdfReader(BytesIO(download.content)).pages)
    assert invoice.number in text


def test_a_drafts_page_says_it_has_no_pdf_yet(admin_client):
    invoice = acme_invoice()
    draft = invoice_write_draft(
        customer=invoice.customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=DEC_1,
        period_end=datetime(2027, 1, 1, tzinfo=UTC),
        lines=[LineInput("base_fee", "Pro plan", None, D(1), D("1000.00"), D("1000.00"))],
        now=DEC_2,
    )

    page = words(admin_client.get(PAGE.format(draft.pk)))

    assert "No PDF yet: a draft gets its PDF when it is finalized." in page
    assert "Preview it (marked DRAFT)" in page


def test_the_pdf_is_refused_without_the_view_permission(admin_client):
    invoice = acme_invoice()
    user = User.objects.create_user("ops", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client = Client()
    client.force_login(user)

    refused = client.get(f"/admin/invoices/invoice/{invoice.pk}/pdf/")

    assert refused.status_code == 403


def test_credit_notes_of_the_invoice_are_listed_with_their_pdf(admin_client):
    invoice = acme_invoice()
    note = credit_on_tokens(invoice, "100.00")

    response = admin_client.get(PAGE.format(invoice.pk))
    page = words(response)

    assert (
        f"{note.number} 5 Dec 2026 Product unsatisfactory: outage on 12 Nov 100.00 USD "
        "Partial credit 100.00 USD off the amount due Download"
    ) in page
    assert "Amount due: 1,134.50 USD" in page
    assert "Credited (credit notes): 100.00 USD" in page
    content = response.content.decode()
    assert f'href="/admin/invoices/creditnote/{note.pk}/change/"' in content
    assert f'href="/admin/invoices/creditnote/{note.pk}/pdf/"' in content
    assert admin_client.get(f"/admin/invoices/creditnote/{note.pk}/pdf/").content[:4] == b"%PDF"


def test_payments_of_the_invoice_are_listed(admin_client):
    invoice = acme_invoice()
    payment = stripe_payment(invoice)

    page = words(admin_client.get(PAGE.format(invoice.pk)))

    assert (
        f"Stripe payment #{payment.pk} 1,234.50 USD Failed 5 Dec 2026, 15:30 "
        "1 of 3 attempts; Your card was declined."
    ) in page


def test_a_payment_recorded_by_hand_is_listed_with_its_reference(admin_client):
    invoice = acme_invoice()
    credit_on_tokens(invoice, "34.50")
    admin_client.post(
        LIST,
        {
            "action": "mark_paid_with_reference",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "Wire 2026-12-07",
        },
    )

    page = words(admin_client.get(PAGE.format(invoice.pk)))

    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.PAID
    assert "Payment recorded by hand 1,200.00 USD Received" in page
    assert "Reference: Wire 2026-12-07" in page
    assert "Amount paid: 1,200.00 USD" in page


# Void and mark uncollectible: the shared confirmation page first.


def test_void_asks_first_saying_what_will_happen_and_changes_nothing(admin_client):
    invoice = acme_invoice()
    stripe_payment(invoice, status=Payment.PENDING, last_error="")

    shown = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/void/")
    posted = admin_client.post(LIST, {"action": "void", "_selected_action": [invoice.pk]})

    for response in (shown, posted):
        page = words(response)
        assert response.status_code == 200
        assert (
            f"{invoice.number} for Acme Inc (1,234.50 USD) will be void: the customer owes "
            "nothing on it."
        ) in page
        assert (
            "A credit note of 1,234.50 USD is issued for it (1,234.50 USD off the amount due)."
        ) in page
        assert "The credit note is emailed to billing@acme.test." in page
        assert "Its payment on Stripe is cancelled: no further attempt is made." in page
        assert "A void invoice cannot be reopened" in page
        assert "This cannot be undone." in page
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED
    assert not CreditNote.objects.exists()
    assert Payment.objects.get().status == Payment.PENDING


def test_void_confirmed_voids_with_a_credit_note_and_back_to_the_invoice(admin_client):
    invoice = acme_invoice()
    stripe_payment(invoice, status=Payment.PENDING, last_error="")

    response = admin_client.post(
        f"/admin/invoices/invoice/{invoice.pk}/void/",
        {"confirmed": "yes", "memo": "billed twice"},
        follow=True,
    )

    invoice.refresh_from_db()
    note = CreditNote.objects.get()
    assert invoice.status == Invoice.VOID
    assert (note.total, note.memo, note.voids_invoice) == (D("1234.50"), "billed twice", True)
    assert Payment.objects.get().status == Payment.CANCELED
    assert response.redirect_chain[-1][0] == PAGE.format(invoice.pk)
    page = words(response)
    assert f"{invoice.number} is void; credit note {note.number} of 1,234.50 USD issued." in page
    assert "Status: Void" in page


def test_void_from_the_list_lists_the_invoices_and_counts_the_customers(admin_client):
    first = acme_invoice(email="")
    beta = customer_create(external_id="beta", name="Beta LLC", currency="EUR")
    second = invoice_finalize(
        invoice=invoice_write_draft(
            customer=beta,
            subscription=None,
            reason=Invoice.PERIOD,
            period_start=NOV_1,
            period_end=DEC_1,
            lines=[LineInput("base_fee", "Pro plan", None, D(1), D("49.00"), D("49.00"))],
            now=DEC_1,
        ),
        now=DEC_2,
        collect=False,
    )
    paid = acme_invoice_paid(first.customer)
    selected = [first.pk, second.pk, paid.pk]

    page = words(admin_client.post(LIST, {"action": "void", "_selected_action": selected}))
    done = admin_client.post(
        LIST,
        {"action": "void", "_selected_action": [first.pk, second.pk], "confirmed": "yes"},
        follow=True,
    )

    assert "2 invoices of 2 customers will be void:" in page
    assert f"{first.number} for Acme Inc (1,234.50 USD) will be void" in page
    assert f"{second.number} for Beta LLC (49.00 EUR) will be void" in page
    assert (
        f"Not voided: {paid.number} is paid: it is not voided. To give money back, issue a "
        "credit note on it instead."
    ) in page
    assert "Void 2 invoices" in page
    assert done.status_code == 200
    statuses = dict(Invoice.objects.filter(pk__in=selected).values_list("pk", "status"))
    assert statuses == {first.pk: "void", second.pk: "void", paid.pk: "paid"}


def acme_invoice_paid(acme) -> Invoice:
    draft = invoice_write_draft(
        customer=acme,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=DEC_1,
        period_end=datetime(2027, 1, 1, tzinfo=UTC),
        lines=[LineInput("base_fee", "Pro plan", None, D(1), D("10.00"), D("10.00"))],
        now=DEC_2,
    )
    invoice = invoice_finalize(invoice=draft, now=DEC_2, collect=False)
    from invoices.settlement import invoice_mark_paid

    return invoice_mark_paid(invoice=invoice, reference="wire", now=DEC_5)


def test_void_of_a_paid_invoice_is_refused_in_words_and_changes_nothing(admin_client):
    paid = acme_invoice_paid(acme_invoice().customer)

    response = admin_client.post(
        LIST, {"action": "void", "_selected_action": [paid.pk], "confirmed": "yes"}, follow=True
    )

    assert (
        f"{paid.number} is paid: it is not voided. To give money back, issue a credit note on "
        "it instead."
    ) in words(response)
    assert Invoice.objects.get(pk=paid.pk).status == Invoice.PAID
    assert not CreditNote.objects.exists()


def test_mark_uncollectible_asks_first_then_marks(admin_client):
    invoice = acme_invoice()
    url = f"/admin/invoices/invoice/{invoice.pk}/mark-uncollectible/"

    asked = words(admin_client.get(url))
    first_post = admin_client.post(
        LIST, {"action": "mark_uncollectible", "_selected_action": [invoice.pk]}
    )
    unchanged = Invoice.objects.get(pk=invoice.pk).status
    done = admin_client.post(url, {"confirmed": "yes"}, follow=True)

    assert (
        f"{invoice.number} for Acme Inc (1,234.50 USD due) will be marked uncollectible: "
        "collecting it is given up; it keeps its number and what is due on it."
    ) in asked
    assert "An uncollectible invoice can still be paid" in asked
    assert "This cannot be undone." not in asked
    assert first_post.status_code == 200 and "will be marked uncollectible" in words(first_post)
    assert unchanged == Invoice.FINALIZED
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.UNCOLLECTIBLE
    assert f"{invoice.number} is marked uncollectible." in words(done)


def test_the_page_offers_void_and_uncollectible_buttons_only_when_allowed(admin_client):
    invoice = acme_invoice()
    paid = acme_invoice_paid(invoice.customer)

    open_page = admin_client.get(PAGE.format(invoice.pk)).content.decode()
    paid_page = admin_client.get(PAGE.format(paid.pk)).content.decode()

    assert f'href="/admin/invoices/invoice/{invoice.pk}/void/"' in open_page
    assert f'href="/admin/invoices/invoice/{invoice.pk}/mark-uncollectible/"' in open_page
    assert "/void/" not in paid_page and "/mark-uncollectible/" not in paid_page

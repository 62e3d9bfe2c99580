"""Invoice PDFs in the admin: the download link and view, and the re-render action
(a repair, refused for drafts)."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from django.core.files.storage import default_storage
from pypdf import PdfReader

from customers.services import customer_create
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_void
from plans.rating import LineInput
from tests.factories import period_draft

pytestmark = pytest.mark.django_db

DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, tzinfo=UTC)
LINES = [LineInput("base_fee", "Flat (Dec 2026)", None, D(1), D("9.00"), D("9.00"))]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def draft(external_id: str) -> Invoice:
    return period_draft(
        customer_create(external_id=external_id, name=external_id, currency="USD"), LINES
    )


@pytest.fixture
def issued(django_capture_on_commit_callbacks) -> Invoice:
    """A finalized invoice with its PDF stored."""
    invoice = draft("acme")
    with django_capture_on_commit_callbacks(execute=True):
        invoice_finalize(invoice=invoice, now=DEC_2)
    invoice.refresh_from_db()
    assert invoice.pdf_sha256
    return invoice


def text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def test_the_change_page_links_to_the_pdf_which_downloads(admin_client, issued):
    page = admin_client.get(f"/admin/invoices/invoice/{issued.pk}/change/")

    url = f"/admin/invoices/invoice/{issued.pk}/pdf/"
    assert page.status_code == 200
    assert f'<a href="{url}">Download PDF</a>' in page.content.decode()
    assert issued.pdf_sha256 in page.content.decode()
    download = admin_client.get(url)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == 'attachment; filename="INV-2026-000001.pdf"'
    with default_storage.open(issued.pdf_file.name, "rb") as file:
        assert download.content == file.read()


def test_a_drafts_pdf_downloads_from_the_admin_rendered_now(admin_client):
    invoice = draft("acme")

    page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/")
    download = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/pdf/")

    assert "No PDF yet: a draft gets its PDF when it is finalized." in page.content.decode()
    assert download.status_code == 200
    assert "DRAFT" in text(download.content)


@pytest.mark.parametrize("suffix", ["999999/pdf/", "abc/pdf/"])
def test_the_admin_pdf_of_an_unknown_invoice_is_not_found(admin_client, suffix):
    assert admin_client.get(f"/admin/invoices/invoice/{suffix}").status_code == 404


def test_the_pdf_view_needs_a_staff_login(client, issued):
    response = client.get(f"/admin/invoices/invoice/{issued.pk}/pdf/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_rerender_action_repairs_a_voided_invoices_pdf(
    admin_client, issued, django_capture_on_commit_callbacks
):
    # given: voided after its PDF was stored (which the void leaves as it was)
    invoice_void(invoice=issued, reason="billed twice", now=DEC_5)
    before = (issued.pdf_file.name, issued.pdf_sha256)

    # when
    with (
        time_machine.travel(DEC_5, tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = admin_client.post(
            "/admin/invoices/invoice/",
            {"action": "rerender_pdf", "_selected_action": [issued.pk]},
            follow=True,
        )

    # then: rendered again as it stands, VOID, and recorded anew
    assert len(callbacks) == 1
    assert "INV-2026-000001 queued for a new PDF" in response.content.decode()
    issued.refresh_from_db()
    assert (issued.pdf_file.name, issued.pdf_sha256) != before
    assert issued.pdf_rendered_at == DEC_5
    with default_storage.open(issued.pdf_file.name, "rb") as file:
        assert "VOID" in text(file.read())


def test_the_rerender_action_refuses_a_draft(admin_client, django_capture_on_commit_callbacks):
    invoice = draft("acme")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            "/admin/invoices/invoice/",
            {"action": "rerender_pdf", "_selected_action": [invoice.pk]},
            follow=True,
        )

    assert callbacks == []
    assert "its PDF is rendered on each download" in response.content.decode()
    invoice.refresh_from_db()
    assert (invoice.pdf_file.name, invoice.pdf_sha256, invoice.pdf_rendered_at) == ("", "", None)

"""Invoice PDFs: what they say (read back with pypdf), currencies, pagination, the
render task on finalization, the stored document as issued (a void keeps it), the
repair, and the download endpoint. Time is set; amounts are exact."""

import hashlib
from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from django.core.files.storage import default_storage
from pypdf import PdfReader
from rest_framework.test import APIClient

from common.errors import Conflict
from customers.api_keys import api_key_create
from customers.services import customer_create
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from invoices.rendering import invoice_render_pdf
from invoices.services import (
    invoice_finalize,
    invoice_void,
    invoices_finalize_due,
)
from invoices.settlement import invoice_mark_paid
from invoices.tasks import render_invoice_pdf as render_task
from plans.rating import LineInput
from tests.factories import default_seller, period_draft

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)
DEC_2_RENDERED = datetime(2026, 12, 2, 0, 0, 5, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)

HEADER = "DESCRIPTION QUANTITY UNIT PRICE AMOUNT (USD)"

# 19.99 + 3.13 (3.125 rounded half up) + 3.00 + 10.00 = 36.12
USD_LINES = [
    LineInput("overage", "prompts over 200 included", "prompts", D(200), D("0.05"), D("10.00")),
    LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("19.99"), D("19.99")),
    LineInput("usage", "GPT-4o input tokens", "gpt4o_in", D(1_250_000), D("0.0000025"), D("3.125")),
    LineInput("usage", "GPT-4o output tokens", "gpt4o_out", D(300_000), D("0.00001"), D("3.00")),
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test stores its PDFs in a directory of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    # The seller is the default billing entity; these are its details.
    default_seller(
        {
            "name": "Example Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin", "Germany"],
            "email": "invoices@example.test",
            "tax_id": "DE123456789",
        }
    )
    return settings.MEDIA_ROOT


def customer(external_id: str = "acme", currency: str = "USD"):
    return customer_create(
        external_id=external_id,
        name=f"{external_id.title()} Inc",
        currency=currency,
        email=f"billing@{external_id}.test",
        address={"line1": "42 Main Street", "postal_code": "94107", "city": "San Francisco"},
        tax_id="US-987",
    )


def draft(lines: list[LineInput], *, owner=None) -> Invoice:
    return period_draft(owner or customer(), lines)


@pytest.fixture
def finalize(django_capture_on_commit_callbacks):
    """Finalize a draft on December 2nd, the clock moved there (a document is
    dated when it is issued: invoices.issue_dates), and run what its commit
    enqueues (the render task, eagerly) five seconds later."""

    def run(invoice: Invoice) -> Invoice:
        # Left in reverse: the clock is back at DEC_2_RENDERED when the
        # callbacks run.
        with (
            time_machine.travel(DEC_2_RENDERED, tick=False),
            django_capture_on_commit_callbacks(execute=True),
            time_machine.travel(DEC_2, tick=False),
        ):
            invoice_finalize(invoice=invoice, now=DEC_2)
        return Invoice.objects.get(pk=invoice.pk)

    return run


def pages(content: bytes) -> list[list[str]]:
    """Each page's text, line by line."""
    return [page.extract_text().splitlines() for page in PdfReader(BytesIO(content)).pages]


def heights(content: bytes) -> dict[str, float]:
    """Where each piece of text of the first page sits, from its foot (PDF points up)."""
    found: dict[str, float] = {}

    def visit(text, cm, tm, font, size):
        if text.strip():
            found.setdefault(text.strip(), tm[4] * cm[1] + tm[5] * cm[3] + cm[5])

    PdfReader(BytesIO(content)).pages[0].extract_text(visitor_text=visit)
    return found


def stored(invoice: Invoice) -> bytes:
    with default_storage.open(invoice.pdf_file.name, "rb") as file:
        return file.read()


def stored_names() -> list[str]:
    if not default_storage.exists("invoices/INV-2026"):
        return []
    return sorted(default_storage.listdir("invoices/INV-2026")[1])


def client(*scopes: str) -> APIClient:
    _, secret = api_key_create(name="-".join(scopes) or "none", scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


# what the PDF says


def test_the_pdf_has_the_number_lines_by_kind_and_the_totals(finalize):
    invoice = finalize(draft(USD_LINES))

    [text] = pages(stored(invoice))

    # then: lines grouped by kind (base fee, usage, overage) with exact figures
    start = text.index(HEADER)
    assert text[start : start + 12] == [
        HEADER,
        "Base fee",
        "AI Assistant (Dec 2026) 1 19.99 19.99",
        "Usage",
        "GPT-4o input tokens 1,250,000 0.0000025 3.13",
        "GPT-4o output tokens 300,000 0.00001 3.00",
        "Usage subtotal 6.13",
        "Overage",
        "prompts over 200 included 200 0.05 10.00",
        "Subtotal 36.12",
        "Tax 0.00",
        "Total USD 36.12",
    ]
    assert text[start + 12] == "Amount due USD 36.12"
    assert invoice.total == D("36.12")
    # and the seller, the customer's snapshot, the number and the dates
    for expected in [
        "Example Billing GmbH",
        "Hauptstraße 1",
        "10115 Berlin",
        "invoices@example.test",
        "Tax ID DE123456789",
        "Acme Inc",
        "42 Main Street",
        "94107 San Francisco",
        "billing@acme.test",
        "Tax ID US-987",
        "Invoice number INV-2026-000001",
        "Issue date 2 Dec 2026",
        "Due date 1 Jan 2027",  # 30 days' terms (BILLING_PAYMENT_TERMS_DAYS)
        "Period 1 Nov \N{EN DASH} 30 Nov 2026",
        "Payment terms 30 days",
        "Customer acme",
        "Status Finalized",
        "Please quote INV-2026-000001 with your payment.",
        "INV-2026-000001 Page 1 of 1",
    ]:
        assert expected in text, expected
    assert not {"DRAFT", "PAID", "VOID"} & set(text)


def test_the_blocks_of_the_first_page_follow_each_other_without_overlapping(finalize):
    invoice = finalize(draft(USD_LINES))

    y = heights(stored(invoice))

    seller = ["Example Billing GmbH", "Hauptstraße 1", "invoices@example.test"]
    parties = ["BILL TO", "Acme Inc", "Tax ID US-987", "Invoice number", "Status"]
    assert min(y[text] for text in seller) > max(y[text] for text in parties)
    assert min(y[text] for text in parties) > y[HEADER]
    assert y["Invoice"] > y["INV-2026-000001"] > y["BILL TO"]
    rows = [
        HEADER,
        "Base fee",
        "AI Assistant (Dec 2026) 1 19.99 19.99",
        "Usage subtotal 6.13",
        "prompts over 200 included 200 0.05 10.00",
        "Subtotal 36.12",
        "Total USD 36.12",
        "Page 1 of 1",
    ]
    assert [y[row] for row in rows] == sorted((y[row] for row in rows), reverse=True)


def embedded_fonts(content: bytes) -> list[str]:
    page = PdfReader(BytesIO(content)).pages[0]
    return sorted(
        str(font["/BaseFont"]).split("+", 1)[1] for font in page["/Resources"]["/Font"].values()
    )


def test_with_fonttools_the_trimmed_font_falls_back_for_other_scripts(fonttools_subsets):
    from invoices import pdf_renderer

    latin = draft(USD_LINES)
    greek = draft(USD_LINES, owner=customer("beta"))
    Invoice.objects.filter(pk=greek.pk).update(customer_snapshot={"name": "Ωmega ЖЛФ"})

    latin_pdf = render_invoice_pdf(latin)
    greek_pdf = render_invoice_pdf(Invoice.objects.get(pk=greek.pk))

    assert pdf_renderer.renderer().trims_font
    assert embedded_fonts(latin_pdf) == ["Invoice-Sans"]
    assert embedded_fonts(greek_pdf) == ["DejaVu-Sans", "Invoice-Sans"]
    assert "Ωmega ЖЛФ" in pages(greek_pdf)[0]
    assert "AI Assistant (Dec 2026) 1 19.99 19.99" in pages(latin_pdf)[0]
    assert render_invoice_pdf(latin) == latin_pdf


def test_a_jpy_invoice_has_no_decimals(finalize):
    # given: 5,000 + 1,200 + 499.5 rounded half up to 500
    lines = [
        LineInput("base_fee", "Pro (Dec 2026)", None, D(1), D(5000), D(5000)),
        LineInput("usage", "Agent runs", "runs", D(1500), D("0.8"), D(1200)),
        LineInput("usage", "Searches", "searches", D(333), D("1.5"), D("499.5")),
    ]
    invoice = finalize(draft(lines, owner=customer("kaisha", currency="JPY")))

    [text] = pages(stored(invoice))

    start = text.index("DESCRIPTION QUANTITY UNIT PRICE AMOUNT (JPY)")
    assert text[start + 1 : start + 12] == [
        "Base fee",
        "Pro (Dec 2026) 1 5,000 5,000",
        "Usage",
        "Agent runs 1,500 0.8 1,200",
        "Searches 333 1.5 500",
        "Usage subtotal 1,700",
        "Subtotal 6,700",
        "Tax 0",
        "Total JPY 6,700",
        "Amount due JPY 6,700",
        "PAYMENT",
    ]
    assert "Amounts in JPY. Questions about this document: invoices@example.test." in text
    assert invoice.total == D(6700)


def test_a_long_invoice_runs_onto_more_pages_with_the_header_repeated(finalize):
    # given: 120 usage lines of 0.10
    lines = [
        LineInput("usage", f"Usage line {n:03d}", "m", D(1), D("0.10"), D("0.10"))
        for n in range(1, 121)
    ]
    invoice = finalize(draft(lines))

    text = pages(stored(invoice))

    # then: several pages, each with the number and its page number, and the table
    # header on each page the lines run onto (the payment details may end on a page
    # of their own)
    assert len(text) > 1
    for number, page in enumerate(text, start=1):
        assert HEADER in page or not any(line.startswith("Usage line") for line in page), number
        assert f"INV-2026-000001 Page {number} of {len(text)}" in page
    assert text[1][0] == HEADER
    # every line once, in order, and the totals on the last page
    rows = [line for page in text for line in page if line.startswith("Usage line")]
    assert rows == [f"Usage line {n:03d} 1 0.10 0.10" for n in range(1, 121)]
    totals = [number for number, page in enumerate(text) if "Total USD 12.00" in page]
    assert totals == [len(text) - 1] or totals == [len(text) - 2]
    assert "Amounts in USD. Questions about this document: invoices@example.test." in text[-1]


def test_paid_and_void_invoices_are_watermarked_when_rendered(finalize):
    paid = finalize(draft(USD_LINES))
    void = finalize(draft(USD_LINES, owner=customer("beta")))
    invoice_mark_paid(invoice=paid, reference="wire 42", now=DEC_5)
    invoice_void(invoice=void, reason="billed twice", now=DEC_5)

    [paid_text] = pages(render_invoice_pdf(Invoice.objects.get(pk=paid.pk)))
    [void_text] = pages(render_invoice_pdf(Invoice.objects.get(pk=void.pk)))

    assert ("PAID" in paid_text, "Status Paid" in paid_text) == (True, True)
    assert "Paid on 5 Dec 2026." in paid_text
    assert ("VOID" in void_text, "Status Void" in void_text) == (True, True)
    assert "Voided on 5 Dec 2026; a credit note cancels this invoice." in void_text


# rendering on finalization, and the stored document


def test_finalizing_renders_and_stores_the_pdf(finalize):
    invoice = finalize(draft(USD_LINES))

    content = stored(invoice)
    assert invoice.pdf_sha256 == hashlib.sha256(content).hexdigest()
    assert invoice.pdf_file.name == (
        f"invoices/INV-2026/INV-2026-000001-{invoice.pdf_sha256[:16]}.pdf"
    )
    assert invoice.pdf_rendered_at == DEC_2_RENDERED
    assert content.startswith(b"%PDF-")
    # deterministic: the same invoice renders to the same bytes, dated as issued
    assert render_invoice_pdf(invoice) == content
    metadata = PdfReader(BytesIO(content)).metadata
    assert (metadata.creation_date, metadata.modification_date) == (DEC_2, DEC_2)
    assert metadata.title == "Invoice INV-2026-000001"


def test_the_finalize_run_of_the_close_renders_each_invoice(
    settings, django_capture_on_commit_callbacks
):
    settings.BILLING_INVOICE_EMAILS = False
    first, second = draft(USD_LINES), draft(USD_LINES, owner=customer("beta"))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert invoices_finalize_due(cutoff=DEC_1, now=DEC_2) == 2

    assert len(renders_queued(callbacks)) == 2
    rendered = Invoice.objects.filter(pk__in=[first.pk, second.pk]).order_by("number")
    assert [(i.number, len(i.pdf_sha256)) for i in rendered] == [
        ("INV-2026-000001", 64),
        ("INV-2026-000002", 64),
    ]
    assert len(stored_names()) == 2


def test_no_render_is_queued_when_pdfs_are_off(settings, django_capture_on_commit_callbacks):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    invoice = draft(USD_LINES)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice_finalize(invoice=invoice, now=DEC_2)

    assert renders_queued(callbacks) == []
    assert Invoice.objects.get(pk=invoice.pk).pdf_sha256 == ""


def renders_queued(callbacks) -> list:
    """The commit callbacks that queue a PDF render (common.task_sending.enqueue_on_commit
    names each after its task); a finalization queues others too (its metrics count
    the invoices on commit)."""
    return [
        c
        for c in callbacks
        if getattr(c, "__qualname__", "") == "send invoices.tasks.render_invoice_pdf"
    ]


def test_the_task_run_twice_keeps_the_first_pdf(finalize):
    invoice = finalize(draft(USD_LINES))
    before = (invoice.pdf_file.name, invoice.pdf_sha256, invoice.pdf_rendered_at)

    with time_machine.travel(DEC_5, tick=False):
        result = render_task.delay(invoice.pk).get()

    invoice.refresh_from_db()
    assert result == invoice.pdf_sha256
    assert (invoice.pdf_file.name, invoice.pdf_sha256, invoice.pdf_rendered_at) == before
    assert stored_names() == [before[0].rsplit("/", 1)[1]]


def test_the_task_skips_a_draft_and_an_unknown_invoice():
    invoice = draft(USD_LINES)

    assert render_task.delay(invoice.pk).get() is None
    assert render_task.delay(invoice.pk + 1000).get() is None
    assert Invoice.objects.get(pk=invoice.pk).pdf_sha256 == ""
    assert stored_names() == []


def test_a_void_renders_the_pdf_again_marked_void_and_keeps_the_one_issued(
    finalize, django_capture_on_commit_callbacks
):
    invoice = finalize(draft(USD_LINES))
    issued = stored(invoice)
    issued_name = invoice.pdf_file.name

    # when: voided (its commit enqueues a render: the stored PDF is no longer
    # current), then the task runs again (a redelivery), which changes nothing more
    with (
        time_machine.travel(DEC_5, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        invoice_void(invoice=invoice, reason="billed twice", now=DEC_5)
    invoice.refresh_from_db()
    after_void = (invoice.pdf_file.name, invoice.pdf_sha256)
    render_task.delay(invoice.pk).get()

    # then: the PDF served says VOID and "Status Void"; the issued file is still stored
    invoice.refresh_from_db()
    assert invoice.status == Invoice.VOID
    assert (invoice.pdf_file.name, invoice.pdf_sha256) == after_void
    assert invoice.pdf_file.name != issued_name
    response = client("read").get(f"/api/v1/invoices/{invoice.pk}/pdf")
    [text] = pages(response.content)
    assert "VOID" in text and "Status Void" in text
    assert "VOID" not in pages(issued)[0]
    assert issued_name.rsplit("/", 1)[1] in stored_names()


def test_a_forced_render_of_an_unchanged_invoice_records_the_same_file_anew(finalize):
    invoice = finalize(draft(USD_LINES))
    name, sha256 = invoice.pdf_file.name, invoice.pdf_sha256

    repaired = invoice_render_pdf(invoice=invoice, now=DEC_5, force=True)

    assert (repaired.pdf_file.name, repaired.pdf_sha256, repaired.pdf_rendered_at) == (
        name,
        sha256,
        DEC_5,
    )
    assert stored_names() == [name.rsplit("/", 1)[1]]


def test_a_forced_render_restores_a_lost_or_damaged_file(finalize):
    invoice = finalize(draft(USD_LINES))
    issued = stored(invoice)

    default_storage.delete(invoice.pdf_file.name)
    invoice_render_pdf(invoice=invoice, now=DEC_5, force=True)
    assert stored(invoice) == issued

    with open(default_storage.path(invoice.pdf_file.name), "wb") as damaged:
        damaged.write(b"%PDF-1.7 truncated")
    invoice_render_pdf(invoice=invoice, now=DEC_5, force=True)
    assert stored(invoice) == issued
    assert stored_names() == [invoice.pdf_file.name.rsplit("/", 1)[1]]


def test_a_forced_render_after_a_void_records_the_new_document(finalize):
    invoice = finalize(draft(USD_LINES))
    issued_name, issued_sha = invoice.pdf_file.name, invoice.pdf_sha256
    invoice_void(invoice=invoice, reason="billed twice", now=DEC_5)

    repaired = invoice_render_pdf(invoice=invoice, now=DEC_5, force=True)

    content = stored(repaired)
    assert repaired.pdf_sha256 == hashlib.sha256(content).hexdigest() != issued_sha
    assert repaired.pdf_file.name != issued_name
    assert "VOID" in pages(content)[0]
    metadata = PdfReader(BytesIO(content)).metadata
    assert (metadata.creation_date, metadata.modification_date) == (DEC_2, DEC_5)
    # the document as first issued is kept in the storage
    assert default_storage.exists(issued_name)
    assert len(stored_names()) == 2


def test_a_draft_has_no_stored_pdf():
    invoice = draft(USD_LINES)

    with pytest.raises(Conflict, match="draft"):
        invoice_render_pdf(invoice=invoice, now=DEC_2, force=True)

    assert Invoice.objects.get(pk=invoice.pk).pdf_file.name == ""
    assert stored_names() == []


# the endpoint


def test_the_pdf_endpoint_serves_the_stored_pdf_as_an_attachment(finalize):
    invoice = finalize(draft(USD_LINES))

    response = client("read").get(
        f"/api/v1/invoices/{invoice.pk}/pdf", HTTP_ACCEPT="application/pdf"
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-2026-000001.pdf"'
    assert response.content == stored(invoice)


def test_the_invoice_links_to_its_pdf(finalize):
    invoice = finalize(draft(USD_LINES))

    body = client("read").get(f"/api/v1/invoices/{invoice.pk}").json()

    assert body["pdf_url"] == f"/api/v1/invoices/{invoice.pk}/pdf"


def test_a_drafts_pdf_is_rendered_on_request_with_a_draft_watermark():
    invoice = draft(USD_LINES)

    response = client("read").get(f"/api/v1/invoices/{invoice.pk}/pdf")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (f'attachment; filename="draft-{invoice.pk}.pdf"')
    [text] = pages(response.content)
    assert "DRAFT" in text
    assert "Draft, not yet numbered" in "\n".join(text)
    assert "Total USD 36.12" in text
    assert Invoice.objects.get(pk=invoice.pk).pdf_file.name == ""
    assert stored_names() == []


def test_a_finalized_invoice_not_rendered_yet_is_stored_by_its_first_download(settings):
    settings.BILLING_INVOICE_PDFS = False
    invoice = invoice_finalize(invoice=draft(USD_LINES), now=DEC_2)

    with time_machine.travel(DEC_5, tick=False):
        response = client("read").get(f"/api/v1/invoices/{invoice.pk}/pdf")

    invoice.refresh_from_db()
    assert response.status_code == 200
    assert response.content == stored(invoice) == render_invoice_pdf(invoice)
    assert invoice.pdf_sha256 == hashlib.sha256(response.content).hexdigest()
    assert invoice.pdf_rendered_at == DEC_5
    assert stored_names() == [invoice.pdf_file.name.rsplit("/", 1)[1]]


@pytest.mark.parametrize("accept", ["application/json", "application/pdf"])
def test_an_unknown_invoice_is_not_found_as_json(finalize, accept):
    invoice = finalize(draft(USD_LINES))

    response = client("read").get(f"/api/v1/invoices/{invoice.pk + 1}/pdf", HTTP_ACCEPT=accept)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["type"] == "not_found"


def test_the_pdf_needs_a_key_with_the_read_scope(finalize):
    invoice = finalize(draft(USD_LINES))
    url = f"/api/v1/invoices/{invoice.pk}/pdf"

    anonymous = APIClient().get(url, HTTP_ACCEPT="application/pdf")
    events_only = client("events:write").get(url)
    admin = client("admin").get(url)  # admin writes; it does not read
    reader = client("read").get(url)

    assert (anonymous.status_code, anonymous.json()["error"]["type"]) == (
        401,
        "authentication_failed",
    )
    assert (events_only.status_code, events_only.json()["error"]["type"]) == (
        403,
        "permission_denied",
    )
    assert (admin.status_code, admin.json()["error"]["type"]) == (403, "permission_denied")
    assert (reader.status_code, reader.content) == (200, stored(invoice))

"""Every download of an issued document serves a stored PDF: credit notes stored
when issued as invoices are; downloads (API, portal, admin) that read the file
and render nothing; a void rendered VOID once; a document without a stored PDF
(issued before PDFs were stored, its render not run yet, its file lost) rendered
and stored by its first download only, in its own language and time zone; a
render task and a download that race store one file. A spy on the renderer
counts every render. Time is set; amounts are exact."""

import hashlib
import re
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO, StringIO

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.management import call_command
from pypdf import PdfReader

from customers.portal import portal_session_create
from customers.services import customer_create, customer_update
from invoices import pdf, rendering
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_void
from invoices.tasks import render_credit_note_pdf, render_invoice_pdf
from plans.rating import LineInput
from tests.factories import api_client, period_draft
from tests.threads import run_at_once

pytestmark = pytest.mark.django_db

# 23:30 UTC: 2 December in Paris, still 1 December in Los Angeles.
DEC_1_LATE = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 10, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, 9, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)

# 40.00 + 12.50 = 52.50
LINES = [
    LineInput("base_fee", "Team plan (Dec 2026)", None, D(1), D("40.00"), D("40.00")),
    LineInput("usage", "GPT-4o input tokens", "gpt4o_in", D(5_000_000), D("0.0000025"), D("12.50")),
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test stores its PDFs in a directory of its own; nothing is emailed."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_EMAILS = False


@pytest.fixture
def renders(monkeypatch) -> list[str]:
    """The title of every document rendered to PDF from here on (the renderer's
    write_pdf, which every render goes through)."""
    titles: list[str] = []
    real = pdf.renderer

    class Spy:
        def write_pdf(self, html: str) -> bytes:
            titles.append(re.search(r"<title>(.*?)</title>", html).group(1))
            return real().write_pdf(html)

    monkeypatch.setattr(pdf, "renderer", Spy)
    return titles


def customer(external_id: str = "acme", *, locale: str = "en", zone: str = "UTC"):
    return customer_create(
        external_id=external_id,
        name=f"{external_id.title()} SARL",
        currency="EUR",
        email=f"billing@{external_id}.test",
        address={"line1": "1 rue de Rivoli", "postal_code": "75001", "city": "Paris"},
        locale=locale,
        timezone_name=zone,
    )


def issued_invoice(owner=None, *, now: datetime = DEC_2) -> Invoice:
    """A finalized invoice; its PDF rendered as it is issued when BILLING_INVOICE_PDFS
    is on (the render task, run on commit)."""
    draft = period_draft(owner or customer(), LINES)
    invoice_finalize(invoice=draft, now=now)
    return Invoice.objects.get(pk=draft.pk)


def credit(invoice: Invoice, amount: str = "12.50") -> CreditNote:
    usage = invoice.lines.get(kind="usage")
    note = credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice_line=usage.pk, amount=D(amount))],
        reason=CreditNote.ORDER_CHANGE,
        memo="Downgraded mid-period",
        now=DEC_3,
    )
    return CreditNote.objects.get(pk=note.pk)


def stored(document) -> bytes:
    document.refresh_from_db()
    with default_storage.open(document.pdf_file.name, "rb") as file:
        return file.read()


def stored_files() -> list[str]:
    names = []
    for folder in ("invoices/INV-2026", "credit-notes/CN-2026"):
        if default_storage.exists(folder):
            names += [f"{folder}/{name}" for name in default_storage.listdir(folder)[1]]
    return sorted(names)


def text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def download(path: str) -> bytes:
    response = api_client("read").get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    return response.content


# issued: stored


def test_a_credit_note_issued_through_the_api_has_its_pdf_stored(
    django_capture_on_commit_callbacks, renders
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issued_invoice()
    usage = invoice.lines.get(kind="usage")

    with (
        time_machine.travel(DEC_3, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_client("admin").post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {
                "reason": "order_change",
                "memo": "Downgraded mid-period",
                "lines": [{"invoice_line": usage.pk, "amount": "12.50"}],
            },
            format="json",
        )

    assert response.status_code == 201, response.content
    note = CreditNote.objects.get(pk=response.json()["id"])
    content = stored(note)
    assert note.pdf_sha256 == hashlib.sha256(content).hexdigest()
    assert note.pdf_file.name == f"credit-notes/CN-2026/CN-2026-000001-{note.pdf_sha256[:16]}.pdf"
    assert note.pdf_rendered_at == DEC_3
    assert renders == ["Invoice INV-2026-000001", "Credit note CN-2026-000001"]
    words = text(content)
    for line in (
        "Credit note number CN-2026-000001",
        "Issue date 3 Dec 2026",
        "Credited invoice INV-2026-000001",
        "Reason Order change",
        "Downgraded mid-period",
        "GPT-4o input tokens 12.50",
        "Total EUR 12.50",
        "12.50 EUR lowers the amount due on invoice INV-2026-000001.",
    ):
        assert line in words


def test_a_credit_note_render_task_run_twice_stores_one_file(
    django_capture_on_commit_callbacks, renders
):
    with django_capture_on_commit_callbacks(execute=True):
        note = credit(issued_invoice())
    note.refresh_from_db()
    recorded = (note.pdf_file.name, note.pdf_sha256, note.pdf_rendered_at)

    # a redelivery, later
    with time_machine.travel(DEC_5, tick=False):
        assert render_credit_note_pdf.delay(note.pk).get() == note.pdf_sha256

    note.refresh_from_db()
    assert (note.pdf_file.name, note.pdf_sha256, note.pdf_rendered_at) == recorded
    assert renders == ["Invoice INV-2026-000001", "Credit note CN-2026-000001"]
    assert len(stored_files()) == 2


def test_downloads_serve_the_stored_bytes_and_render_nothing(
    client, admin_client, django_capture_on_commit_callbacks, renders
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issued_invoice()
        note = credit(invoice)
    rendered = list(renders)
    token = portal_session_create(customer=invoice.customer, now=DEC_5).token

    with time_machine.travel(DEC_5, tick=False):
        served = {
            "api invoice": download(f"/api/v1/invoices/{invoice.pk}/pdf"),
            "api credit note": download(f"/api/v1/credit-notes/{note.pk}/pdf"),
            "portal invoice": client.get(f"/portal/{token}/invoices/{invoice.pk}/pdf").content,
            "portal credit note": client.get(f"/portal/{token}/credit-notes/{note.pk}/pdf").content,
            "admin invoice": admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/pdf/").content,
            "admin credit note": admin_client.get(
                f"/admin/invoices/creditnote/{note.pk}/pdf/"
            ).content,
        }

    assert renders == rendered  # nothing rendered by the downloads
    invoice_pdf, note_pdf = stored(invoice), stored(note)
    assert served == {
        "api invoice": invoice_pdf,
        "api credit note": note_pdf,
        "portal invoice": invoice_pdf,
        "portal credit note": note_pdf,
        "admin invoice": invoice_pdf,
        "admin credit note": note_pdf,
    }


# a void


def test_a_void_stores_a_void_pdf_once_and_downloads_serve_it(
    django_capture_on_commit_callbacks, renders
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issued_invoice()
    invoice.refresh_from_db()
    issued_name = invoice.pdf_file.name

    with (
        time_machine.travel(DEC_5, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        invoice_void(invoice=invoice, reason="billed twice", now=DEC_5)
    # then the void's render is delivered again, and the PDF downloaded twice
    with time_machine.travel(DEC_5, tick=False):
        render_invoice_pdf.delay(invoice.pk).get()
        first = download(f"/api/v1/invoices/{invoice.pk}/pdf")
        second = download(f"/api/v1/invoices/{invoice.pk}/pdf")

    assert renders == [
        "Invoice INV-2026-000001",
        "Credit note CN-2026-000001",
        "Invoice INV-2026-000001",
    ]
    assert first == second == stored(invoice)
    assert invoice.pdf_file.name != issued_name
    words = text(first)
    assert "VOID" in words and "Status Void" in words
    assert "Voided on 5 Dec 2026; a credit note cancels this invoice." in words
    # the PDF first issued is kept
    assert issued_name in stored_files()
    with default_storage.open(issued_name, "rb") as issued:
        assert "VOID" not in text(issued.read())


def test_a_void_whose_render_has_not_run_is_rendered_void_by_the_first_download_only(
    django_capture_on_commit_callbacks, renders
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issued_invoice()
    # voided; the render its commit enqueues has not run yet
    invoice_void(invoice=invoice, reason="billed twice", now=DEC_5)
    renders.clear()

    with time_machine.travel(DEC_5, tick=False):
        first = download(f"/api/v1/invoices/{invoice.pk}/pdf")
        second = download(f"/api/v1/invoices/{invoice.pk}/pdf")
        # the void's render task, late: the PDF is current, nothing to do
        render_invoice_pdf.delay(invoice.pk).get()

    assert renders == ["Invoice INV-2026-000001"]
    assert first == second == stored(invoice)
    assert "VOID" in text(first)
    assert invoice.pdf_rendered_at == DEC_5


# documents without a stored PDF


@pytest.fixture
def old_documents(settings):
    """An invoice and a credit note issued without a stored PDF (issued before PDFs
    were stored, or their render task has not run yet)."""
    settings.BILLING_INVOICE_PDFS = False
    invoice = issued_invoice()
    note = credit(invoice)
    settings.BILLING_INVOICE_PDFS = True
    assert (invoice.pdf_file.name, note.pdf_file.name, stored_files()) == ("", "", [])
    return invoice, note


def test_a_document_without_a_stored_pdf_gets_one_on_its_first_download_only(
    old_documents, renders
):
    invoice, note = old_documents

    with time_machine.travel(DEC_5, tick=False):
        first = {
            "invoice": download(f"/api/v1/invoices/{invoice.pk}/pdf"),
            "credit note": download(f"/api/v1/credit-notes/{note.pk}/pdf"),
        }
        assert renders == ["Invoice INV-2026-000001", "Credit note CN-2026-000001"]
        second = {
            "invoice": download(f"/api/v1/invoices/{invoice.pk}/pdf"),
            "credit note": download(f"/api/v1/credit-notes/{note.pk}/pdf"),
        }
        # the render tasks, late: both PDFs are stored, nothing to do
        render_invoice_pdf.delay(invoice.pk).get()
        render_credit_note_pdf.delay(note.pk).get()

    assert renders == ["Invoice INV-2026-000001", "Credit note CN-2026-000001"]
    assert first == second == {"invoice": stored(invoice), "credit note": stored(note)}
    assert (invoice.pdf_sha256, note.pdf_sha256) == (
        hashlib.sha256(first["invoice"]).hexdigest(),
        hashlib.sha256(first["credit note"]).hexdigest(),
    )
    assert (invoice.pdf_rendered_at, note.pdf_rendered_at) == (DEC_5, DEC_5)
    assert stored_files() == sorted([invoice.pdf_file.name, note.pdf_file.name])
    assert "Credit note number CN-2026-000001" in text(first["credit note"])


def test_an_email_sent_before_the_render_stores_the_pdf_it_attaches(
    settings, mailoutbox, old_documents, renders
):
    from invoices.emails import document_email_schedule, document_email_send

    _, note = old_documents
    settings.BILLING_INVOICE_EMAILS = True
    email = document_email_schedule(credit_note=note, now=DEC_3)

    document_email_send(email=email, now=DEC_3)
    render_credit_note_pdf.delay(note.pk).get()

    assert renders == ["Credit note CN-2026-000001"]
    [message] = mailoutbox
    [(filename, content, mimetype)] = message.attachments
    assert (filename, content, mimetype) == ("CN-2026-000001.pdf", stored(note), "application/pdf")


def test_the_first_download_renders_the_document_as_issued_in_its_language_and_zone(
    settings, renders
):
    # issued to a French customer in Paris, at 00:30 on 2 December there
    settings.BILLING_INVOICE_PDFS = False
    owner = customer("lyon", locale="fr", zone="Europe/Paris")
    invoice = issued_invoice(owner, now=DEC_1_LATE)
    # since then the customer switched to German and Los Angeles
    customer_update(customer=owner, locale="de", timezone="America/Los_Angeles")

    with time_machine.travel(DEC_5, tick=False):
        response = api_client("read").get(
            f"/api/v1/invoices/{invoice.pk}/pdf", HTTP_ACCEPT_LANGUAGE="de"
        )

    assert response.status_code == 200
    assert response.content == stored(invoice)
    words = text(response.content)
    assert "Facture\nINV-2026-000001" in words
    assert "Date d'émission 2 déc. 2026" in words
    assert "Rechnung" not in words
    assert renders == ["Facture INV-2026-000001"]


def test_a_lost_file_is_rendered_again_and_stored_by_the_next_download_only(
    django_capture_on_commit_callbacks, renders
):
    with django_capture_on_commit_callbacks(execute=True):
        note = credit(issued_invoice())
    issued = stored(note)
    default_storage.delete(note.pdf_file.name)
    renders.clear()

    first = download(f"/api/v1/credit-notes/{note.pk}/pdf")
    second = download(f"/api/v1/credit-notes/{note.pk}/pdf")

    assert renders == ["Credit note CN-2026-000001"]
    assert first == second == issued == stored(note)


def test_a_draft_is_rendered_on_each_download_and_never_stored(renders):
    draft = period_draft(customer(), LINES)

    download(f"/api/v1/invoices/{draft.pk}/pdf")
    download(f"/api/v1/invoices/{draft.pk}/pdf")

    assert renders == ["Invoice (draft)", "Invoice (draft)"]
    assert (Invoice.objects.get(pk=draft.pk).pdf_sha256, stored_files()) == ("", [])


# races


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["render task", "download"])
def test_a_render_and_a_download_that_race_render_once(monkeypatch, settings, first):
    """One render of a document at a time (issue 73: a PDF rendered twice at once, 2.3 GB
    each): the second caller renders nothing while the first renders; a download is
    told to ask again (503, Retry-After), a render task leaves it to the first."""
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    note = credit(issued_invoice())
    # the first render goes on until the second caller is done
    second_done = threading.Event()
    renders = []
    kind = rendering.DOCUMENTS[CreditNote]

    def render(document):
        renders.append(document.number)
        assert second_done.wait(timeout=30)
        return kind.render(document)

    monkeypatch.setitem(rendering.DOCUMENTS, CreditNote, replace(kind, render=render))
    stores = []
    store = rendering.pdf_file_store
    monkeypatch.setattr(rendering, "pdf_file_store", lambda *a: stores.append(a[0]) or store(*a))

    def task() -> str | None:
        return render_credit_note_pdf(note.pk)

    client = api_client()

    def download():
        response = client.get(f"/api/v1/credit-notes/{note.pk}/pdf")
        return response.content if response.status_code == 200 else response

    def work(index: int):
        callers = (task, download) if first == "render task" else (download, task)
        if index == 0:
            return callers[0]()
        while not renders:
            time.sleep(0.05)
        try:
            return callers[1]()
        finally:
            second_done.set()

    results = run_at_once(work, clients=2)

    content = stored(note)
    assert renders == ["CN-2026-000001"]
    assert len(stores) == 1
    assert stored_files() == [note.pdf_file.name]
    if first == "render task":
        assert results[0] == note.pdf_sha256 == hashlib.sha256(content).hexdigest()
        refused = results[1]
        assert (refused.status_code, refused["Retry-After"]) == (503, "15")
        assert b"being rendered" in refused.content
    else:
        assert results == [content, None]
    # and the next download serves the stored file, rendering nothing
    assert download() == content
    assert renders == ["CN-2026-000001"]


def test_the_admin_says_whether_a_pdf_is_stored_yet(admin_client, old_documents):
    invoice, note = old_documents
    admin = [f"/admin/invoices/invoice/{invoice.pk}/", f"/admin/invoices/creditnote/{note.pk}/"]

    before = [admin_client.get(f"{page}change/").content.decode() for page in admin]
    with time_machine.travel(DEC_5, tick=False):
        for page in admin:
            assert admin_client.get(f"{page}pdf/").status_code == 200
    after = [admin_client.get(f"{page}change/").content.decode() for page in admin]

    for html in before:
        assert "(not stored yet: the first download renders and stores it)" in html
    for html in after:
        assert "(stored 5 Dec 2026, 09:30 (UTC))" in html


def test_render_missing_pdfs_stores_what_is_missing_once(
    django_capture_on_commit_callbacks, old_documents, renders
):
    # given: besides the two old documents, an invoice stored as issued, and one
    # voided whose VOID render has not run (its commit's tasks never ran)
    old_invoice, old_note = old_documents
    with django_capture_on_commit_callbacks(execute=True):
        current = issued_invoice(customer("beta"))
        voided = issued_invoice(customer("gamma"))
    invoice_void(invoice=voided, reason="billed twice", now=DEC_5)
    renders.clear()

    with time_machine.travel(DEC_5, tick=False):
        call_command("render_missing_pdfs", stdout=StringIO())
        out = StringIO()
        call_command("render_missing_pdfs", stdout=out)

    # then: the old documents, the void and its credit note rendered once each
    assert sorted(renders) == [
        "Credit note CN-2026-000001",
        "Credit note CN-2026-000002",
        "Invoice INV-2026-000001",
        "Invoice INV-2026-000003",
    ]
    assert out.getvalue() == "queued 1 invoice and 0 credit note renders\n"
    assert "VOID" in text(stored(voided))
    assert stored(old_invoice) and stored(old_note) and stored(current)

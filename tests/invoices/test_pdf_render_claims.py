"""One render of a document at a time, a bounded number of tries (issue 73: an
invoice of 1,926 pages rendered by its task and its email at once, 720 s and 2.3 GB
each, and a render killed for memory delivered again): a render stopped by its time
limit is given up; a render whose worker died is tried again up to three claims; the
email waits for a render under way and attaches what it stored. The renders are
counted at the renderer; the claims are the real rows (invoices.render_claims)."""

from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded

from invoices import emails, render_claims, rendering
from invoices.models import DocumentEmail, Invoice, PdfRender
from invoices.tasks import render_invoice_pdf, send_document_email
from tests.factories import api_client
from tests.invoices.test_pdf_downloads import DEC_5, issued_invoice, stored

pytestmark = pytest.mark.django_db

LEASE = timedelta(seconds=240)  # the PDF task's hard limit (210 s) and 30 s


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """PDFs stored in a directory of this test's; the documents issued with neither
    their render nor their email run (as if their tasks had not run yet)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False


class Renders(list):
    """The number of every invoice rendered; a render raises `failing[0]` if set."""

    def __init__(self):
        super().__init__()
        self.failing: list[BaseException] = []


@pytest.fixture
def renders(monkeypatch) -> Renders:
    numbers = Renders()
    kind = rendering.DOCUMENTS[Invoice]

    def render(invoice):
        numbers.append(invoice.number)
        if numbers.failing:
            raise numbers.failing[0]
        return kind.render(invoice)

    monkeypatch.setitem(rendering.DOCUMENTS, Invoice, replace(kind, render=render))
    return numbers


def email_of(invoice: Invoice, settings) -> DocumentEmail:
    settings.BILLING_INVOICE_EMAILS = True
    return emails.document_email_schedule(invoice=invoice, now=DEC_5)


def claim_of(invoice: Invoice) -> dict:
    row = PdfRender.objects.get(invoice=invoice)
    return {
        "claimant": row.claimant,
        "claimed_until": row.claimed_until,
        "attempts": row.attempts,
        "failed_at": row.failed_at,
        "last_error": row.last_error,
    }


def claim(invoice: Invoice, claimant: str, now=DEC_5):
    """What a render does first: the claim (a render killed right after it, by a
    lost worker, leaves it as it is)."""
    return render_claims.render_claim(
        document=invoice,
        claimant=claimant,
        now=now,
        force=False,
        is_current=rendering.pdf_is_current,
    )


def download(invoice: Invoice):
    return api_client().get(f"/api/v1/invoices/{invoice.pk}/pdf")


@time_machine.travel(DEC_5, tick=False)
def test_a_render_stopped_by_its_time_limit_is_given_up_and_rendered_again_only_by_a_repair(
    renders, settings, admin_client
):
    invoice = issued_invoice()
    email = email_of(invoice, settings)
    renders.failing.append(SoftTimeLimitExceeded())

    # when: the render task reaches its soft time limit
    with pytest.raises(SoftTimeLimitExceeded):
        render_invoice_pdf(invoice.pk)

    # then: given up, recorded
    assert claim_of(invoice) == {
        "claimant": "",
        "claimed_until": None,
        "attempts": 1,
        "failed_at": DEC_5,
        "last_error": "the render took longer than its time limit",
    }
    # and nothing renders it again: the task delivered again, a download, the email
    assert render_invoice_pdf(invoice.pk) is None
    refused = download(invoice)
    assert (refused.status_code, refused.has_header("Retry-After")) == (503, False)
    assert "could not be rendered (the render took longer than its time limit)" in (
        refused.content.decode()
    )
    assert send_document_email(email.pk) == DocumentEmail.FAILED
    email.refresh_from_db()
    assert (email.attempts, email.last_error) == (
        1,
        f"the PDF of {invoice.number} could not be rendered (the render took longer than "
        "its time limit); a repair (render again) tries anew",
    )
    assert renders == [invoice.number]
    invoice.refresh_from_db()
    assert invoice.pdf_sha256 == ""
    # and the admin's invoice page says so
    page = f"/admin/invoices/invoice/{invoice.pk}/change/"
    said = "(its render was given up: the render took longer than its time limit; "
    assert said in admin_client.get(page).content.decode()

    # when: the admin's repair
    renders.failing.clear()
    sha256 = render_invoice_pdf(invoice.pk, force=True)

    # then: rendered and stored, the claim freed
    assert renders == [invoice.number, invoice.number]
    assert sha256 == Invoice.objects.get(pk=invoice.pk).pdf_sha256 != ""
    assert "its render was given up" not in admin_client.get(page).content.decode()
    assert claim_of(invoice) == {
        "claimant": "",
        "claimed_until": None,
        "attempts": 0,
        "failed_at": None,
        "last_error": "",
    }


def test_a_render_whose_worker_died_is_tried_again_by_its_task_up_to_three_times(renders):
    invoice = issued_invoice()
    # given: the render task's first delivery claimed the render, and its worker
    # was killed for memory before it recorded (nothing released the claim)
    assert claim(invoice, "task-1").attempt == 1

    # when: within the claim, another asker comes
    with time_machine.travel(DEC_5 + timedelta(seconds=30), tick=False):
        refused = download(invoice)
        another_task = render_invoice_pdf.apply((invoice.pk,), task_id="task-2").get()
    # then: it renders nothing; a download is told when to ask again
    assert (refused.status_code, refused["Retry-After"]) == (503, "15")
    assert another_task is None
    assert renders == []

    # given: the task delivered again twice more, each killed the same way
    with time_machine.travel(DEC_5 + timedelta(minutes=1), tick=False):
        assert claim(invoice, "task-1").attempt == 2
    with time_machine.travel(DEC_5 + timedelta(minutes=2), tick=False):
        assert claim(invoice, "task-1").attempt == 3

    # when: it is delivered a fourth time
    at = DEC_5 + timedelta(minutes=3)
    with time_machine.travel(at, tick=False):
        result = render_invoice_pdf.apply((invoice.pk,), task_id="task-1").get()

    # then: given up without rendering
    assert result is None
    assert renders == []
    assert claim_of(invoice) == {
        "claimant": "",
        "claimed_until": None,
        "attempts": 3,
        "failed_at": at,
        "last_error": "3 renders died before they recorded",
    }


def test_a_claim_that_ran_out_is_a_render_that_died_and_the_next_asker_renders(renders):
    invoice = issued_invoice()
    claim(invoice, "task-1")

    # when: a download after the claim's lease (the task's hard limit and 30 s)
    with time_machine.travel(DEC_5 + LEASE + timedelta(seconds=1), tick=False):
        response = download(invoice)

    # then: it rendered (the second attempt), stored and served the PDF
    assert response.status_code == 200
    assert response.content == stored(invoice)
    assert renders == [invoice.number]
    assert claim_of(invoice)["attempts"] == 0


@time_machine.travel(DEC_5, tick=False)
def test_a_render_that_outlived_its_lease_leaves_the_next_claim_held(renders):
    invoice = issued_invoice()
    late = claim(invoice, "call:late")
    after_lease = DEC_5 + LEASE + timedelta(seconds=1)
    taken_over = claim(invoice, "task-2", now=after_lease)

    # when: the late render records and frees its claim
    render_claims.render_done(late)

    # then: the claim taken over still holds (freed, a third render could start)
    assert (claim_of(invoice)["claimant"], claim_of(invoice)["attempts"]) == ("task-2", 2)
    render_claims.render_done(taken_over)
    assert (claim_of(invoice)["claimant"], claim_of(invoice)["attempts"]) == ("", 0)


def test_the_email_waits_for_the_render_under_way_and_attaches_what_it_stored(
    renders, settings, mailoutbox, delayed_sends, django_capture_on_commit_callbacks
):
    invoice = issued_invoice()
    email = email_of(invoice, settings)
    # given: the render task is rendering the invoice (its claim held)
    claim(invoice, "render-task")

    # when: the email's task comes meanwhile
    with (
        time_machine.travel(DEC_5 + timedelta(seconds=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        waiting = emails.document_email_send(email=email, now=DEC_5 + timedelta(seconds=5))

    # then: it renders nothing, waits 15 s (a task sent for then: seconds, within the
    # broker's bound), and its attempt is not counted
    assert renders == []
    assert delayed_sends == [("invoices.tasks.send_document_email", 15, None)]
    assert (waiting.status, waiting.attempts, waiting.next_attempt_at) == (
        DocumentEmail.PENDING,
        0,
        DEC_5 + timedelta(seconds=20),
    )
    assert mailoutbox == []

    # when: the render task records its PDF (its own claim), then the email comes again
    with time_machine.travel(DEC_5 + timedelta(seconds=10), tick=False):
        sha256 = render_invoice_pdf.apply((invoice.pk,), task_id="render-task").get()
    with time_machine.travel(DEC_5 + timedelta(seconds=20), tick=False):
        sent = emails.document_email_send(email=email, now=DEC_5 + timedelta(seconds=20))

    # then: sent once, with the stored PDF, rendered once
    assert (sent.status, sent.attempts) == (DocumentEmail.SENT, 1)
    assert renders == [invoice.number]
    [message] = mailoutbox
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content == stored(invoice)
    assert sha256 == Invoice.objects.get(pk=invoice.pk).pdf_sha256

"""A PDF render whose process died (kill -9, out of memory) keeps its claim until the
lease runs out and someone asks again (invoices.render_claims): minutes in which
nothing renders it. From the render task's hard time limit on, it is counted overdue
(invoices.selectors.pdf_renders_overdue): /readyz names the count without failing (the
instance serves all the same) and the metrics carry it (billing_pdf_renders_overdue).
The claims are the real rows; time is set."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from prometheus_client import CollectorRegistry

from config.metrics_export import SystemCollector
from invoices import render_claims, rendering
from invoices.models import Invoice
from invoices.selectors import pdf_renders_overdue
from invoices.services import invoice_void
from invoices.tasks import render_credit_note_pdf, render_invoice_pdf
from tests.invoices.test_pdf_downloads import DEC_5, credit, customer, issued_invoice
from tests.invoices.test_pdf_render_claims import LEASE, claim, claim_of, download

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """PDFs stored in a directory of this test's; the documents issued with neither
    their render nor their email run (as if their tasks had not run yet)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False


HARD_LIMIT = timedelta(seconds=210)  # the PDF task's (settings.BILLING_TASK_LIMITS)
SECOND = timedelta(seconds=1)


def readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, json.loads(response.content)


def test_a_claim_is_overdue_from_the_hard_time_limit_until_its_render_records():
    invoice = issued_invoice()
    # given: the render task claimed the render at DEC_5, and its worker was killed
    claim(invoice, "task-1")

    # then: not overdue while a render may still be running, overdue from the task's
    # hard limit on, and after the lease ran out while nobody asked again
    assert pdf_renders_overdue(now=DEC_5 + HARD_LIMIT - SECOND) == 0
    assert pdf_renders_overdue(now=DEC_5 + HARD_LIMIT) == 1
    assert pdf_renders_overdue(now=DEC_5 + LEASE + timedelta(hours=1)) == 1

    # when: a download after the lease renders it (and records it)
    with time_machine.travel(DEC_5 + LEASE + SECOND, tick=False):
        assert download(invoice).status_code == 200

    # then: none overdue
    assert Invoice.objects.get(pk=invoice.pk).pdf_sha256 != ""
    assert pdf_renders_overdue(now=DEC_5 + LEASE + timedelta(hours=1)) == 0


def test_a_voided_invoices_render_and_a_credit_notes_are_overdue_too():
    # given: an invoice whose PDF was stored, then voided (its PDF must say VOID), and
    # a credit note never rendered; both renders claimed at DEC_5 and killed
    voided = issued_invoice()
    render_invoice_pdf(voided.pk)
    invoice_void(invoice=voided, reason="billed twice", now=DEC_5)
    note = credit(issued_invoice(customer("globex")))
    claim(Invoice.objects.get(pk=voided.pk), "task-1")
    render_claims.render_claim(
        document=note,
        claimant="task-2",
        now=DEC_5,
        force=False,
        is_current=rendering.pdf_is_current,
    )

    assert pdf_renders_overdue(now=DEC_5 + HARD_LIMIT) == 2

    # when: each rendered again
    with time_machine.travel(DEC_5 + LEASE + SECOND, tick=False):
        render_invoice_pdf(voided.pk)
        render_credit_note_pdf(note.pk)
    assert pdf_renders_overdue(now=DEC_5 + LEASE + timedelta(hours=1)) == 0


def test_a_claim_left_on_a_document_whose_pdf_is_current_is_not_overdue():
    # given: an invoice with its PDF stored, whose repair (a forced render) was killed
    invoice = issued_invoice()
    render_invoice_pdf(invoice.pk)
    render_claims.render_claim(
        document=invoice,
        claimant="repair-1",
        now=DEC_5,
        force=True,
        is_current=rendering.pdf_is_current,
    )

    # then: its claim is left, and the stored PDF serves: nothing is missing
    assert claim_of(invoice)["claimant"] == "repair-1"
    assert download(invoice).status_code == 200
    assert pdf_renders_overdue(now=DEC_5 + LEASE + timedelta(hours=1)) == 0


def test_a_render_given_up_is_not_overdue():
    invoice = issued_invoice()
    for attempt in range(3):
        claim(invoice, "task-1", now=DEC_5 + attempt * LEASE)
    # the fourth delivery gives the render up (3 renders died)
    with pytest.raises(render_claims.PdfRenderFailed):
        claim(invoice, "task-1", now=DEC_5 + 3 * LEASE)

    assert claim_of(invoice)["failed_at"] == DEC_5 + 3 * LEASE
    assert pdf_renders_overdue(now=DEC_5 + 4 * LEASE) == 0


def test_readyz_names_the_renders_overdue_and_stays_200():
    first, second = issued_invoice(), issued_invoice(customer("globex"))
    claim(first, "task-1")
    claim(second, "task-2", now=DEC_5 + HARD_LIMIT)

    # when: one has had its hard limit
    with time_machine.travel(DEC_5 + HARD_LIMIT, tick=False):
        status, body = readyz()
    # then: named, still ready
    assert (status, body["status"], body["checks"]["pdf_renders"]) == (
        200,
        "ready",
        "1 PDF render overdue",
    )

    # when: both have
    with time_machine.travel(DEC_5 + 2 * HARD_LIMIT, tick=False):
        assert readyz() == (
            200,
            {
                "status": "ready",
                "checks": {
                    "database": "ok",
                    "migrations": "ok",
                    "broker": "ok",
                    "cache": "ok",
                    "outbound": "ok",
                    "pdf_renders": "2 PDF renders overdue",
                },
            },
        )


def test_readyz_says_ok_with_no_render_overdue():
    claim(issued_invoice(), "task-1")

    with time_machine.travel(DEC_5 + HARD_LIMIT - SECOND, tick=False):
        assert readyz()[1]["checks"]["pdf_renders"] == "ok"


def test_the_metrics_carry_the_renders_overdue():
    registry = CollectorRegistry()
    registry.register(SystemCollector())
    claim(issued_invoice(), "task-1")

    with time_machine.travel(DEC_5 + HARD_LIMIT - SECOND, tick=False):
        assert registry.get_sample_value("billing_pdf_renders_overdue") == 0
    with time_machine.travel(DEC_5 + HARD_LIMIT, tick=False):
        assert registry.get_sample_value("billing_pdf_renders_overdue") == 1
    assert registry.get_sample_value("billing_metrics_source_up", {"source": "database"}) == 1

"""Reads for invoices."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet

from invoices.models import CreditNote, Invoice, PdfRender
from invoices.render_claims import render_lease


def left_to_pay(invoices: QuerySet) -> QuerySet:
    """The invoices with something still to pay on them (Invoice.amount_due > 0
    for a finalized or uncollectible one), in SQL."""
    return invoices.filter(total__gt=F("credits_applied") + F("credited") + F("amount_paid"))


def past_due(invoices: QuerySet, *, now: datetime) -> QuerySet:
    """The finalized invoices whose due date has passed with something still to pay:
    the dashboard's "past due", the admin's filter and the API's ?past_due=true."""
    return left_to_pay(invoices.filter(status=Invoice.FINALIZED, due_at__lt=now))


def documents_to_render() -> tuple[list[int], list[int]]:
    """The ids of the numbered invoices and of the credit notes whose stored PDF may
    be missing or out of date: none recorded, or (invoices) voided; the render task
    decides for each (rendering.pdf_is_current) and leaves a current one alone."""
    invoices = (
        Invoice.objects.exclude(status=Invoice.DRAFT)
        .filter(Q(pdf_sha256="") | Q(status=Invoice.VOID))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    notes = CreditNote.objects.filter(pdf_sha256="").order_by("pk").values_list("pk", flat=True)
    return list(invoices), list(notes)


def pdf_render_given_up(document) -> str:
    """Why the renders of an invoice's or credit note's PDF were given up
    (invoices.render_claims), or "" when they were not."""
    field = "invoice" if isinstance(document, Invoice) else "credit_note"
    row = PdfRender.objects.filter(**{field: document}, failed_at__isnull=False).first()
    return row.last_error if row is not None else ""


def pdf_renders_overdue(*, now: datetime) -> int:
    """How many PDF renders are overdue: claimed (invoices.render_claims) longer ago
    than the render task's hard time limit, the document's PDF still missing or out of
    date (rendering.pdf_is_current: none stored, or an invoice's from before its void).
    The process that claimed it is gone (killed -9, out of memory), its claim held until
    its lease runs out and the render is asked for again. A claim left on a document
    whose PDF is current (a repair's render killed: the stored PDF serves) is not
    counted, nor are renders given up (their claims are freed; the admin names them)."""
    hard_limit = timedelta(seconds=settings.BILLING_TASK_LIMITS["pdf"][1])
    # A claim holds until it was made + render_lease(), which is past the hard limit.
    claimed_by = now - hard_limit + render_lease()
    invoice_not_current = Q(invoice__pdf_sha256="") | Q(
        Q(invoice__pdf_rendered_at__isnull=True)
        | Q(invoice__pdf_rendered_at__lt=F("invoice__voided_at")),
        invoice__status=Invoice.VOID,
        invoice__voided_at__isnull=False,
    )
    return (
        PdfRender.objects.exclude(claimant="")
        .filter(claimed_until__lte=claimed_by)
        .filter(invoice_not_current | Q(credit_note__pdf_sha256=""))
        .count()
    )

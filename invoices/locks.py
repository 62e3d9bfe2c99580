"""Row locks on invoices, payments, document emails and received Stripe events,
in one place. An invoice's lock comes after its customer's and its
subscription's (billing.locks) and before any wallet's (wallets.locks), except a
credit note on a purchase (a void's too), which takes its wallets' first
(wallets.take_back), the order the sale took them; several rows in primary-key
order."""

from invoices.models import CreditNote, DocumentEmail, Invoice, Payment, PdfRender, StripeEvent


def invoice_lock(invoice_id: int) -> Invoice:
    """Lock one invoice (not the rows it joins) and return it fresh."""
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=invoice_id)
    )


def invoices_lock(invoice_ids: list[int]) -> list[Invoice]:
    """Lock these invoices in primary-key order and return them fresh, in that order."""
    return list(
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk__in=invoice_ids)
        .order_by("pk")
    )


def credit_note_lock(credit_note_id: int) -> CreditNote:
    """Lock one credit note (to record its PDF) and return it fresh."""
    return (
        CreditNote.objects.select_for_update(of=("self",))
        .select_related("invoice")
        .get(pk=credit_note_id)
    )


def draft_invoices_claim(invoice_ids: list[int]) -> list[Invoice]:
    """Lock the drafts among these invoices that no other transaction holds."""
    return list(
        Invoice.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer")
        .filter(pk__in=invoice_ids, status=Invoice.DRAFT)
        .order_by("pk")
    )


def payment_lock(payment_id: int) -> Payment:
    return (
        Payment.objects.select_for_update(of=("self",))
        .select_related("invoice", "purchase__pack", "customer")
        .get(pk=payment_id)
    )


def payment_to_attempt_lock(payment_id: int) -> Payment | None:
    """Lock the payment if it is still pending or being attempted, else None."""
    return (
        Payment.objects.select_for_update(of=("self",))
        .select_related("invoice", "purchase__pack", "customer")
        .filter(pk=payment_id, status__in=(Payment.PENDING, Payment.ATTEMPTING))
        .first()
    )


def open_payments_lock(invoice: Invoice) -> list[Payment]:
    """Lock the invoice's payments not over yet (waiting, attempting, at Stripe)."""
    return list(
        Payment.objects.select_for_update()
        .filter(invoice=invoice, status__in=Payment.OPEN)
        .order_by("pk")
    )


def waiting_payments_lock(invoice: Invoice) -> list[Payment]:
    """Lock the invoice's payments that wait for their next attempt."""
    return list(
        Payment.objects.select_for_update()
        .filter(invoice=invoice, status=Payment.PENDING)
        .order_by("pk")
    )


def stripe_event_lock(event_pk: int) -> StripeEvent:
    return StripeEvent.objects.select_for_update().get(pk=event_pk)


def document_email_lock(email_id: int) -> DocumentEmail:
    """Lock one document email and return it fresh, with its document."""
    return (
        DocumentEmail.objects.select_for_update(of=("self",))
        .select_related("invoice__customer", "credit_note__customer", "credit_note__invoice")
        .get(pk=email_id)
    )


def pdf_render_lock(render_id: int) -> PdfRender:
    """Lock a document's PDF render row (invoices.render_claims) and return it fresh.
    Taken alone, or after the document's own lock when a render is recorded."""
    return PdfRender.objects.select_for_update().get(pk=render_id)

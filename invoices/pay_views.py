"""An invoice's payment page, opened by its pay link (invoices.pay_links): what
is due and by when, the PDF, and how to pay: Stripe Checkout when Stripe is
configured, the seller's bank details otherwise. Written by the invoice's own
writer (Invoice.text), as its PDF and its reminders."""

from datetime import UTC, datetime

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from common.errors import Conflict
from invoices import stripe_client
from invoices.checkout import invoice_checkout_open
from invoices.collection import PaymentFailed
from invoices.models import Invoice
from invoices.pay_links import PayLinkInvalid, pay_token_invoice_id
from invoices.rendering import invoice_pdf_response
from invoices.sellers import invoice_seller
from invoices.standing import is_owed

HEADERS = {
    # The token is in the path: never sent on as a referrer, never cached.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


class _NoInvoice(Exception):
    pass


def _invoice(token: str) -> Invoice | None:
    """The invoice a link opens; None for a link that is not one (PayLinkInvalid)."""
    try:
        invoice_id = pay_token_invoice_id(token=token, now=datetime.now(UTC))
    except PayLinkInvalid:
        return None
    found = (
        Invoice.objects.select_related("customer")
        .exclude(status=Invoice.DRAFT)
        .filter(pk=invoice_id)
        .first()
    )
    if found is None:
        raise _NoInvoice
    return found


def _with_headers(response):
    for name, value in HEADERS.items():
        response[name] = value
    return response


def _denied(request, status: int = 403):
    """A link that is not one (or has expired): 403, as the portal's; an invoice
    gone (a draft, deleted): 404."""
    return _with_headers(render(request, "portal/denied.html", {"status": status}, status=status))


@require_http_methods(["GET", "POST"])
def pay_page(request, token: str):
    try:
        invoice = _invoice(token)
    except _NoInvoice:
        return _denied(request, 404)
    if invoice is None:
        return _denied(request)
    owed = is_owed(invoice)
    error = ""
    if request.method == "POST" and owed and stripe_client.enabled():
        here = request.build_absolute_uri()
        try:
            url = invoice_checkout_open(invoice=invoice, return_url=here, now=datetime.now(UTC))
        except (Conflict, PaymentFailed) as refused:
            error = str(refused)
        else:
            return _with_headers(HttpResponseRedirect(url))
    write = invoice.text
    seller = invoice_seller(invoice)
    with write.speaking():
        context = {
            "invoice": invoice,
            "seller": seller,
            "bank": seller.get("bank") or {},
            "owed": owed,
            "amount_due": write.money_text(invoice.amount_due),
            "total": write.money_text(invoice.total),
            "due": write.day(invoice.due_at),
            "overdue": owed and invoice.due_at <= datetime.now(UTC),
            "paid": invoice.status == Invoice.PAID,
            "paid_on": write.day(invoice.paid_at),
            "card": stripe_client.enabled(),
            "error": error,
            "pdf_url": reverse("invoice-pay-pdf", args=[token]),
            "language": write.locale,
        }
        response = render(request, "portal/pay.html", context)
    return _with_headers(response)


@require_GET
def pay_page_pdf(request, token: str):
    try:
        invoice = _invoice(token)
    except _NoInvoice:
        return _denied(request, 404)
    if invoice is None:
        return _denied(request)
    return invoice_pdf_response(invoice=invoice, now=datetime.now(UTC), headers=HEADERS)

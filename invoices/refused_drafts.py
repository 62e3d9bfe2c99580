"""A draft whose e-invoice was refused (Invoice.e_invoice_errors), rebuilt from
the customer's settings as they are now and issued in one action.

A draft is written once, with the tax rates and the buyer of that moment
(invoices.services.invoice_write_draft); finalization refreshes the buyer's
identifiers but keeps the draft's amounts. When what was refused is what the
draft was written with (two VAT rates stacked on one document, a rate's
category), fixing the rates changes nothing on the draft: the rebuild writes
its tax again at the customer's rates now, through the same totals the draft
was written with (invoices.totals: its lines stay as they are, each already
rounded), and its buyer afresh, then finalizes it, which checks it again.
Discarding one (the period billed again by the next close) is the close's:
billing.invoicing.refused_drafts."""

from datetime import datetime

from django.db import transaction

from common.errors import Conflict
from invoices.locks import invoice_lock
from invoices.models import Invoice
from invoices.services import customer_snapshot, invoice_finalize, tax_lines_write
from invoices.totals import invoice_totals
from plans.taxes import customer_tax_rates

# What a rebuild keeps of the draft's buyer as it was written: what its lines
# were written in (their currency, language and days). Its tax status is taken
# afresh, with its rates.
KEPT_ON_REBUILD = ("currency", "locale", "timezone")


def refused_draft_check(invoice: Invoice) -> None:
    """Conflict unless the invoice is a draft whose e-invoice was refused."""
    if invoice.status != Invoice.DRAFT or invoice.number:
        raise Conflict(f"invoice {invoice} is {invoice.status}, not a draft")
    if not invoice.e_invoice_errors:
        raise Conflict(
            f"invoice {invoice} is a draft whose e-invoice was not refused: finalize it as it is"
        )


def invoice_rebuild(*, invoice_id: int, now: datetime) -> Invoice:
    """Rebuild a refused draft from its customer's settings now (tax rates,
    tax status, address, identifiers) and finalize it: the invoice issued, or,
    refused again, the draft rebuilt (committed) with the new refusal kept on it
    and EInvoiceInvalid (409) saying why. Conflict (409) for an invoice that is
    not a refused draft; nothing changes then."""
    with transaction.atomic():
        invoice = invoice_lock(invoice_id)
        refused_draft_check(invoice)
        customer = invoice.customer
        rates = customer_tax_rates(customer)
        totals = invoice_totals(invoice.lines.all(), rates=rates, currency=invoice.currency)
        written = invoice.customer_snapshot or {}
        kept = {key: written[key] for key in KEPT_ON_REBUILD if key in written}
        invoice.customer_snapshot = {**written, **customer_snapshot(customer), **kept}
        invoice.subtotal, invoice.discount = totals.subtotal, totals.discount
        invoice.tax, invoice.total = totals.tax, totals.total
        invoice.e_invoice_errors = []
        invoice.e_invoice_refused_for = ""
        invoice.tax_lines.all().delete()
        tax_lines_write(invoice, totals.taxes)
        invoice.save(
            update_fields=[
                "customer_snapshot",
                "subtotal",
                "discount",
                "tax",
                "total",
                "e_invoice_errors",
                "e_invoice_refused_for",
            ]
        )
    return invoice_finalize(invoice=invoice, now=now)

"""Re-rating from the invoice list (for invoices.admin.invoices): "Re-rate usage…"
on invoices that billed a period's usage (a close's, a plan change's, a cancel's)
first shows, on the shared confirmation page, what re-rating each one's part of a
period at today's mappings finds (a dry run of billing.invoicing.rerating: what
it billed, what it bills now, and the document the difference takes); only the
page's button applies it, each invoice's part in its own transaction."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from billing.invoicing.rerating import RerateRow, invoice_rerate
from common import customer_text
from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_forms import money_text
from common.errors import BillingError
from invoices.models import Invoice

# Invoices one action previews (each a dry run); more is the API's (POST /rerate).
MAX_INVOICES = 50


def _period(row: RerateRow) -> str:
    zone = customer_text.customer_zone(row.customer)
    return customer_text.period(row.period_start, row.period_end, zone)


def row_sentence(invoice: Invoice, row: RerateRow) -> str:
    """What re-rating the part `invoice` billed does, in one sentence."""
    words = {
        "invoice": invoice,
        "customer": row.customer.name or row.customer.external_id,
        "period": _period(row),
        "billed": money_text(row.billed, row.currency),
        "rerated": money_text(row.rerated, row.currency),
        "difference": money_text(abs(row.difference), row.currency),
    }
    if row.difference > 0:
        text = gettext(
            "{invoice} for {customer} ({period}) billed {billed}; at today's mappings it "
            "bills {rerated}: an invoice of {difference} before tax, naming {invoice}, is "
            "issued now."
        )
    elif row.difference < 0:
        text = gettext(
            "{invoice} for {customer} ({period}) billed {billed}; at today's mappings it "
            "bills {rerated}: a credit note of {difference} before tax is issued on it now."
        )
    else:
        text = gettext(
            "{invoice} for {customer} ({period}) billed {billed}, as it bills at today's "
            "mappings: nothing to correct."
        )
    return text.format(**words)


def rerate_with_preview(modeladmin, request, queryset):
    """The list's "Re-rate usage…" action: the preview of each invoice's part, then,
    confirmed, each applied (a refusal is an error message, the others go on)."""
    invoices = list(queryset.select_related("customer").order_by("pk")[: MAX_INVOICES + 1])
    if len(invoices) > MAX_INVOICES:
        modeladmin.message_user(
            request,
            gettext(
                "Re-rate at most {count} invoices at a time (or a whole window through the "
                "API's POST /api/v1/rerate)."
            ).format(count=MAX_INVOICES),
            messages.ERROR,
        )
        return None
    now = timezone.now()
    if is_confirmed(request):
        for invoice in invoices:
            try:
                row = invoice_rerate(invoice=invoice, now=now, dry_run=False)
            except BillingError as error:
                modeladmin.message_user(
                    request,
                    gettext("{invoice} was not re-rated: {reason}").format(
                        invoice=invoice, reason=error.words
                    ),
                    messages.ERROR,
                )
                continue
            if row is None:
                continue
            if row.issued is None:
                text = gettext("{invoice} re-rated: nothing to correct.")
            elif isinstance(row.issued, Invoice):
                text = gettext("{invoice} re-rated: invoice {number} issued.")
            else:
                text = gettext("{invoice} re-rated: credit note {number} issued.")
            number = row.issued.number if row.issued is not None else ""
            modeladmin.message_user(request, text.format(invoice=invoice, number=number))
        return None
    consequences, taken = [], []
    for invoice in invoices:
        try:
            row = invoice_rerate(invoice=invoice, now=now, dry_run=True)
        except BillingError as error:
            consequences.append(
                gettext("{invoice} cannot be re-rated: {reason}").format(
                    invoice=invoice, reason=error.words
                )
            )
            continue
        if row is None:
            consequences.append(
                gettext("{invoice} billed no period's usage: nothing to re-rate.").format(
                    invoice=invoice
                )
            )
            continue
        taken.append(invoice)
        consequences.append(row_sentence(invoice, row))
    if not taken:
        for sentence in consequences:
            modeladmin.message_user(request, sentence, messages.ERROR)
        return None
    consequences.append(
        gettext(
            "Stored usage is priced again as the usage sources' mappings name its models "
            "now, at the prices each period was billed at; those events keep the names "
            "their source sent."
        )
    )
    title = ngettext(
        "Re-rate the usage of {count} invoice?",
        "Re-rate the usage of {count} invoices?",
        len(taken),
    ).format(count=len(taken))
    return confirmation_page(
        request,
        modeladmin,
        Confirmation(
            title=title,
            consequences=consequences,
            confirm_label=gettext("Re-rate and correct"),
            cancel_url=reverse("admin:invoices_invoice_changelist"),
            hidden={
                "action": "rerate_usage",
                helpers.ACTION_CHECKBOX_NAME: [str(invoice.pk) for invoice in taken],
            },
        ),
    )

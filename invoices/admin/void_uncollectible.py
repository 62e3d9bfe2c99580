"""Voiding invoices and marking them uncollectible in the admin (for
invoices.admin.invoices): from the list, several at once, or from the invoice's
page, a button each. Both go through the shared confirmation page
(common.admin_confirm), which says in words what will happen to each
invoice (its credit note, its payment on Stripe, whether it can be undone);
only its button calls invoices.services, and a refusal comes back as an error
message."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import helpers
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext

from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_forms import money_text
from common.errors import BillingError
from invoices import credit_notes, emails, services
from invoices.admin.credit_notes import taken_back_text
from invoices.models import Invoice, Payment

# The shared page with one input more: the reason printed on the credit note.
VOID_TEMPLATE = "admin/invoices/invoice/void_confirm.html"


class VoidForm(forms.Form):
    memo = forms.CharField(
        max_length=500,
        required=False,
        label=gettext_lazy("Reason, printed on the credit note"),
        help_text=gettext_lazy(
            "For example: billed twice. Left empty, the credit note says “void of” "
            "and the invoice's number, in the customer's language."
        ),
        widget=forms.TextInput(attrs={"size": 60}),
    )


def _stripe_payment(invoice: Invoice) -> Payment | None:
    return Payment.objects.filter(invoice=invoice).first()


def _stripe_sentence(invoice: Invoice, *, void: bool) -> str | None:
    """What the action does to the invoice's collection through Stripe
    (invoices.collection.collection_stop cancels a payment waiting for its next
    attempt; one under way reports as it comes)."""
    payment = _stripe_payment(invoice)
    if payment is None:
        return None
    if payment.status == Payment.PENDING:
        return gettext("Its payment on Stripe is cancelled: no further attempt is made.")
    if payment.status in Payment.OPEN and void:
        return gettext(
            "A payment attempt on Stripe is already under way and is not stopped: if the "
            "money comes in, refund it in Stripe (its payment's page says so)."
        )
    if payment.status in Payment.OPEN:
        return gettext(
            "A payment attempt on Stripe is already under way and is not stopped: if it "
            "succeeds, the invoice is paid."
        )
    return None


def _void_refusal(invoice: Invoice) -> str:
    if invoice.status == Invoice.PAID:
        return gettext(
            "{invoice} is paid: it is not voided. To give money back, issue a credit note "
            "on it instead."
        ).format(invoice=invoice)
    if invoice.status == Invoice.VOID:
        return gettext("{invoice} is already void: nothing changes.").format(invoice=invoice)
    return gettext(
        "{invoice} is a draft: it is not voided (a draft is owed nothing until finalized)."
    ).format(invoice=invoice)


def _void_previews(invoices: list[Invoice]) -> tuple[list, list[str]]:
    """Each invoice with the credit note its void would issue, and the sentences of
    those whose void is refused: a purchase whose sale was partly used or expired
    (credit_notes.void_preview says so) is not offered a void it would refuse."""
    previews, refused = [], []
    for invoice in invoices:
        try:
            previews.append((invoice, credit_notes.void_preview(invoice)))
        except BillingError as error:
            refused.append(
                gettext("{invoice} for {customer} cannot be voided: {reason}.").format(
                    invoice=invoice, customer=invoice.customer.name, reason=error.words
                )
            )
    return previews, refused


def _void_sentences(invoice: Invoice, preview) -> list[str]:
    currency = invoice.currency
    sentences = [
        gettext(
            "{invoice} for {customer} ({amount}) will be void: the customer owes nothing on it."
        ).format(
            invoice=invoice,
            customer=invoice.customer.name,
            amount=money_text(invoice.total, currency),
        )
    ]
    parts = []
    if preview.to_amount_due:
        parts.append(
            gettext("{amount} off the amount due").format(
                amount=money_text(preview.to_amount_due, currency)
            )
        )
    if preview.to_credit_balance > 0:
        parts.append(
            gettext(
                "{amount} back to the customer's credit balance (what was already paid of it)"
            ).format(amount=money_text(preview.to_credit_balance, currency))
        )
    where = f" ({'; '.join(parts)})" if parts else ""
    sentences.append(
        gettext("A credit note of {amount} is issued for it{where}.").format(
            amount=money_text(preview.total, currency), where=where
        )
    )
    recipients = emails.document_recipients(invoice.customer)
    if settings.BILLING_INVOICE_EMAILS and recipients:
        sentences.append(
            gettext("The credit note is emailed to {recipients}.").format(
                recipients=", ".join(recipients)
            )
        )
    if preview.taken_back:
        taken = "; ".join(taken_back_text(part) for part in preview.taken_back)
        sentences.append(
            gettext("What the purchase granted is taken back: {taken}.").format(taken=taken)
        )
    stripe = _stripe_sentence(invoice, void=True)
    if stripe:
        sentences.append(stripe)
    return sentences


def _uncollectible_refusal(invoice: Invoice) -> str:
    if invoice.status == Invoice.UNCOLLECTIBLE:
        return gettext("{invoice} is already uncollectible: nothing changes.").format(
            invoice=invoice
        )
    if invoice.status == Invoice.DRAFT:
        return gettext("{invoice} is a draft: there is nothing to collect yet.").format(
            invoice=invoice
        )
    return gettext("{invoice} is {status}: there is nothing to collect.").format(
        invoice=invoice, status=invoice.get_status_display().lower()
    )


def _uncollectible_sentences(invoice: Invoice) -> list[str]:
    sentences = [
        gettext(
            "{invoice} for {customer} ({amount} due) will be marked uncollectible: collecting "
            "it is given up; it keeps its number and what is due on it."
        ).format(
            invoice=invoice,
            customer=invoice.customer.name,
            amount=money_text(invoice.amount_due, invoice.currency),
        )
    ]
    stripe = _stripe_sentence(invoice, void=False)
    if stripe:
        sentences.append(stripe)
    return sentences


def _summary(void: bool, invoices: list[Invoice]) -> list[str]:
    if len(invoices) < 2:
        return []
    customers = len({invoice.customer_id for invoice in invoices})
    of_customers = ngettext("{count} customer", "{count} customers", customers).format(
        count=customers
    )
    if void:
        summary = ngettext(
            "{count} invoice of {customers} will be void:",
            "{count} invoices of {customers} will be void:",
            len(invoices),
        )
    else:
        summary = ngettext(
            "{count} invoice of {customers} will be marked uncollectible:",
            "{count} invoices of {customers} will be marked uncollectible:",
            len(invoices),
        )
    return [summary.format(count=len(invoices), customers=of_customers)]


def _name(invoices: list[Invoice]) -> str:
    """'INV-2026-000012' for one invoice, '3 invoices' for more."""
    if len(invoices) == 1:
        return str(invoices[0])
    return ngettext("{count} invoice", "{count} invoices", len(invoices)).format(
        count=len(invoices)
    )


def _back(single: Invoice | None):
    if single is not None:
        return redirect("admin:invoices_invoice_change", single.pk)
    return None


def _ask(modeladmin, request, confirmation: Confirmation, single, form=None):
    response = confirmation_page(request, modeladmin, confirmation, obj=single)
    if form is not None:
        # The shared page, with the void's reason input in its form (VOID_TEMPLATE).
        response.template_name = VOID_TEMPLATE
        response.context_data["form"] = form
    return response


def _hidden(single: Invoice | None, action: str, invoices: list[Invoice]) -> dict:
    if single is not None:
        return {}
    return {
        "action": action,
        helpers.ACTION_CHECKBOX_NAME: [str(invoice.pk) for invoice in invoices],
    }


def _cancel_url(single: Invoice | None) -> str:
    if single is not None:
        return reverse("admin:invoices_invoice_change", args=[single.pk])
    return reverse("admin:invoices_invoice_changelist")


def _split(invoices, allowed: tuple, refusal) -> tuple[list[Invoice], list[str]]:
    taken = [invoice for invoice in invoices if invoice.status in allowed]
    refused = [refusal(invoice) for invoice in invoices if invoice.status not in allowed]
    return taken, refused


def void_with_confirmation(modeladmin, request, queryset, *, single: Invoice | None = None):
    """The list's "Void…" action and the invoice page's "Void" button: the
    confirmation page (each invoice, its credit note, its payment on Stripe), then
    invoices.services.invoice_void for each on its button."""
    invoices = [single] if single is not None else list(queryset.select_related("customer"))
    voidable, refused = _split(invoices, services.VOIDABLE, _void_refusal)
    previews, cannot = _void_previews(voidable)
    voidable, refused = [invoice for invoice, _ in previews], refused + cannot
    if not voidable:
        for sentence in refused:
            modeladmin.message_user(request, sentence, messages.ERROR)
        return _back(single)
    form = VoidForm(request.POST if is_confirmed(request) else None)
    if form.is_bound and form.is_valid():
        now, memo = timezone.now(), form.cleaned_data["memo"]
        for invoice in voidable:
            try:
                note = services.invoice_void(invoice=invoice, reason=memo, now=now)
            except BillingError as error:
                modeladmin.message_user(
                    request,
                    gettext("{invoice} was not voided: {reason}").format(
                        invoice=invoice, reason=error.words
                    ),
                    messages.ERROR,
                )
            else:
                modeladmin.message_user(
                    request,
                    gettext("{invoice} is void; credit note {number} of {amount} issued.").format(
                        invoice=invoice,
                        number=note.number,
                        amount=money_text(note.total, note.currency),
                    ),
                )
        return _back(single)
    consequences = _summary(True, voidable)
    for invoice, preview in previews:
        consequences.extend(_void_sentences(invoice, preview))
    consequences.extend(
        gettext("Not voided: {sentence}").format(sentence=sentence) for sentence in refused
    )
    consequences.append(
        gettext(
            "A void invoice cannot be reopened, and the billing cycle writes no new invoice for "
            "its period: to give back only part of it, cancel and issue a credit note instead."
        )
    )
    name = _name(voidable)
    confirmation = Confirmation(
        title=gettext("Void {name}?").format(name=name),
        consequences=consequences,
        confirm_label=gettext("Void {name}").format(name=name),
        cancel_url=_cancel_url(single),
        hidden=_hidden(single, "void", voidable),
    )
    return _ask(modeladmin, request, confirmation, single, form)


def mark_uncollectible_with_confirmation(
    modeladmin, request, queryset, *, single: Invoice | None = None
):
    """The list's "Mark uncollectible…" action and the invoice page's button: the
    confirmation page, then invoices.services.invoice_mark_uncollectible for each."""
    invoices = [single] if single is not None else list(queryset.select_related("customer"))
    taken, refused = _split(invoices, services.UNCOLLECTIBLE_FROM, _uncollectible_refusal)
    if not taken:
        for sentence in refused:
            modeladmin.message_user(request, sentence, messages.ERROR)
        return _back(single)
    if is_confirmed(request):
        now = timezone.now()
        for invoice in taken:
            try:
                services.invoice_mark_uncollectible(invoice=invoice, now=now)
            except BillingError as error:
                modeladmin.message_user(
                    request,
                    gettext("{invoice} was not marked uncollectible: {reason}").format(
                        invoice=invoice, reason=error.words
                    ),
                    messages.ERROR,
                )
            else:
                modeladmin.message_user(
                    request, gettext("{invoice} is marked uncollectible.").format(invoice=invoice)
                )
        return _back(single)
    consequences = _summary(False, taken)
    for invoice in taken:
        consequences.extend(_uncollectible_sentences(invoice))
    consequences.extend(
        gettext("Not marked: {sentence}").format(sentence=sentence) for sentence in refused
    )
    consequences.append(
        gettext(
            "An uncollectible invoice can still be paid (money that comes in later is recorded "
            "with “Mark paid”) or voided with a credit note."
        )
    )
    name = _name(taken)
    confirmation = Confirmation(
        title=gettext("Mark {name} uncollectible?").format(name=name),
        consequences=consequences,
        confirm_label=gettext("Mark {name} uncollectible").format(name=name),
        cancel_url=_cancel_url(single),
        irreversible=False,
        hidden=_hidden(single, "mark_uncollectible", taken),
    )
    return _ask(modeladmin, request, confirmation, single)

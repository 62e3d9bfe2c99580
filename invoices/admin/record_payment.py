"""The invoice page's "Record a payment…": money received outside Stripe for one
invoice (a bank transfer, a cheque, cash, a card charged elsewhere), whole or a
part, on the day it arrived, with the payments recorded so far beside it. The
form reads what finance types (an amount in their convention, a day in the
invoice's time zone, which it names); the rule is the API's
(invoices.payments_received), and so are its refusals."""

from datetime import date, datetime, time
from decimal import Decimal

from django import forms
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common import customer_text
from common.admin_forms import money_text, typed_value
from common.customer_text import local_day
from common.errors import BillingError, Conflict
from common.money import format_money
from invoices import payments_received
from invoices.admin.invoice_page import moment_text, payment_rows
from invoices.models import Invoice, ReceivedPayment

RECORD_PAYMENT_TEMPLATE = "admin/invoices/invoice/record_payment.html"

# The middle of the day received: its moment is on that day in the invoice's
# zone and, for a zone within 12 hours of UTC, in the journal's UTC day too.
MIDDAY = time(12)


def received_moment(invoice: Invoice, day: date, now: datetime) -> datetime:
    """The moment a payment received on `day` (in the invoice's time zone) is
    recorded at: midday, but no earlier than the invoice's issue on its issue
    day and no later than `now` today, so that the day it was issued or today
    can be typed. Any other day is left for the settlement to refuse."""
    zone = invoice.text.zone
    moment = datetime.combine(day, MIDDAY, tzinfo=zone)
    issued = invoice.finalized_at
    if issued is not None and day == local_day(issued, zone):
        moment = max(moment, issued)
    if day == local_day(now, zone):
        moment = min(moment, now)
    return moment


class RecordPaymentForm(forms.Form):
    amount = forms.CharField(
        label=_("Amount"),
        max_length=64,
        help_text=_("At most the amount due; less records a part of it."),
    )
    received_on = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_(
            "The day the money arrived, in the invoice's time zone (its customer's, as "
            "invoiced): not before the invoice was issued, not in the future."
        ),
    )
    method = forms.ChoiceField(
        label=_("Method"),
        choices=[
            (value, label)
            for value, label in ReceivedPayment.METHODS
            if value in ReceivedPayment.RECORDED_BY_HAND
        ],
    )
    reference = forms.CharField(
        label=_("Reference"),
        max_length=255,
        required=False,
        help_text=_("What identifies the payment: a bank transfer's reference, a cheque number."),
    )

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["received_on"].label = gettext("Date received ({zone})").format(
            zone=invoice.text.zone
        )

    def clean_amount(self):
        return typed_value(self.cleaned_data["amount"])


def refusal_words(refused: BillingError, invoice: Invoice, amount: Decimal, now) -> str:
    """The settlement's refusal as finance reads it, in their language (the API
    keeps its English envelope); one this page cannot meet keeps its words."""
    fields, currency = refused.fields, invoice.currency
    if fields.get("received_at") == ["in the future"]:
        return gettext("The payment is dated in the future (now: {now}).").format(
            now=moment_text(invoice, now)
        )
    if fields.get("received_at") == ["before the invoice was issued"]:
        return gettext("The payment is dated before the invoice was issued ({issued}).").format(
            issued=moment_text(invoice, invoice.finalized_at)
        )
    if "amount" in fields and isinstance(refused, Conflict):
        return gettext("{amount} is more than the amount due ({due}).").format(
            amount=money_text(amount, currency),
            due=money_text(Invoice.objects.get(pk=invoice.pk).amount_due, currency),
        )
    if "amount" in fields:
        return gettext(
            "Type an amount above zero, with no more decimals than {currency} has."
        ).format(currency=currency)
    if "invoice" in fields:
        return gettext(
            "{invoice} is {status}: only a finalized or uncollectible invoice can be paid."
        ).format(
            invoice=invoice, status=Invoice.objects.get(pk=invoice.pk).get_status_display().lower()
        )
    return refused.words


def record_payment_view(modeladmin, request, invoice: Invoice):
    """The form, prefilled with the amount due and today; posted, the payment is
    recorded (or refused, saying why, with nothing recorded) and the invoice's
    page shows it."""
    now = timezone.now()
    if request.method == "POST":
        form = RecordPaymentForm(request.POST, invoice=invoice)
    else:
        initial = {
            "amount": customer_text.typed_number(
                Decimal(format_money(invoice.amount_due, invoice.currency))
            ),
            "received_on": local_day(now, invoice.text.zone),
            "method": ReceivedPayment.BANK_TRANSFER,
        }
        form = RecordPaymentForm(initial=initial, invoice=invoice)
    error = ""
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            receipt = payments_received.invoice_payment_record(
                invoice=invoice,
                amount=data["amount"],
                received_at=received_moment(invoice, data["received_on"], now),
                method=data["method"],
                reference=data["reference"],
                now=now,
            )
        except BillingError as refused:
            error = refusal_words(refused, invoice, data["amount"], now)
        else:
            modeladmin.message_user(
                request,
                gettext("{amount} received for {invoice}; amount due: {due}").format(
                    amount=money_text(receipt.payment.amount, invoice.currency),
                    invoice=invoice,
                    due=money_text(receipt.invoice.amount_due, invoice.currency),
                ),
            )
            return redirect("admin:invoices_invoice_change", invoice.pk)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext("Record a payment for {invoice}").format(invoice=invoice),
        "opts": Invoice._meta,
        "original": invoice,
        "invoice": invoice,
        "form": form,
        "error": error,
        "total": money_text(invoice.total, invoice.currency),
        "amount_due": money_text(invoice.amount_due, invoice.currency),
        "zone": invoice.text.zone,
        "payment_rows": payment_rows(
            invoice, may_view_payments=request.user.has_perm("invoices.view_payment")
        ),
    }
    return TemplateResponse(request, RECORD_PAYMENT_TEMPLATE, context)

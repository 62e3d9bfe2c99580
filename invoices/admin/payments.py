"""Payments in the admin: every Stripe payment with its attempts and last error,
and the action that records a payment received outside Stripe with its
reference (on the invoice list, invoices.admin.invoices). Changes go through
invoices.collection, wallets.ledger and invoices.services. Purchases and the
Stripe events have modules of their own (invoices.admin.purchases,
invoices.admin.stripe_events)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_fields import ZonedDateTimeField, moment_text
from common.admin_forms import (
    ActionsRecordAdmin,
    RecordInline,
    money_text,
    short_text,
)
from common.errors import BillingError, InvalidRequest
from invoices import collection, settlement
from invoices.models import Payment

PAYMENT_FIELDS = [
    "status",
    "amount",
    "currency",
    "attempts",
    "max_attempts",
    "next_attempt_at",
    "last_error",
    "stripe_customer_id",
    "stripe_payment_intent_id",
    "stripe_checkout_session_id",
    "checkout_url",
    "created_at",
    "updated_at",
    "succeeded_at",
]


class PaymentInline(RecordInline, admin.StackedInline):
    """On an invoice's page: its collection through Stripe, if any."""

    model = Payment
    fk_name = "invoice"
    fields = PAYMENT_FIELDS
    readonly_fields = fields
    verbose_name = _("Stripe payment")


class PaymentReferenceForm(forms.Form):
    reference = forms.CharField(
        max_length=255,
        help_text=_("What identifies the payment: a bank transfer's reference, a cheque number."),
        label=_("Reference"),
    )
    paid_at = ZonedDateTimeField(
        label=_("Received at"),
        required=False,
        help_text=_(
            "When the money arrived: not before the invoice was issued, not in the "
            "future. Empty: now."
        ),
    )

    def __init__(self, *args, invoices=(), now=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoices, self.now = list(invoices), now

    def clean_paid_at(self):
        """The settlement's own date rule (payment_date_check), for each invoice
        selected: one refused, none is recorded."""
        paid_at = self.cleaned_data["paid_at"]
        if paid_at is None:
            return None
        errors = []
        for invoice in self.invoices:
            try:
                settlement.payment_date_check(invoice=invoice, paid_at=paid_at, now=self.now)
            except InvalidRequest as refused:
                if refused.fields.get("paid_at") == ["in the future"]:
                    raise forms.ValidationError(
                        gettext("The payment is dated in the future (now: {now}).").format(
                            now=moment_text(self.now)
                        )
                    ) from None
                errors.append(
                    gettext(
                        "{invoice}: the payment is dated before the invoice was issued ({issued})"
                    ).format(invoice=invoice, issued=moment_text(invoice.finalized_at))
                )
        if errors:
            raise forms.ValidationError(errors)
        return paid_at


@admin.action(
    description=_("Mark paid, with a reference (payment received outside Stripe)"),
    permissions=["mark_paid"],
)
def mark_paid_with_reference(modeladmin, request, queryset):
    """Asks for the payment's reference and when it arrived (default now) on a
    page of its own, then records it on each invoice (invoice_mark_paid). With
    Stripe, a collection still waiting is then not attempted: its payment is
    canceled at its next attempt."""
    now = timezone.now()
    form = PaymentReferenceForm(
        request.POST if "apply" in request.POST else None, invoices=queryset, now=now
    )
    if form.is_bound and form.is_valid():
        reference, paid_at = form.cleaned_data["reference"], form.cleaned_data["paid_at"]
        for invoice in queryset:
            try:
                settlement.invoice_mark_paid(
                    invoice=invoice, reference=reference, now=now, paid_at=paid_at
                )
            except BillingError as error:
                modeladmin.message_user(request, f"{invoice}: {error.words}", messages.ERROR)
            else:
                modeladmin.message_user(
                    request,
                    gettext("{invoice} marked paid ({reference})").format(
                        invoice=invoice, reference=reference
                    ),
                )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext("Mark paid, with a reference"),
        "opts": modeladmin.model._meta,
        "invoices": [
            (invoice, money_text(invoice.total, invoice.currency))
            for invoice in queryset.select_related("customer")
        ],
        "selected": queryset,
        "form": form,
        "action_name": "mark_paid_with_reference",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/invoices/invoice/mark_paid.html", context)


def amount_text(row) -> str:
    return money_text(row.amount, row.currency)


@admin.register(Payment)
class PaymentAdmin(ActionsRecordAdmin):
    list_display = [
        "id",
        "customer",
        "target",
        "amount_display",
        "status",
        "attempts_display",
        "next_attempt_at",
        "last_error_short",
        "stripe_payment_intent_id",
        "updated_at",
    ]
    list_filter = ["status", "currency", "updated_at"]
    search_fields = [
        "customer__external_id",
        "invoice__number",
        "stripe_payment_intent_id",
        "stripe_checkout_session_id",
        "stripe_customer_id",
    ]
    list_select_related = ["customer", "invoice", "purchase"]
    fields = ["customer", "invoice", "purchase", *PAYMENT_FIELDS]
    readonly_fields = fields
    actions = ["retry_now", "stop_collecting"]

    @admin.display(description=_("for"))
    def target(self, payment):
        if payment.invoice_id is not None:
            url = reverse("admin:invoices_invoice_change", args=[payment.invoice_id])
            return format_html('<a href="{}">invoice {}</a>', url, payment.invoice)
        url = reverse("admin:invoices_purchase_change", args=[payment.purchase_id])
        return format_html('<a href="{}">purchase #{}</a>', url, payment.purchase_id)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, payment):
        return amount_text(payment)

    @admin.display(description=_("attempts"))
    def attempts_display(self, payment):
        return f"{payment.attempts} of {payment.max_attempts}"

    @admin.display(description=_("last error"))
    def last_error_short(self, payment):
        return short_text(payment.last_error)

    @admin.action(
        description=_("Retry now (a failed one gets one more attempt)"), permissions=["change"]
    )
    def retry_now(self, request, queryset):
        now = timezone.now()
        for payment in queryset:
            if collection.payment_retry_now(payment=payment, now=now):
                self.message_user(
                    request, gettext("Payment #{id}: attempt queued").format(id=payment.pk)
                )
            else:
                self.message_user(
                    request,
                    gettext(
                        "Payment #{id} is {status}: only a pending or failed off-session "
                        "payment is retried"
                    ).format(id=payment.pk, status=payment.get_status_display().lower()),
                    messages.WARNING,
                )

    @admin.action(
        description=_("Stop collecting (cancel a pending payment)"),
        permissions=["change"],
    )
    def stop_collecting(self, request, queryset):
        now = timezone.now()
        for payment in queryset:
            if collection.payment_cancel(payment=payment, now=now):
                self.message_user(request, gettext("Payment #{id} canceled").format(id=payment.pk))
            else:
                self.message_user(
                    request,
                    gettext("Payment #{id} is {status}: only a pending one is canceled").format(
                        id=payment.pk, status=payment.get_status_display().lower()
                    ),
                    messages.WARNING,
                )

"""Invoice and credit note emails in the admin (inline on invoices.admin.invoices): each
with its recipients, attempts and last error, on a list of their own and on the
invoice's page, and the action that sends a failed one again (invoices.emails)."""

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_forms import ActionsRecordAdmin, RecordInline, short_text
from invoices import emails
from invoices.models import DocumentEmail

EMAIL_FIELDS = [
    "status",
    "recipients_display",
    "subject",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
]


class DocumentEmailInline(RecordInline, admin.TabularInline):
    """On an invoice's page: the email that sent it to the customer, if any."""

    model = DocumentEmail
    fk_name = "invoice"
    fields = EMAIL_FIELDS
    readonly_fields = fields
    verbose_name = _("email to the customer")
    verbose_name_plural = _("emails to the customer")

    @admin.display(description=_("recipients"))
    def recipients_display(self, email):
        return ", ".join(email.recipients)


@admin.register(DocumentEmail)
class DocumentEmailAdmin(ActionsRecordAdmin):
    list_display = [
        "id",
        "document_link",
        "recipients_display",
        "status",
        "attempts",
        "last_error_short",
        "created_at",
        "sent_at",
    ]
    list_filter = ["status", "created_at"]
    search_fields = [
        "invoice__number",
        "credit_note__number",
        "invoice__customer__external_id",
        "credit_note__customer__external_id",
    ]
    list_select_related = ["invoice", "credit_note__invoice"]
    fields = ["document_link", *EMAIL_FIELDS]
    readonly_fields = fields
    actions = ["send_again"]

    @admin.display(description=_("document"))
    def document_link(self, email):
        if email.invoice_id is not None:
            url = reverse("admin:invoices_invoice_change", args=[email.invoice_id])
            return format_html('<a href="{}">invoice {}</a>', url, email.invoice)
        note = email.credit_note
        try:
            url = reverse("admin:invoices_creditnote_change", args=[note.pk])
        except NoReverseMatch:
            # No credit note pages: its invoice's page lists it.
            url = reverse("admin:invoices_invoice_change", args=[note.invoice_id])
        return format_html('<a href="{}">credit note {}</a>', url, note)

    @admin.display(description=_("recipients"))
    def recipients_display(self, email):
        return ", ".join(email.recipients)

    @admin.display(description=_("last error"))
    def last_error_short(self, email):
        return short_text(email.last_error)

    @admin.action(description=_("Send again (a failed email)"), permissions=["change"])
    def send_again(self, request, queryset):
        now = timezone.now()
        for email in queryset:
            if emails.document_email_send_again(email=email, now=now):
                self.message_user(
                    request,
                    gettext("Email #{id} of {document}: queued").format(
                        id=email.pk, document=email.document
                    ),
                )
            else:
                self.message_user(
                    request,
                    gettext(
                        "Email #{id} of {document} is {status}: only a failed email is sent "
                        "again, to a customer with an address"
                    ).format(
                        id=email.pk,
                        document=email.document,
                        status=email.get_status_display().lower(),
                    ),
                    messages.WARNING,
                )

"""Invoices and credit notes emailed to their customers, their PDF attached: one
row per document (invoices.emails)."""

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class DocumentEmail(models.Model):
    """An invoice or a credit note emailed to its customer, its PDF attached: one
    row per document, written when the document is issued (invoices.emails), so
    that issuing or scheduling it twice sends it once. `pending` waits for its
    next attempt (at next_attempt_at; while an attempt is under way that is its
    lease: an attempt whose worker died is made again)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    STATUSES = [(PENDING, _("Pending")), (SENT, _("Sent")), (FAILED, _("Failed"))]

    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="emails",
        verbose_name=_("invoice"),
    )
    credit_note = models.ForeignKey(
        "invoices.CreditNote",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="emails",
        verbose_name=_("credit note"),
    )
    # A dunning reminder of the invoice (invoices.dunning): one per step run; an
    # invoice's own email has none.
    dunning_run = models.OneToOneField(
        "invoices.DunningRun",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="email",
        verbose_name=_("dunning step run"),
    )
    recipients = models.JSONField(default=list, verbose_name=_("recipients"))
    subject = models.CharField(max_length=500, verbose_name=_("subject"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, db_index=True, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    last_error = models.TextField(blank=True, default="", verbose_name=_("last error"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))

    class Meta:
        verbose_name = _("document email")
        verbose_name_plural = _("document emails")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(invoice__isnull=False, credit_note__isnull=True)
                | models.Q(invoice__isnull=True, credit_note__isnull=False),
                name="document_email_for_invoice_or_credit_note",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=models.Q(invoice__isnull=False, dunning_run__isnull=True),
                name="document_email_once_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["credit_note"],
                condition=models.Q(credit_note__isnull=False),
                name="document_email_once_per_credit_note",
            ),
        ]

    def __str__(self) -> str:
        return gettext("email of {document} ({status})").format(
            document=self.document, status=self.get_status_display().lower()
        )

    @property
    def document(self):
        return self.invoice if self.invoice_id is not None else self.credit_note

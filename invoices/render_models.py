"""The render of an invoice's or a credit note's PDF: under way, or given up. One row
per document (invoices.render_claims)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class PdfRender(models.Model):
    """Who renders a document's PDF now and how its renders went since the last one
    recorded: a render claims the row (claimant, claimed_until: a lease past the render
    task's hard time limit), so that one render of a document runs at a time; each
    claim counts an attempt; a render that timed out, or whose attempts are spent
    (killed for memory, say), is given up (failed_at) until a repair renders again."""

    invoice = models.OneToOneField(
        "invoices.Invoice",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="pdf_render",
        verbose_name=_("invoice"),
    )
    credit_note = models.OneToOneField(
        "invoices.CreditNote",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="pdf_render",
        verbose_name=_("credit note"),
    )
    # A task's id, or a download's own: a task delivered again after its worker was
    # lost finds its own claim and counts it as an attempt that died.
    claimant = models.CharField(max_length=64, blank=True, default="", verbose_name=_("claimant"))
    claimed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed until"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    failed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("failed at"))
    last_error = models.TextField(blank=True, default="", verbose_name=_("last error"))

    class Meta:
        verbose_name = _("PDF render")
        verbose_name_plural = _("PDF renders")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(invoice__isnull=False, credit_note__isnull=True)
                | models.Q(invoice__isnull=True, credit_note__isnull=False),
                name="pdf_render_for_invoice_or_credit_note",
            ),
        ]
        # The renders under way, a handful among a row per document ever rendered: what
        # /readyz and the metrics count overdue (invoices.selectors.pdf_renders_overdue).
        indexes = [
            models.Index(
                fields=["claimed_until"],
                condition=~models.Q(claimant=""),
                name="pdf_render_claimed",
            ),
        ]

    def __str__(self) -> str:
        return f"PDF render of {self.invoice or self.credit_note}"

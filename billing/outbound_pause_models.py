"""The one switch that holds what leaves for customers and receivers after a
restore: document and alert e-mails, channel messages, webhooks, Peppol
e-invoices and Stripe charges of invoices. One row at most; every sender reads it
when it sends (billing.notifications.outbound_pause)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboundPause(models.Model):
    """Paused while `paused_at` is set: `manage.py after_restore` sets it, an
    operator lifts it (`after_restore --resume`, or the admin's "Resume sending")
    once the periods billed again are read. `lost` keeps what the restore found
    lost: one dict per number customers may hold that the restored database does
    not have (number, kind, document id, customer id, when emailed, and for an
    invoice its subscription, reason and period), read to list the periods billed
    again under new numbers. Kept after the resume, as the restore's account."""

    ONLY = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ONLY)
    paused_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paused at"))
    reason = models.CharField(max_length=255, blank=True, default="", verbose_name=_("reason"))
    lost = models.JSONField(default=list, blank=True, verbose_name=_("documents lost"))
    resumed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resumed at"))
    resumed_by = models.CharField(
        max_length=150, blank=True, default="", verbose_name=_("resumed by")
    )

    class Meta:
        app_label = "billing"
        verbose_name = _("sending after a restore")
        verbose_name_plural = _("sending after a restore")
        default_permissions = ("view",)
        permissions = [("resume_outbound", "Can resume sending after a restore")]
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="outbound_pause_one_row")
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

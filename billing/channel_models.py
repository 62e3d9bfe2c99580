"""The messages sent to the channels a customer chose for its own alerts
(customers.limits: e-mail addresses, Slack, Microsoft Teams and Discord incoming
webhooks), and the e-mail that tells its billing contact its limits changed: one
row per message and channel, retried until it is sent (billing.notifications.
channels), as webhook deliveries are."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import Customer, CustomerLimitChange


class ChannelMessage(models.Model):
    """One message to one channel: what it says (`subject` for an e-mail, `body`
    exactly as sent: JSON for a webhook, text for an e-mail) and the outcome of
    its attempts. Written once per source (an alert or a limit change), kind and
    target, so that a threshold is sent once a period on each channel however
    many checks and sweeps run. `last_error` is one of a few fixed texts, never
    what a receiver answered."""

    EMAIL = "email"
    SLACK = "slack"
    TEAMS = "teams"
    DISCORD = "discord"
    KINDS = [
        (EMAIL, pgettext_lazy("channel kind", "E-mail")),
        (SLACK, "Slack"),
        (TEAMS, "Microsoft Teams"),
        (DISCORD, "Discord"),
    ]
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUSES = [(PENDING, _("Pending")), (SUCCEEDED, _("Succeeded")), (FAILED, _("Failed"))]

    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="channel_messages",
        verbose_name=_("customer"),
    )
    alert = models.ForeignKey(
        "billing.Alert",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="channel_messages",
        verbose_name=_("alert"),
    )
    limit_change = models.ForeignKey(
        CustomerLimitChange,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="channel_messages",
        verbose_name=_("limit change"),
    )
    kind = models.CharField(max_length=16, choices=KINDS, verbose_name=_("kind"))
    # The e-mail address, or the webhook's URL.
    target = models.TextField(verbose_name=_("to"))
    # The SHA-256 of the target: unique with the source and kind (a URL may be
    # longer than an index entry can hold).
    target_digest = models.CharField(max_length=64, editable=False)
    # What the customer called the channel ("#ops"), if anything.
    name = models.CharField(max_length=100, blank=True, default="", verbose_name=_("name"))
    subject = models.CharField(max_length=255, blank=True, default="", verbose_name=_("subject"))
    body = models.TextField(verbose_name=_("body"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    last_status_code = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("last status code")
    )
    last_error = models.TextField(blank=True, default="", verbose_name=_("last error"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("channel message")
        verbose_name_plural = _("channel messages")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "kind", "target_digest"], name="channel_message_once_per_alert"
            ),
            models.UniqueConstraint(
                fields=["limit_change", "kind", "target_digest"],
                name="channel_message_once_per_change",
            ),
            models.CheckConstraint(
                condition=models.Q(alert__isnull=False, limit_change__isnull=True)
                | models.Q(alert__isnull=True, limit_change__isnull=False),
                name="channel_message_one_source",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="channel_message_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name or self.pk} ({self.status})"

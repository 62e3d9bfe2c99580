"""Webhook endpoints (URLs that receive signed event notifications) and each
delivery of an event to one, retried until it succeeds (billing.notifications)."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.webhook_targets import WebhookTargetRefused, webhook_target_resolve


def webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    """A URL that receives signed event notifications (HMAC-SHA256 with `secret`)."""

    url = models.URLField(
        max_length=2000,
        help_text=_(
            "https:// on a public address (http:// only to BILLING_WEBHOOK_ALLOWED_HOSTS)."
        ),
        verbose_name=_("url"),
    )
    secret = models.CharField(
        max_length=100, default=webhook_secret, editable=False, verbose_name=_("secret")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The event types sent here; empty: every type."),
        verbose_name=_("event types"),
    )
    description = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("description")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    def clean(self):
        # Resolves the host: a URL that reaches our own network is refused here
        # with the reason, and checked again at every send (its DNS may change).
        if self.url:
            try:
                webhook_target_resolve(url=self.url)
            except WebhookTargetRefused as refused:
                raise ValidationError({"url": refused.message}) from None
        if not isinstance(self.event_types, list) or not all(
            isinstance(t, str) and t for t in self.event_types
        ):
            raise ValidationError({"event_types": "must be a list of event type names"})

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event sent to one endpoint, with the outcome of its attempts. `body` is
    the JSON exactly as sent, so that its signature can be reproduced."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUSES = [(PENDING, _("Pending")), (SUCCEEDED, _("Succeeded")), (FAILED, _("Failed"))]

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    alert = models.ForeignKey(
        "billing.Alert",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("alert"),
    )
    event_type = models.CharField(max_length=100, verbose_name=_("event type"))
    # The event's id in the body: the same for every endpoint and every attempt.
    event_id = models.CharField(max_length=100, verbose_name=_("event id"))
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
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhook_event_once")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="webhook_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} to {self.endpoint_id} ({self.status})"

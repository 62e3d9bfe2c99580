"""VatCheck: one answer of a VAT number service (VIES) about a customer's or a
billing entity's VAT number, kept as given. Append-only: a later check is a new
row, so the consultation id a tax auditor asks for stays with the answer it proved.
Its foreign keys name their models by string: customers.models imports this module."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class VatCheck(models.Model):
    """A VAT number as a checker (customers.vat_checks) answered about it: valid,
    invalid, or None when the service could not answer (`error` says why)."""

    VIES = "vies"
    FAKE = "fake"
    CHECKERS = [(VIES, "VIES"), (FAKE, _("fake (tests)"))]

    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="vat_checks",
        verbose_name=_("customer"),
    )
    billing_entity = models.ForeignKey(
        "customers.BillingEntity",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="vat_checks",
        verbose_name=_("billing entity"),
    )
    vat_id = models.CharField(max_length=64, verbose_name=_("VAT number"))
    # None: the service could not answer (unavailable, timed out); `error` says why.
    valid = models.BooleanField(null=True, verbose_name=_("valid"))
    name = models.TextField(blank=True, verbose_name=_("name"))
    address = models.TextField(blank=True, verbose_name=_("address"))
    # VIES's requestIdentifier: the proof of the consultation.
    consultation_id = models.CharField(max_length=64, blank=True, verbose_name=_("consultation id"))
    requester_vat_id = models.CharField(
        max_length=64, blank=True, verbose_name=_("requester VAT number")
    )
    checker = models.CharField(max_length=16, choices=CHECKERS, verbose_name=_("checker"))
    checked_at = models.DateTimeField(verbose_name=_("checked at"))
    error = models.TextField(blank=True, verbose_name=_("error"))

    class Meta:
        verbose_name = _("VAT number check")
        verbose_name_plural = _("VAT number checks")
        ordering = ["-checked_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(customer__isnull=False, billing_entity__isnull=True)
                | models.Q(customer__isnull=True, billing_entity__isnull=False),
                name="vat_check_customer_or_billing_entity",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-checked_at"], name="vat_check_customer"),
            models.Index(fields=["billing_entity", "-checked_at"], name="vat_check_entity"),
        ]

    def __str__(self) -> str:
        return f"{self.vat_id} {self.checked_at:%Y-%m-%d %H:%M} {self.outcome}"

    @property
    def outcome(self) -> str:
        """'valid', 'invalid' or 'unavailable' (the service gave no answer)."""
        return {True: "valid", False: "invalid", None: "unavailable"}[self.valid]

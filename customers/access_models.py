"""Who may reach a customer's billing from outside: the REST API's keys and the
portal links the merchant issued. Their foreign keys name their models by string:
customers.models imports this module."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from common.history import audit_history


class ApiKey(models.Model):
    """A secret for the REST API. Only a SHA-256 digest of the secret is stored."""

    # Each scope grants its own calls and no other's (customers.auth): `read` the
    # reads but finance's, `finance:read` margins, cost rates and the journal,
    # `admin` the writes but ingestion, `events:write` ingestion (and check).
    SCOPE_EVENTS_WRITE = "events:write"
    SCOPE_READ = "read"
    SCOPE_FINANCE_READ = "finance:read"
    SCOPE_ADMIN = "admin"
    SCOPES = (SCOPE_EVENTS_WRITE, SCOPE_READ, SCOPE_FINANCE_READ, SCOPE_ADMIN)

    name = models.CharField(max_length=100, verbose_name=_("name"))
    prefix = models.CharField(
        max_length=16,
        editable=False,
        help_text=_("Shown to tell keys apart."),
        verbose_name=_("prefix"),
    )
    secret_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("secret hash")
    )
    scopes = models.JSONField(
        default=list,
        help_text=_("Subset of events:write, read, finance:read, admin."),
        verbose_name=_("scopes"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    history = audit_history()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PortalLink(models.Model):
    """A portal link the merchant issued and can revoke (customers.portal_links):
    its signed token carries the row's id, and opens the portal only while the
    row is neither revoked nor expired. A `manage` link may change the limits the
    customer sets (customers.limits) in the portal, recorded under its holder's
    name as the merchant gave it; any other reads only."""

    HOLDER_MAX_LENGTH = 100

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="portal_links",
        verbose_name=_("customer"),
    )
    holder = models.CharField(
        max_length=HOLDER_MAX_LENGTH,
        blank=True,
        help_text=_("Who the link is for, as its changes are signed: “Jane (CTO)”."),
        verbose_name=_("holder"),
    )
    manage = models.BooleanField(
        default=False,
        help_text=_("Whether the link may change the limits the customer sets."),
        verbose_name=_("may manage limits"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    # The API key's name or the admin user that issued it.
    created_by = models.CharField(max_length=255, blank=True, verbose_name=_("created by"))

    class Meta:
        verbose_name = _("portal link")
        verbose_name_plural = _("portal links")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="portal_link_customer")]

    def __str__(self) -> str:
        return f"{self.customer_id} #{self.pk} {self.holder}"

    def works_at(self, now) -> bool:
        """Whether the link opens the portal at `now`: not revoked, not expired."""
        return self.revoked_at is None and now < self.expires_at

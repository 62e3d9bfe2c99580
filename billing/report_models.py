"""The margins report's place in the admin: a proxy of no table of its own,
listed under Billing, with the one permission to read the report."""

from django.utils.translation import gettext_lazy as _

from customers.models import Customer


class MarginReport(Customer):
    """Not a record: the admin's margins page (billing.admin.margins) hangs here."""

    class Meta:
        proxy = True
        app_label = "billing"
        verbose_name = _("Margins")
        verbose_name_plural = _("Margins")
        default_permissions = ()
        permissions = [("view_margins", "Can view the margins report")]

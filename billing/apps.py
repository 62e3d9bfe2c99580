from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        # Invoices sit below billing: what voiding a threshold invoice must check
        # (that its usage can still be billed again) is registered with
        # invoices.reactions here.
        from billing.invoicing.progressive import threshold_void_check, threshold_void_lock
        from invoices.models import Invoice
        from invoices.reactions import VOID_CHECKS, VoidCheck

        VOID_CHECKS[Invoice.THRESHOLD] = VoidCheck(
            lock=threshold_void_lock, check=threshold_void_check
        )

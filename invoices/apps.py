from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InvoicesConfig(AppConfig):
    name = "invoices"
    verbose_name = _("Invoices")

    def ready(self):
        # The system check that the e-invoices' official rule files are the pinned ones.
        # Customers sit below invoices: with Stripe, the Stripe customer gets a
        # customer's new details after commit, through customers.reactions.
        from customers.reactions import CUSTOMER_CHANGED
        from invoices.e_invoices import rule_sets  # noqa: F401
        from invoices.stripe_customers import customer_sync_schedule

        if customer_sync_schedule not in CUSTOMER_CHANGED:
            CUSTOMER_CHANGED.append(customer_sync_schedule)

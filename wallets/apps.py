from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = _("Wallets")

    def ready(self):
        # Invoices sit below wallets (wallets sell through invoices): what a paid
        # purchase grants, and what a credit note on its invoice (a void's too)
        # takes back, are registered with invoices.reactions here.
        from invoices.models import Invoice
        from invoices.reactions import PURCHASE_PAID, TAKE_BACKS, PurchasePaid, TakeBack
        from wallets.purchases import purchase_fulfil
        from wallets.take_back import take_back_lock, take_back_plan, take_back_write

        take_back = TakeBack(lock=take_back_lock, plan=take_back_plan, write=take_back_write)
        # A purchase sold credits or money; a prepaid commit, its access blocks.
        TAKE_BACKS[Invoice.PURCHASE] = TAKE_BACKS[Invoice.COMMIT] = take_back
        PURCHASE_PAID[:] = [PurchasePaid(fulfil=purchase_fulfil)]

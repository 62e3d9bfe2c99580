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
        from wallets.commit_take_back import (
            commit_take_back_lock,
            commit_take_back_plan,
            commit_take_back_write,
        )
        from wallets.purchases import purchase_fulfil
        from wallets.take_back import (
            purchase_take_back_lock,
            purchase_take_back_plan,
            purchase_take_back_write,
        )

        TAKE_BACKS[Invoice.PURCHASE] = TakeBack(
            lock=purchase_take_back_lock,
            plan=purchase_take_back_plan,
            write=purchase_take_back_write,
        )
        TAKE_BACKS[Invoice.COMMIT] = TakeBack(
            lock=commit_take_back_lock,
            plan=commit_take_back_plan,
            write=commit_take_back_write,
        )
        PURCHASE_PAID[:] = [PurchasePaid(fulfil=purchase_fulfil)]

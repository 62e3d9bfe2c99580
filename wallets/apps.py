from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"

    def ready(self):
        # Invoices sit below wallets (wallets sell through invoices): what a paid
        # purchase grants, and what voiding its invoice takes back, are registered
        # with invoices.reactions here.
        from invoices.models import Invoice
        from invoices.reactions import PURCHASE_PAID, VOID_TAKE_BACKS, PurchasePaid, VoidTakeBack
        from wallets.purchases import purchase_fulfil, purchase_void_lock, purchase_void_take_back

        VOID_TAKE_BACKS[Invoice.PURCHASE] = VoidTakeBack(
            lock=purchase_void_lock, take_back=purchase_void_take_back
        )
        PURCHASE_PAID[:] = [PurchasePaid(fulfil=purchase_fulfil)]

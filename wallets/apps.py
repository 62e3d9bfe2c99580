from django.apps import AppConfig


class WalletsConfig(AppConfig):
    name = "wallets"

    def ready(self):
        # Invoices cannot import wallets (wallets import invoices): voiding a
        # purchase invoice takes back what it sold through this registration.
        from invoices.models import Invoice
        from invoices.services import VOID_TAKE_BACKS, VoidTakeBack
        from wallets.services import purchase_void_lock, purchase_void_take_back

        VOID_TAKE_BACKS[Invoice.PURCHASE] = VoidTakeBack(
            lock=purchase_void_lock, take_back=purchase_void_take_back
        )

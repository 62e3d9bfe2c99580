"""Row locks on wallets, in one place. Every change of a balance holds its wallet's
lock; several wallets are always locked in id order, so two transactions never
wait on each other in a cycle. A wallet's lock is its row's alone: the customer
it joins is read, not locked (billing.locks: a customer's row is never held FOR
UPDATE)."""

from invoices.models import Purchase
from wallets.models import Wallet


def wallet_lock(wallet: Wallet) -> Wallet:
    """Lock one wallet and return it fresh from the database, with its customer
    (not locked: a sale holding its customer FOR UPDATE while it waited for an
    invoice number deadlocked with a close's finalization, which holds the
    number as it commits and so takes a key share of each customer it invoiced)."""
    return (
        Wallet.objects.select_for_update(of=("self",)).select_related("customer").get(pk=wallet.pk)
    )


def wallets_lock(*, keys: set[tuple[int, str, str]]) -> dict[tuple[int, str, str], Wallet]:
    """Lock the wallets of (customer id, kind, currency) keys, in id order."""
    customer_ids = {customer_id for customer_id, _, _ in keys}
    wallets = Wallet.objects.select_for_update().filter(customer_id__in=customer_ids)
    wallets = wallets.exclude(kind=Wallet.COMMIT).order_by("pk")
    return {
        key: wallet
        for wallet in wallets
        if (key := (wallet.customer_id, wallet.kind, wallet.currency)) in keys
    }


def purchase_lock(purchase_id: int) -> Purchase:
    """Lock one purchase (not the rows it joins) and return it fresh."""
    return (
        Purchase.objects.select_for_update(of=("self",))
        .select_related("pack", "customer", "block")
        .get(pk=purchase_id)
    )

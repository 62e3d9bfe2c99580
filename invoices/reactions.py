"""What other apps do when something happens to an invoice or a payment here.

Invoices sit below the apps that sell through them (wallets imports invoices),
so a reaction is registered here, in one place, by the reacting app in its
AppConfig.ready; it is never an import from here upward, and never a signal."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VoidTakeBack:
    """How voiding an invoice of one reason takes back what the invoice granted,
    registered by the app that granted it (wallets, for purchases: it imports this
    module, so it registers in its AppConfig.ready).

    `lock(invoice=)` runs first in the void's transaction, before the invoice's row
    lock, so the locks come in the order the sale took them (wallet, then
    invoice); it returns what it holds. `take_back(invoice=, held=, now=)` runs
    once the invoice is found voidable, before the void is written, and raises
    Conflict to refuse it."""

    lock: Callable[..., Any]
    take_back: Callable[..., None]


# Invoice reason -> how a void of it takes back what it sold.
VOID_TAKE_BACKS: dict[str, VoidTakeBack] = {}


@dataclass(frozen=True)
class PurchasePaid:
    """What a paid purchase grants, registered by the app that sold it (wallets):
    `fulfil(purchase=, reference=, now=)` runs in the transaction that records the
    payment, under the payment's row lock, and is idempotent."""

    fulfil: Callable[..., Any]


# The one fulfilment of a paid purchase (wallets.apps sets it).
PURCHASE_PAID: list[PurchasePaid] = []


def purchase_paid(*, purchase, reference: str, now) -> None:
    """Grant what a paid purchase bought, through the registered fulfilment."""
    if not PURCHASE_PAID:
        raise RuntimeError("no purchase fulfilment registered (wallets.apps)")
    PURCHASE_PAID[0].fulfil(purchase=purchase, reference=reference, now=now)

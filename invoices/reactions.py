"""What other apps do when something happens to an invoice or a payment here.

Invoices sit below the apps that sell through them (wallets imports invoices),
so a reaction is registered here, in one place, by the reacting app in its
AppConfig.ready; it is never an import from here upward, and never a signal."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TakeBack:
    """What a credit note on an invoice of one reason takes back of what the
    invoice sold, registered by the app that sold it (wallets, for purchases: it
    imports this module, so it registers in its AppConfig.ready). Every credit
    note goes through it, the one a void issues for all that is left included.

    `lock(invoice=)` runs first in the note's transaction, before the invoice's
    row lock, so the locks come in the order the sale took them (wallet, then
    invoice); it returns what it holds. `plan(invoice=, credited_before=,
    credited_after=)` reads only: what a note that takes the invoice's credited
    amount (before tax) from `credited_before` to `credited_after` takes back, a
    list whose items say in words what they take (str()); it raises Conflict,
    with the numbers, when that is no longer there (used, expired). It runs for
    previews too, without the locks. `write(parts=, held=, note=, now=)` takes
    the parts back, in the note's transaction, once the note is written."""

    lock: Callable[..., Any]
    plan: Callable[..., list]
    write: Callable[..., None]


# Invoice reason -> what a credit note on it (a void's too) takes back.
TAKE_BACKS: dict[str, TakeBack] = {}


@dataclass(frozen=True)
class VoidCheck:
    """What voiding an invoice of one reason must check first, registered by the
    app that wrote it (billing, for threshold invoices). `lock(invoice=)` runs
    before the invoice's row lock and returns what it holds; `check(invoice=,
    held=, now=)` runs once the invoice is found voidable and raises Conflict to
    refuse the void."""

    lock: Callable[..., Any]
    check: Callable[..., None]


# Invoice reason -> what a void of it checks first.
VOID_CHECKS: dict[str, VoidCheck] = {}


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

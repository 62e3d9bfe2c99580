"""What other apps do when a customer's details change.

Customers sit below the apps that keep a copy of those details (invoices keeps
the Stripe customer), so a reaction is registered here by the reacting app in
its AppConfig.ready, never imported from here upward."""

from collections.abc import Callable

# Each is called with the customer inside the transaction that changed it.
CUSTOMER_CHANGED: list[Callable[..., None]] = []


def customer_changed(*, customer) -> None:
    for reaction in CUSTOMER_CHANGED:
        reaction(customer=customer)

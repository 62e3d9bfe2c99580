"""Row locks on customers, in one place. A customer's lock comes first, before its
subscription's, its invoices', its wallets' and a numbering sequence's: the one
order is billing.locks'. The tax rates it is given are locked before it
(plans.locks).

The lock is FOR NO KEY UPDATE: it excludes every other holder of the lock (and a
change of the customer's row), not the key share a transaction takes to write a row
that refers to the customer (an invoice, a wallet's entry). Every row the lock
guards (credit balance entries, commits, the standing) is written under it, so
waiting for such a share guarded nothing; and a close, whose invoices take their
customers' shares as it commits, in the order it wrote them, deadlocked with a
finalization that locked the same customers in id order (issue 48). An archived
tax rate's holders are locked the same way (plans.tax_rates)."""

from customers.models import Customer


def customer_lock(customer_id: int) -> Customer:
    """Lock one customer and return it fresh from the database."""
    return Customer.objects.select_for_update(no_key=True).get(pk=customer_id)


def customer_lock_by_external_id(external_id: str) -> int | None:
    """Lock the customer of this external id (the lock customer_lock takes) as its
    id is read, in one statement; its id, or None for none."""
    locked = Customer.objects.select_for_update(no_key=True).filter(external_id=external_id)
    return locked.values_list("pk", flat=True).first()


def customers_lock(customer_ids) -> None:
    """Lock these customers, in id order, in one statement."""
    ids = sorted(set(customer_ids))
    if ids:
        list(
            Customer.objects.select_for_update(no_key=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .only("pk")
        )

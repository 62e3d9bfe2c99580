"""Row locks on customers, in one place. A customer's lock comes first, before its
subscription's, its invoices', its wallets' and a numbering sequence's: the one
order is billing.locks'. The tax rates it is given are locked before it
(plans.locks)."""

from customers.models import Customer


def customer_lock(customer_id: int) -> Customer:
    """Lock one customer and return it fresh from the database."""
    return Customer.objects.select_for_update().get(pk=customer_id)


def customers_lock(customer_ids) -> None:
    """Lock these customers, in id order, in one statement."""
    ids = sorted(set(customer_ids))
    if ids:
        list(Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk").only("pk"))

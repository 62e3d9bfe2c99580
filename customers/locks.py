"""Row locks on customers, in one place. A customer's lock comes first in any
transaction that takes several (then its subscription: billing.locks)."""

from customers.models import Customer


def customer_lock(customer_id: int) -> Customer:
    """Lock one customer and return it fresh from the database."""
    return Customer.objects.select_for_update().get(pk=customer_id)

"""Row locks on customers, in one place. A customer's lock comes before its
subscription's (billing.locks) and its wallets'; an invoice's lock comes before its
customer's (the credit balance: invoices.credit_balance), and the tax rates it is
given before it (plans.locks)."""

from customers.models import Customer


def customer_lock(customer_id: int) -> Customer:
    """Lock one customer and return it fresh from the database."""
    return Customer.objects.select_for_update().get(pk=customer_id)

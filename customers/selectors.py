"""Reads of customers the API's customer-scoped endpoints share."""

from billing.core.errors import CustomerNotFound
from customers.models import Customer


def customer_get(*, external_id: str) -> Customer:
    """The customer with this external_id; CustomerNotFound (a 404 naming it) when
    there is none."""
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(external_id)
    return customer

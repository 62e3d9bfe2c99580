"""Reads for customers."""

from customers.models import Customer


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.filter(external_id=external_id).first()

"""Reads of customers the API's customer-scoped endpoints share."""

from common.errors import CustomerNotFound
from customers.models import Customer, VatCheck


def customer_get(*, external_id: str) -> Customer:
    """The customer with this external_id; CustomerNotFound (a 404 naming it) when
    there is none."""
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise CustomerNotFound(external_id)
    return customer


def vat_checks_newest_first(*, customer=None, billing_entity=None):
    """The VAT number checks of a customer or of a billing entity, newest first."""
    holder = {"customer": customer} if customer is not None else {"billing_entity": billing_entity}
    return VatCheck.objects.filter(**holder).order_by("-checked_at", "-id")


def vat_check_latest(*, customer=None, billing_entity=None) -> VatCheck | None:
    """The latest VAT number check of a customer or of a billing entity, or None."""
    return vat_checks_newest_first(customer=customer, billing_entity=billing_entity).first()

"""Links that open one invoice's payment page (invoices.views.pay_page): sent in
dunning reminders and offered by the portal. Signed with SECRET_KEY (its own
salt) and carrying the invoice's id and an expiry (BILLING_PAY_LINK_DAYS);
nothing is stored. The page shows the invoice, what is due and how to pay it:
Stripe Checkout when Stripe is configured, the seller's bank details otherwise."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "invoices.pay"
MAX_TOKEN_LENGTH = 300


class PayLinkInvalid(Exception):
    """Tampered with, expired, or not a pay link at all."""


def pay_token(*, invoice_id: int, now: datetime) -> str:
    expires = int((now + timedelta(days=settings.BILLING_PAY_LINK_DAYS)).timestamp())
    return signing.dumps({"i": invoice_id, "exp": expires}, salt=SALT, compress=True)


def pay_path(*, invoice_id: int, now: datetime) -> str:
    return reverse("invoice-pay", args=[pay_token(invoice_id=invoice_id, now=now)])


def pay_url(*, invoice_id: int, now: datetime) -> str:
    """The link a reminder email carries, on BILLING_PUBLIC_URL."""
    return settings.BILLING_PUBLIC_URL + pay_path(invoice_id=invoice_id, now=now)


def pay_token_invoice_id(*, token: str, now: datetime) -> int:
    """The invoice a pay link opens. Raises PayLinkInvalid."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise PayLinkInvalid
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise PayLinkInvalid from exc
    invoice_id, expires = payload.get("i"), payload.get("exp")
    if not isinstance(invoice_id, int) or not isinstance(expires, int):
        raise PayLinkInvalid
    if now.timestamp() > expires:
        raise PayLinkInvalid
    return invoice_id

"""Signed, expiring links to a customer's portal. The token carries the customer's
id and the expiry time, signed with SECRET_KEY (django.core.signing, its own salt);
nothing is stored, so a link cannot be revoked before it expires: keep the time
to live short (BILLING_PORTAL_TTL_SECONDS, default one hour; an email's link
BILLING_PORTAL_EMAIL_LINK_DAYS). Imports no billing module: documents' emails
make links too."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "customers.portal"


class PortalTokenInvalid(Exception):
    """Tampered with, or not a portal token at all."""


class PortalTokenExpired(Exception):
    """Genuine, but past its expiry."""


@dataclass(frozen=True)
class PortalSession:
    token: str
    expires_at: datetime


def portal_session_create(
    *, customer, now: datetime, lasting: timedelta | None = None
) -> PortalSession:
    """A link's token, working for `lasting` (BILLING_PORTAL_TTL_SECONDS by default)."""
    if lasting is None:
        lasting = timedelta(seconds=settings.BILLING_PORTAL_TTL_SECONDS)
    expires_at = (now + lasting).replace(microsecond=0)
    token = signing.dumps(
        {"c": customer.pk, "exp": int(expires_at.timestamp())}, salt=SALT, compress=True
    )
    return PortalSession(token=token, expires_at=expires_at)


def portal_email_url(*, customer, now: datetime) -> str:
    """The portal link an invoice email carries, on BILLING_PUBLIC_URL: read days
    after it is sent, it works for BILLING_PORTAL_EMAIL_LINK_DAYS (as a
    reminder's pay link does for its own setting)."""
    session = portal_session_create(
        customer=customer,
        now=now,
        lasting=timedelta(days=settings.BILLING_PORTAL_EMAIL_LINK_DAYS),
    )
    return settings.BILLING_PUBLIC_URL + reverse("portal", args=[session.token])


def portal_customer_id(*, token: str, now: datetime) -> int:
    """The customer a token opens. Raises PortalTokenInvalid or PortalTokenExpired."""
    if len(token) > 500:
        raise PortalTokenInvalid
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise PortalTokenInvalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), int):
        raise PortalTokenInvalid
    expiry = payload.get("exp")
    if not isinstance(expiry, int) or now >= datetime.fromtimestamp(expiry, UTC):
        raise PortalTokenExpired
    return payload["c"]

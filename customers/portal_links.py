"""Signed, expiring links to a customer's portal. The token carries the customer's
id and the expiry time, signed with SECRET_KEY (django.core.signing, its own salt).

Two kinds of links:
- a session (portal_session_create): nothing is stored, so it cannot be revoked
  before it expires: keep the time to live short (BILLING_PORTAL_TTL_SECONDS,
  default one hour; an email's link BILLING_PORTAL_EMAIL_LINK_DAYS). It reads only.
- a stored link (portal_link_create, a PortalLink row): its token also carries
  the row's id, and it opens the portal only while the row exists, is not revoked
  and not expired (portal_access). It may manage the limits the customer sets.

Imports no billing module but the core: documents' emails make links too."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from common.errors import InvalidRequest
from customers.models import Customer, PortalLink

SALT = "customers.portal"


class PortalTokenInvalid(Exception):
    """Tampered with, or not a portal token at all."""


class PortalTokenExpired(Exception):
    """Genuine, but past its expiry."""


class PortalLinkRevoked(Exception):
    """A stored link's genuine token, but the merchant revoked the link (or it is
    gone). Names the customer the token was for (its refusal is in its language)."""

    def __init__(self, customer_id: int):
        super().__init__(customer_id)
        self.customer_id = customer_id


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
    if "l" in payload and not isinstance(payload["l"], int):
        raise PortalTokenInvalid
    expiry = payload.get("exp")
    if not isinstance(expiry, int) or now >= datetime.fromtimestamp(expiry, UTC):
        raise PortalTokenExpired
    return payload["c"]


def _payload(token: str) -> dict:
    return signing.loads(token, salt=SALT)


# A stored link lasts this many days unless told (API.md: 1 to 90).
LINK_DAYS_DEFAULT = 7
LINK_DAYS_MOST = 90


@dataclass(frozen=True)
class PortalAccess:
    """What a token opens: the customer, and the stored link it is (None for a
    session, which reads only)."""

    customer_id: int
    link: PortalLink | None = None

    @property
    def manage(self) -> bool:
        """Whether it may change the limits the customer sets."""
        return self.link is not None and self.link.manage

    @property
    def holder(self) -> str:
        return self.link.holder if self.link is not None else ""


def portal_access(*, token: str, now: datetime) -> PortalAccess:
    """What `token` opens at `now`. Raises PortalTokenInvalid (tampered with, or a
    stored link of another customer), PortalTokenExpired, or PortalLinkRevoked (a
    stored link revoked or deleted). A session's token is read as before."""
    customer_id = portal_customer_id(token=token, now=now)
    link_id = _payload(token).get("l")
    if link_id is None:
        return PortalAccess(customer_id)
    link = PortalLink.objects.filter(pk=link_id).first()
    if link is None or link.revoked_at is not None:
        raise PortalLinkRevoked(customer_id)
    if link.customer_id != customer_id:
        raise PortalTokenInvalid
    if now >= link.expires_at:
        raise PortalTokenExpired
    return PortalAccess(customer_id, link)


def portal_link_token(link: PortalLink) -> str:
    """The token of a stored link (the same each time it is asked)."""
    return signing.dumps(
        {"c": link.customer_id, "l": link.pk, "exp": int(link.expires_at.timestamp())},
        salt=SALT,
        compress=True,
    )


def _days(value: object) -> int:
    if value is None:
        return LINK_DAYS_DEFAULT
    if isinstance(value, bool) or not isinstance(value, int | str):
        value = None
    elif isinstance(value, str):
        value = int(value) if value.strip().isdigit() and len(value) <= 3 else None
    if value is None or not 1 <= value <= LINK_DAYS_MOST:
        message = _("must be a whole number of days from 1 to {most}").format(most=LINK_DAYS_MOST)
        raise InvalidRequest(f"expires_in_days: {message}", fields={"expires_in_days": [message]})
    return value


def portal_link_create(
    *,
    customer: Customer,
    manage: bool,
    holder: str,
    expires_in_days: object,
    created_by: str,
    now: datetime,
) -> tuple[PortalLink, str]:
    """A stored portal link and its token, working `expires_in_days` days (1 to
    90, default 7) until revoked. A manage link names its holder (required, at
    most 100 characters), whose name its changes are recorded under. Raises
    InvalidRequest naming the field; nothing is stored then."""
    holder = holder.strip() if isinstance(holder, str) else holder
    fields: dict[str, list[str]] = {}
    if not isinstance(holder, str):
        fields["holder"] = [_("must be a text")]
    elif len(holder) > PortalLink.HOLDER_MAX_LENGTH:
        fields["holder"] = [
            _("must be at most {most} characters").format(most=PortalLink.HOLDER_MAX_LENGTH)
        ]
    elif manage and not holder:
        fields["holder"] = [_("required for a link that manages limits: who it is for")]
    try:
        days = _days(expires_in_days)
    except InvalidRequest as refused:
        fields.update(refused.fields)
        days = None
    if fields:
        path, messages = next(iter(fields.items()))
        raise InvalidRequest(f"{path}: {messages[0]}", fields=fields)
    created_at = now.replace(microsecond=0)
    with transaction.atomic():
        link = PortalLink.objects.create(
            customer=customer,
            holder=holder,
            manage=bool(manage),
            created_at=created_at,
            expires_at=created_at + timedelta(days=days),
            created_by=created_by[:255],
        )
    return link, portal_link_token(link)


def portal_link_revoke(*, link: PortalLink, now: datetime) -> PortalLink:
    """Revoke the link: its token no longer opens the portal. Idempotent (a
    revoked link keeps the time it was first revoked)."""
    PortalLink.objects.filter(pk=link.pk, revoked_at=None).update(revoked_at=now)
    link.refresh_from_db(fields=["revoked_at"])
    return link

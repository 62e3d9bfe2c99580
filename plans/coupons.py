"""Writes to the coupon catalog. A coupon's terms never change once created:
a customer redeemed it on them; it is archived (`active` off) instead, and only
its name and `active` change. Redeeming one is billing.subscriptions.discounts'."""

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from common.errors import Conflict, InvalidRequest
from plans.coupon_validation import NAME_MAX_LENGTH, validate_coupon
from plans.locks import coupon_lock
from plans.models import Coupon


def coupon_create(
    *,
    code: str,
    name: str,
    percent_off: Decimal | None = None,
    amount_off: Decimal | None = None,
    currency: str | None = None,
    duration: str,
    duration_periods: int | None = None,
    max_redemptions: int | None = None,
    redeem_by: datetime | None = None,
    active: bool = True,
) -> Coupon:
    """Create a coupon; 400 (nothing written) for terms that break the rules,
    409 for a code taken."""
    terms = {
        "code": code,
        "name": name,
        "percent_off": percent_off,
        "amount_off": amount_off,
        "currency": currency or "",
        "duration": duration,
        "duration_periods": duration_periods,
        "max_redemptions": max_redemptions,
        "redeem_by": redeem_by,
    }
    validate_coupon(**terms)
    terms["name"] = name.strip()
    try:
        with transaction.atomic():
            return Coupon.objects.create(**terms, active=active)
    except IntegrityError as exc:
        raise Conflict(
            f"a coupon with code {code!r} already exists", fields={"code": ["already exists"]}
        ) from exc


COUPON_MUTABLE = ("name", "active")


def coupon_update(*, coupon: Coupon, **changes) -> Coupon:
    """Rename, archive (active false) or reactivate a coupon, under its row lock.
    Its terms are frozen: 400 for any other field. Archiving stops new
    redemptions only; discounts already given run their course."""
    unknown = set(changes) - set(COUPON_MUTABLE)
    if unknown:
        raise InvalidRequest(
            f"a coupon's terms never change; only {' and '.join(COUPON_MUTABLE)} can",
            fields={
                name: ["cannot change; archive the coupon and create another"] for name in unknown
            },
        )
    with transaction.atomic():
        coupon = coupon_lock(coupon.pk)
        if "name" in changes:
            coupon.name = _checked_name(changes["name"])
        if "active" in changes:
            coupon.active = bool(changes["active"])
        coupon.save(update_fields=["name", "active"])
    return coupon


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        message = "must not be empty"
    elif len(name.strip()) > NAME_MAX_LENGTH:
        message = f"must be at most {NAME_MAX_LENGTH} characters"
    else:
        return name.strip()
    raise InvalidRequest(f"invalid coupon: name: {message}", fields={"name": [message]})

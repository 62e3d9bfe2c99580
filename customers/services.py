"""Writes for customers and API keys."""

import hashlib
import secrets
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.core.errors import Conflict, InvalidRequest
from customers.models import ApiKey, Customer, alert_threshold_errors
from invoices.payments import customer_sync_schedule
from plans.validation import validate_customer

SECRET_PREFIX = "sk_"


def validate_alert_settings(*, alert_thresholds: object, spend_limit_mode: object) -> None:
    fields = {}
    if errors := alert_threshold_errors(alert_thresholds):
        fields["alert_thresholds"] = errors
    modes = [mode for mode, _ in Customer.SPEND_LIMIT_MODES]
    if spend_limit_mode not in modes:
        fields["spend_limit_mode"] = [f"must be one of {', '.join(modes)}"]
    if fields:
        raise InvalidRequest("invalid customer", fields=fields)


def _as_json_numbers(percentages: list) -> list:
    # A JSONField cannot hold a Decimal: whole numbers are stored as ints.
    return [
        (int(p) if p == p.to_integral_value() else float(p)) if isinstance(p, Decimal) else p
        for p in percentages
    ]


def customer_create(
    *,
    external_id: str,
    name: str,
    currency: str,
    email: str = "",
    timezone_name: str = "UTC",
    address: dict | None = None,
    tax_id: str | None = None,
    spend_limit: Decimal | None = None,
    spend_limit_mode: str = Customer.SPEND_LIMIT_HARD,
    alert_thresholds: list | None = None,
) -> Customer:
    address = {} if address is None else address
    alert_thresholds = [] if alert_thresholds is None else alert_thresholds
    validate_customer(
        external_id=external_id,
        currency=currency,
        timezone=timezone_name,
        spend_limit=spend_limit,
        address=address,
    )
    validate_alert_settings(alert_thresholds=alert_thresholds, spend_limit_mode=spend_limit_mode)
    try:
        with transaction.atomic():
            return Customer.objects.create(
                external_id=external_id,
                name=name,
                email=email,
                currency=currency,
                timezone=timezone_name,
                address=address,
                tax_id=tax_id or "",
                spend_limit=spend_limit,
                spend_limit_mode=spend_limit_mode,
                alert_thresholds=_as_json_numbers(alert_thresholds),
            )
    except IntegrityError as exc:
        raise Conflict(
            f"a customer with external_id {external_id!r} already exists",
            fields={"external_id": ["already exists"]},
        ) from exc


def customer_update(*, customer: Customer, **changes) -> Customer:
    """Change a customer's details. Its currency is fixed once set: wallets,
    subscriptions and invoices are in it."""
    if "currency" in changes and changes["currency"] != customer.currency:
        raise InvalidRequest(
            "a customer's currency cannot change", fields={"currency": ["cannot change"]}
        )
    fields = (
        "name",
        "email",
        "timezone",
        "address",
        "tax_id",
        "spend_limit",
        "spend_limit_mode",
        "alert_thresholds",
    )
    unknown = set(changes) - set(fields) - {"currency"}
    if unknown:
        raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
    values = {f: getattr(customer, f) for f in fields} | changes
    validate_customer(
        external_id=customer.external_id,
        currency=customer.currency,
        timezone=values["timezone"],
        spend_limit=values["spend_limit"],
        address=values["address"],
    )
    validate_alert_settings(
        alert_thresholds=values["alert_thresholds"], spend_limit_mode=values["spend_limit_mode"]
    )
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        values["tax_id"] = values["tax_id"] or ""
        values["alert_thresholds"] = _as_json_numbers(values["alert_thresholds"])
        for name in fields:
            setattr(customer, name, values[name])
        customer.save()
        # With Stripe: the Stripe customer gets the new details after commit.
        customer_sync_schedule(customer=customer)
    return customer


def hash_secret(secret: str) -> str:
    # The secret carries 256 random bits, so a fast digest is safe and keeps
    # authentication one indexed lookup on the hot path.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, name: str, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret; the secret is not stored and
    cannot be shown again. No scopes given means every scope."""
    scopes = list(ApiKey.SCOPES) if not scopes else list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in ApiKey.SCOPES]
    if unknown:
        raise InvalidRequest(
            f"unknown scope {unknown[0]!r}; scopes are {', '.join(ApiKey.SCOPES)}",
            fields={"scopes": [f"unknown scope {s!r}" for s in unknown]},
        )
    if not name or not name.strip():
        raise InvalidRequest("an API key needs a name", fields={"name": ["must not be blank"]})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name, prefix=secret[:10], secret_hash=hash_secret(secret), scopes=scopes
    )
    return key, secret


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke a key. This process refuses it at once; others within
    customers.selectors.KEY_CACHE_SECONDS."""
    from customers.selectors import api_key_cache_clear

    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    api_key_cache_clear()
    return key

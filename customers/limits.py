"""The limits a customer sets itself (API.md "Customer limits"): a budget per
period in its currency (`stop` refuses usage that would pass it, `alert` only
warns), caps per meter or per rate-card value (an amount or a quantity), alert
thresholds in percent of the budget, and the channels the alerts go to (email
addresses; Slack, Microsoft Teams and Discord incoming webhooks).

They only tighten what the merchant allows: a budget above the customer's spend
limit is refused naming it. They belong to the customer, not to a subscription or
a wallet, so a plan change, a top-up or a credit purchase leaves them as they are.

One reading for every way in (the API's JSON, the portal's and the admin's
forms, which read typed amounts first and send canonical text): limits_normalized
checks a document and returns it as stored on Customer.limits; limits_set stores
it, records the change (CustomerLimitChange: who, through what, from what to what)
and has it e-mailed to the customer's billing contact. `check` enforces them
(billing.usage.customer_limits); billing.usage.alerts raises the thresholds."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from common import customer_text
from common.email_addresses import validate_email_address
from common.errors import InvalidRequest
from common.money import (
    DecimalRefused,
    currency_exponent,
    decimal_input,
    format_decimal,
    format_money,
    has_minor_unit_precision,
)
from common.task_sending import enqueue_on_commit
from common.webhook_targets import WebhookTargetRefused, webhook_target_resolve
from customers.locks import customer_lock
from customers.models import Customer, CustomerLimitChange
from plans.models import Meter

STOP = "stop"
ALERT = "alert"
ACTIONS = (STOP, ALERT)
EMAIL = "email"
SLACK = "slack"
TEAMS = "teams"
DISCORD = "discord"
CHANNEL_KINDS = (EMAIL, SLACK, TEAMS, DISCORD)
KEYS = ("budget", "caps", "alert_thresholds", "channels")

MAX_CAPS = 20
MAX_THRESHOLDS = 10
MAX_CHANNELS = 10
MAX_URL = 2000
MAX_CHANNEL_NAME = 100
MAX_VALUE = 255
# No budget or cap amount needs more; a larger one is a typo (or an attack).
MAX_AMOUNT = Decimal(10**12)
MAX_QUANTITY = Decimal(10**15)


@dataclass(frozen=True)
class Cap:
    """A cap on one meter's usage this period, of the events whose properties
    match `when` (all of them when empty): an `amount` in the customer's currency
    or a `quantity` in the meter's units (one of the two)."""

    meter: str
    when: tuple[tuple[str, str], ...]
    amount: Decimal | None
    quantity: Decimal | None

    def matches(self, values: dict) -> bool:
        """Whether usage with these group values counts against the cap."""
        return all(values.get(name) == value for name, value in self.when)


@dataclass(frozen=True)
class Limits:
    """Customer.limits as read (stored by limits_normalized, so trusted)."""

    budget: Decimal | None
    action: str
    caps: tuple[Cap, ...]
    thresholds: tuple[Decimal, ...]
    channels: tuple[dict, ...]

    @property
    def stops(self) -> bool:
        """Whether a budget refuses usage that would pass it."""
        return self.budget is not None and self.action == STOP

    @property
    def any(self) -> bool:
        return self.budget is not None or bool(self.caps)


NO_LIMITS = Limits(None, STOP, (), (), ())


def limits_stored(customer) -> dict:
    """The document of the limits a customer set, as Customer.limits stores it ({}
    when none). Whatever else a row may hold (the JSON string "{}" that migration
    0018 gave every customer before it, JSON null, an array) was never set by the
    customer: it reads as no limits, never as an error."""
    document = customer.limits
    return document if isinstance(document, dict) else {}


def limits_of(customer) -> Limits:
    """The limits a customer set, as stored on it (NO_LIMITS when none)."""
    document = limits_stored(customer)
    if not document:
        return NO_LIMITS
    budget = document.get("budget") or {}
    caps = tuple(
        Cap(
            meter=cap["meter"],
            when=tuple(sorted((cap.get("when") or {}).items())),
            amount=Decimal(cap["amount"]) if "amount" in cap else None,
            quantity=Decimal(cap["quantity"]) if "quantity" in cap else None,
        )
        for cap in document.get("caps") or ()
    )
    return Limits(
        budget=Decimal(budget["amount"]) if budget else None,
        action=budget.get("action", STOP),
        caps=caps,
        thresholds=tuple(Decimal(t) for t in document.get("alert_thresholds") or ()),
        channels=tuple(document.get("channels") or ()),
    )


class _Errors:
    """Field errors collected by path ("budget.amount", "caps.0.meter")."""

    def __init__(self):
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def raise_any(self) -> None:
        if self.fields:
            path, messages = next(iter(self.fields.items()))
            raise InvalidRequest(f"{path}: {messages[0]}", fields=self.fields)


def _number(value, path: str, errors: _Errors, *, most: Decimal) -> Decimal | None:
    try:
        number = decimal_input(value, negative=False)
    except DecimalRefused as refused:
        errors.add(path, str(refused))
        return None
    if number <= 0:
        errors.add(path, _("must be more than zero"))
        return None
    if number > most:
        errors.add(path, _("must be at most {most}").format(most=format_decimal(most)))
        return None
    return number


def _amount(value, path: str, errors: _Errors, currency: str) -> str | None:
    number = _number(value, path, errors, most=MAX_AMOUNT)
    if number is None:
        return None
    if not has_minor_unit_precision(number, currency):
        errors.add(
            path,
            _("{currency} amounts have at most {places} decimal places").format(
                currency=currency, places=currency_exponent(currency)
            ),
        )
        return None
    return format_money(number, currency)


def _budget(value, errors: _Errors, customer: Customer) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.add("budget", _('must be an object like {"amount": "300.00", "action": "stop"}'))
        return None
    for key in set(value) - {"amount", "action"}:
        errors.add(f"budget.{key}", _("unknown field"))
    action = value.get("action", STOP)
    if action not in ACTIONS:
        errors.add("budget.action", _("must be stop or alert"))
    if "amount" not in value:
        errors.add("budget.amount", _("required"))
        return None
    amount = _amount(value["amount"], "budget.amount", errors, customer.currency)
    if amount is None:
        return None
    if above := _above_spend_limit(Decimal(amount), customer):
        errors.add("budget.amount", above)
        return None
    return {"amount": amount, "action": action}


def _above_spend_limit(amount: Decimal, customer: Customer) -> str:
    """Why a budget of `amount` is refused by the merchant's spend limit ('' if not),
    the limit in the reader's convention (the portal's "500,00 USD" in French)."""
    if customer.spend_limit is None or amount <= customer.spend_limit:
        return ""
    return _("must be at most the spend limit your provider set, {limit}").format(
        limit=customer_text.money_text(customer.spend_limit, customer.currency)
    )


def _cap(value, path: str, errors: _Errors, customer: Customer, meters: dict) -> dict | None:
    if not isinstance(value, dict):
        errors.add(path, _('must be an object like {"meter": "llm_tokens", "amount": "50.00"}'))
        return None
    for key in set(value) - {"meter", "when", "amount", "quantity"}:
        errors.add(f"{path}.{key}", _("unknown field"))
    code = value.get("meter")
    meter = meters.get(code) if isinstance(code, str) else None
    if meter is None:
        shown = code if isinstance(code, str) and len(code) <= MAX_VALUE else "…"
        errors.add(f"{path}.meter", _("there is no meter {code!r}").format(code=shown))
        return None
    when = value.get("when") or {}
    if not isinstance(when, dict):
        errors.add(f"{path}.when", _('must be an object like {"model": "o3"}'))
        return None
    for name, wanted in when.items():
        if name not in meter.group_by:
            shown = name if len(name) <= MAX_VALUE else "…"
            errors.add(
                f"{path}.when",
                _("meter {meter} does not count usage by {name!r}").format(
                    meter=meter.code, name=shown
                ),
            )
        elif not isinstance(wanted, str) or not wanted or len(wanted) > MAX_VALUE:
            errors.add(
                f"{path}.when.{name}",
                _("must be a text of 1 to {most} characters").format(most=MAX_VALUE),
            )
    if ("amount" in value) == ("quantity" in value):
        errors.add(path, _("give an amount or a quantity (one of the two)"))
        return None
    cap = {"meter": meter.code, "when": {name: when[name] for name in sorted(when)}}
    if "amount" in value:
        amount = _amount(value["amount"], f"{path}.amount", errors, customer.currency)
        if amount is None:
            return None
        return {**cap, "amount": amount}
    quantity = _number(value["quantity"], f"{path}.quantity", errors, most=MAX_QUANTITY)
    if quantity is None:
        return None
    return {**cap, "quantity": format_decimal(quantity)}


def _thresholds(value, errors: _Errors) -> list[str]:
    if not isinstance(value, list):
        errors.add("alert_thresholds", _('must be a list of percentages, e.g. ["50", "80"]'))
        return []
    if len(value) > MAX_THRESHOLDS:
        errors.add("alert_thresholds", _("at most {most}").format(most=MAX_THRESHOLDS))
        return []
    found: list[Decimal] = []
    for index, item in enumerate(value):
        number = _number(item, f"alert_thresholds.{index}", errors, most=Decimal(100))
        if number is None:
            continue
        if number in found:
            errors.add(f"alert_thresholds.{index}", _("listed twice"))
        found.append(number)
    return [format_decimal(t) for t in sorted(set(found))]


def _channel(value, path: str, errors: _Errors) -> dict | None:
    if not isinstance(value, dict):
        errors.add(path, _('must be an object like {"kind": "email", "to": "ops@example.com"}'))
        return None
    kind = value.get("kind")
    if kind not in CHANNEL_KINDS:
        errors.add(f"{path}.kind", _("must be email, slack, teams or discord"))
        return None
    where = "to" if kind == EMAIL else "url"
    for key in set(value) - {"kind", where, "name"}:
        errors.add(f"{path}.{key}", _("unknown field"))
    channel = {"kind": kind}
    name = value.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_CHANNEL_NAME:
        errors.add(
            f"{path}.name", _("must be a text of at most {most} characters").format(most=100)
        )
        return None
    if name.strip():
        channel["name"] = name.strip()
    target = value.get(where)
    if not isinstance(target, str) or not target.strip():
        errors.add(f"{path}.{where}", _("required"))
        return None
    target = target.strip()
    if len(target) > MAX_URL:
        errors.add(
            f"{path}.{where}",
            _("must be a text of at most {most} characters").format(most=MAX_URL),
        )
        return None
    if kind == EMAIL:
        try:
            validate_email_address(target)
        except ValidationError:
            errors.add(f"{path}.to", _("is not an email address"))
            return None
        return {**channel, "to": target}
    try:
        webhook_target_resolve(url=target)
    except WebhookTargetRefused as refused:
        errors.add(f"{path}.url", refused.message)
        return None
    return {**channel, "url": target}


def limits_normalized(document: object, *, customer: Customer) -> dict:
    """The limits `document` (API.md's shape) sets, as Customer.limits stores them:
    amounts in the customer's currency as money text, quantities and thresholds
    as plain decimals, a cap's `when` sorted, channels checked (an email address;
    a webhook URL through the outbound guard: https, public addresses only, no
    credentials). Keys left out are cleared. Raises InvalidRequest naming each
    field that is wrong; nothing is stored."""
    errors = _Errors()
    if not isinstance(document, dict):
        raise InvalidRequest(
            "the limits must be a JSON object", fields={"limits": ["must be an object"]}
        )
    for key in set(document) - set(KEYS):
        shown = key if len(key) <= MAX_VALUE else key[:MAX_VALUE] + "…"
        errors.add(shown, _("unknown field"))
    stored: dict = {}
    budget = _budget(document.get("budget"), errors, customer)
    if budget is not None:
        stored["budget"] = budget
    caps = document.get("caps") or []
    if not isinstance(caps, list):
        errors.add("caps", _("must be a list"))
        caps = []
    elif len(caps) > MAX_CAPS:
        errors.add("caps", _("at most {most}").format(most=MAX_CAPS))
        caps = []
    meters = Meter.objects.in_bulk(
        [c["meter"] for c in caps if isinstance(c, dict) and isinstance(c.get("meter"), str)],
        field_name="code",
    )
    read_caps = []
    for index, value in enumerate(caps):
        cap = _cap(value, f"caps.{index}", errors, customer, meters)
        if cap is None:
            continue
        if any((c["meter"], c["when"]) == (cap["meter"], cap["when"]) for c in read_caps):
            errors.add(f"caps.{index}", _("the same meter and values are capped twice"))
        read_caps.append(cap)
    if read_caps:
        stored["caps"] = read_caps
    thresholds = _thresholds(document.get("alert_thresholds") or [], errors)
    if thresholds:
        if budget is None and "budget" not in errors.fields:
            errors.add(
                "alert_thresholds", _("alert thresholds are percentages of a budget: set one")
            )
        stored["alert_thresholds"] = thresholds
    channels = document.get("channels") or []
    if not isinstance(channels, list):
        errors.add("channels", _("must be a list"))
        channels = []
    elif len(channels) > MAX_CHANNELS:
        errors.add("channels", _("at most {most}").format(most=MAX_CHANNELS))
        channels = []
    read_channels = []
    for index, value in enumerate(channels):
        channel = _channel(value, f"channels.{index}", errors)
        if channel is None:
            continue
        if any(_target(c) == _target(channel) for c in read_channels):
            errors.add(f"channels.{index}", _("listed twice"))
        read_channels.append(channel)
    if read_channels:
        stored["channels"] = read_channels
    errors.raise_any()
    return stored


def _target(channel: dict) -> tuple[str, str]:
    return channel["kind"], channel.get("to") or channel.get("url", "")


def limits_set(
    *,
    customer: Customer,
    document: object,
    by: str,
    via: str,
    now: datetime,
    refusals: Callable[[dict], dict[str, list[str]]] | None = None,
) -> CustomerLimitChange | None:
    """Set the customer's limits to `document` (limits_normalized) and record the
    change: `by` says who (a manage link's holder, "API key <name>", an admin
    user), `via` through what (CustomerLimitChange.VIAS). `refusals` says what else
    refuses the normalized limits (field path -> messages: the plan's check, which
    this layer cannot read). None when nothing changed (nothing recorded). Under
    the customer's row lock: two changes at once are recorded one after the other,
    each from what the other left."""
    # Checked before the lock: a webhook's host is resolved (DNS) while checking.
    stored = limits_normalized(document, customer=customer)
    if refusals is not None and (refused := refusals(stored)):
        path, messages = next(iter(refused.items()))
        raise InvalidRequest(f"{path}: {messages[0]}", fields=refused)
    with transaction.atomic():
        locked = customer_lock(customer.pk)
        # The spend limit again, as it is now: finance may have lowered it since.
        budget = stored.get("budget")
        if budget and (above := _above_spend_limit(Decimal(budget["amount"]), locked)):
            raise InvalidRequest(f"budget.amount: {above}", fields={"budget.amount": [above]})
        before = limits_stored(locked)
        if stored == before:
            return None
        locked.limits = stored
        locked.save(update_fields=["limits"])
        customer.limits = stored
        change = CustomerLimitChange.objects.create(
            customer=locked,
            changed_at=now,
            by=by[:255],
            via=via,
            before=before,
            after=stored,
        )
        # E-mailed to the billing contact by a task (billing.notifications.channels).
        enqueue_on_commit("billing.tasks.email_limit_change", change.pk)
    return change


def limits_history(customer: Customer, *, most: int = 50) -> list[CustomerLimitChange]:
    """The customer's latest limit changes, newest first."""
    return list(customer.limit_changes.order_by("-changed_at", "-id")[:most])

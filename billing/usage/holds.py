"""Holds (services): reserve a quantity before an expensive action, settle it
after with what was really used, or release it when the action failed.

A hold is a check's answer kept: it is opened only where the check allows the
quantity, counting the customer's other open holds as used (billing.usage.held),
and from then on every check and hold counts it as used too: hard caps, credit and
money balances (what it would draw is held back), spend limits, the customer's
budgets and caps. Holds, settles and releases of one customer take its lock
(customers.locks), so twenty holds at once against a balance that covers ten
leave ten open, across processes; checks take no lock (they read, and a hold's
check reads what the ones committed before it hold).

Settling writes the usage event (id `hold:<public id>`) through ingestion, which
draws the wallets as it draws any usage, and closes the hold in the same
transaction; a quantity above the one held is usage like any other. Releasing
bills nothing. A hold past its expiry counts for nothing at once; the sweep
(expire_holds, on the beat every minute) marks it expired and announces it
(webhook `hold.expired`)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from billing.hold_models import Hold
from billing.models import HOLD_EXPIRED
from billing.notifications.webhooks import webhook_event_publish
from billing.usage.check import CheckResult, live_read, usage_check
from billing.usage.folding import fold_clock
from billing.usage.held import held_of
from billing.usage.ingestion import events_ingest
from billing.usage.metering import EventRejected, contributions, meter_cache
from billing.usage.rollups import rollup_lock
from common.errors import Conflict, CustomerNotFound, InvalidRequest, NotFound
from common.money import MAX_INTEGER_DIGITS, format_decimal, format_money
from common.periods import iso
from customers.locks import customer_lock, customer_lock_by_external_id, customers_lock
from plans.models import Meter

# How long a hold may stay open (a day), and how long by default (ten minutes).
MAX_EXPIRY_SECONDS = 86_400
DEFAULT_EXPIRY_SECONDS = 600
SWEEP_BATCH = 500
ZERO = Decimal(0)


@dataclass(frozen=True)
class Opened:
    """What opening a hold answered: the hold (None when refused), the check that
    refused it, and whether this call wrote it (False: the key's earlier hold)."""

    hold: Hold | None
    refusal: CheckResult | None = None
    created: bool = False


def _meter_of(code: str, properties: dict):
    """The meter a hold reserves: one that sums a property (a hold's quantity is
    that property's value on the event settle writes), whose filters these
    properties pass."""
    meter = meter_cache.by_code_frozen(code)
    if meter is None:
        raise InvalidRequest(f"there is no meter {code!r}", fields={"meter": ["unknown meter"]})
    if meter.aggregation != Meter.SUM:
        raise InvalidRequest(
            f"meter {code!r} does not sum a property: a hold reserves a quantity of a meter "
            "that sums one (its settle writes the quantity as that property)",
            fields={"meter": ["a meter with aggregation sum"]},
        )
    try:
        counted = contributions([meter], {**properties, meter.value_property: "0"})
    except EventRejected as exc:
        raise InvalidRequest(str(exc), fields={"properties": [str(exc)]}) from exc
    if not counted:
        raise InvalidRequest(
            f"meter {code!r} does not count usage with these properties (its filters)",
            fields={"properties": ["the meter's filters leave this usage out"]},
        )
    return meter


def hold_open(
    *,
    external_id: str,
    meter: str,
    quantity: Decimal,
    properties: dict,
    key: str,
    expires_in_seconds: int,
    now: datetime,
) -> Opened:
    """Reserve `quantity` of `meter` for the customer until `expires_in_seconds`
    from now, if a check counting its open holds allows it. The same `key` gives
    the hold it gave before; asked with another meter, quantity or properties, a
    Conflict (nothing held). Raises CustomerNotFound and InvalidRequest."""
    if quantity <= 0:
        raise InvalidRequest("quantity must be positive", fields={"quantity": ["must be > 0"]})
    if not 1 <= expires_in_seconds <= MAX_EXPIRY_SECONDS:
        raise InvalidRequest(
            f"expires_in_seconds must be 1 to {MAX_EXPIRY_SECONDS}",
            fields={"expires_in_seconds": [f"1 to {MAX_EXPIRY_SECONDS}"]},
        )
    definition = _meter_of(meter, properties)
    with transaction.atomic():
        # One customer's holds one after another: each counts the ones before it.
        customer_id = customer_lock_by_external_id(external_id)
        if customer_id is None:
            raise CustomerNotFound(external_id)
        earlier = Hold.objects.filter(customer_id=customer_id, key=key).first()
        if earlier is not None:
            asked = (definition.code, quantity, properties)
            if (earlier.meter, earlier.quantity, earlier.properties) != asked:
                raise Conflict(
                    f"key {key!r} was used for another hold ({earlier.public_id}: "
                    f"{format_decimal(earlier.quantity)} of {earlier.meter}); a new hold "
                    "needs a new key"
                )
            return Opened(earlier)
        # Read under the lock: the balances as the holds before this one left them.
        live = live_read(external_id=external_id, now=now)
        result = usage_check(
            customer=live.customer,
            subscription=live.subscription,
            meter_code=definition.code,
            quantity=quantity,
            now=now,
            balances=live.balances,
            properties=properties,
            held=held_of(live, now=now),
        )
        if not result.allowed:
            return Opened(None, result)
        if result.cost is not None and abs(result.cost) >= Decimal(10) ** MAX_INTEGER_DIGITS:
            raise InvalidRequest(
                "the hold's amount is more than an amount can be (18 digits before the point)",
                fields={"quantity": ["too large for its price"]},
            )
        hold = Hold.objects.create(
            customer=live.customer,
            key=key,
            meter=definition.code,
            quantity=quantity,
            properties=properties,
            held_credits=result.draws if result.model == "credits" else 0,
            held_money=result.draws if result.model == "balance" else 0,
            uncovered_units=result.uncovered,
            amount=result.cost,
            currency=live.subscription.version.currency,
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in_seconds),
        )
    return Opened(hold, created=True)


def _hold_locked(public_id: str) -> Hold:
    """The hold of this id, its customer locked first (the order of customers.locks),
    then read fresh."""
    found = Hold.objects.filter(public_id=public_id).values_list("customer_id", flat=True).first()
    if found is None:
        raise NotFound(f"there is no hold {public_id!r}")
    customer_lock(found)
    return Hold.objects.select_related("customer").get(public_id=public_id)


def _open_or_expired(hold: Hold, now: datetime) -> bool:
    """Whether the (locked) hold is open at `now`; one past its expiry that the
    sweep has not reached is expired now (False: committed with the caller's
    transaction, which then answers the conflict). Raises Conflict for one closed
    before."""
    if hold.status == Hold.OPEN and hold.expires_at <= now:
        _expire(hold, now)
        return False
    if hold.status != Hold.OPEN:
        _no_longer_open(hold)
    return True


def _no_longer_open(hold: Hold):
    raise Conflict(f"hold {hold.public_id} is {hold.status}, no longer open")


def hold_settle(
    *,
    public_id: str,
    quantity: Decimal,
    now: datetime,
    timestamp: datetime | None = None,
    properties: dict | None = None,
) -> Hold:
    """Bill what was really used: the usage event `hold:<id>` of `quantity` (0
    bills nothing) with the hold's properties (and these, which add to them),
    written through ingestion; the rest of the hold freed. Raises NotFound,
    Conflict (no longer open) and InvalidRequest (an event ingestion refuses)."""
    if quantity < 0:
        raise InvalidRequest("quantity must not be negative", fields={"quantity": [">= 0"]})

    def bill(hold: Hold) -> None:
        if quantity == 0:
            return
        meter = _meter_of(hold.meter, {**hold.properties, **(properties or {})})
        event = {
            "id": f"hold:{hold.public_id}",
            "customer": hold.customer.external_id,
            "event_name": meter.event_name,
            "timestamp": iso(timestamp or now),
            "properties": {
                **hold.properties,
                **(properties or {}),
                meter.value_property: format_decimal(quantity),
            },
        }
        # Folded once the settle has committed, not while it holds its locks.
        result = events_ingest(events=[event], now=now, fold=False)
        transaction.on_commit(fold_clock.fold_if_due)
        if result.rejected:
            raise InvalidRequest(result.rejected[0].message)

    return _close(
        public_id, now, {"status": Hold.SETTLED, "settled_quantity": quantity}, first=bill
    )


def hold_release(*, public_id: str, reason: str, now: datetime) -> Hold:
    """Free the hold, billing nothing (`reason`: failed or cancelled). Raises
    NotFound, Conflict (no longer open) and InvalidRequest."""
    if reason not in dict(Hold.REASONS):
        raise InvalidRequest(
            "reason must be failed or cancelled", fields={"reason": ["failed or cancelled"]}
        )
    return _close(public_id, now, {"status": Hold.RELEASED, "reason": reason})


def _close(public_id: str, now: datetime, changes: dict, *, first=None) -> Hold:
    """Close an open hold with these field values, after `first(hold)` (settle's
    bill), all in one transaction under its customer's lock. A hold past its expiry
    is expired instead (committed), then answered as a conflict."""
    with transaction.atomic():
        if first is not None:
            # Ingestion's lock before the customer's, the order re-rating takes them in.
            rollup_lock(shared=True)
        hold = _hold_locked(public_id)
        is_open = _open_or_expired(hold, now)
        if is_open:
            if first is not None:
                first(hold)
            for name, value in changes.items():
                setattr(hold, name, value)
            hold.closed_at = now
            hold.save(update_fields=[*changes, "closed_at"])
    if not is_open:
        _no_longer_open(hold)
    return hold


def holds_closed_by_calls(
    *,
    settled: list[tuple[str, str, list[dict]]],
    failed: list[tuple[str, str]],
    now: datetime,
) -> None:
    """What a gateway's records do to the holds they name (API.md "Holds": a
    gateway's usage settles the hold named in its metadata), in one transaction,
    their customers locked in id order:
    - `settled` (hold id, the call's customer, the call's events, stored now): the
      hold is settled with what those events put on its meter, no event written
      again, whatever it was (open, expired, or released: a call billed is never
      "not charged"); one settled already adds it (every call of a run that names
      it);
    - `failed` (hold id, the failed call's customer): the hold, if still open, is
      released as failed; a later call naming it that is billed settles it again
      (a retry that succeeded).
    A hold of another customer than the call's, or unknown, is left as it is."""
    named = {public_id for public_id, _, _ in settled} | {public_id for public_id, _ in failed}
    if not named:
        return
    with transaction.atomic():
        owners = Hold.objects.filter(public_id__in=named).values_list("customer_id", flat=True)
        customers_lock(owners)
        holds = {
            hold.public_id: hold
            for hold in Hold.objects.filter(public_id__in=named).select_related("customer")
        }

        def of(public_id: str, customer: str) -> Hold | None:
            hold = holds.get(public_id)
            return hold if hold is not None and hold.customer.external_id == customer else None

        changed: dict[str, Hold] = {}
        for public_id, customer in failed:
            hold = of(public_id, customer)
            if hold is not None and hold.status == Hold.OPEN:
                hold.status, hold.reason, hold.closed_at = Hold.RELEASED, Hold.FAILED, now
                changed[public_id] = hold
        for public_id, customer, events in settled:
            hold = of(public_id, customer)
            if hold is None:
                continue
            used = _used_on(hold.meter, events)
            if hold.status == Hold.SETTLED:
                hold.settled_quantity = (hold.settled_quantity or ZERO) + used
            else:
                hold.status, hold.reason, hold.closed_at = Hold.SETTLED, "", now
                hold.settled_quantity = used
            changed[public_id] = hold
        Hold.objects.bulk_update(
            list(changed.values()), ["status", "reason", "settled_quantity", "closed_at"]
        )


def _used_on(meter_code: str, events: list[dict]) -> Decimal:
    """What these stored events put on the meter (0 for a meter gone)."""
    meter = meter_cache.by_code_frozen(meter_code)
    if meter is None:
        return ZERO
    return sum(
        (
            contribution.value
            for event in events
            if event["event_name"] == meter.event_name
            for contribution in contributions([meter], event["properties"])
        ),
        ZERO,
    )


def _expire(hold: Hold, now: datetime) -> None:
    """Mark an open hold past its expiry expired (under its customer's lock) and
    announce it once."""
    hold.status = Hold.EXPIRED
    hold.closed_at = now
    hold.save(update_fields=["status", "closed_at"])
    webhook_event_publish(
        event_type=HOLD_EXPIRED,
        data=hold_body(hold),
        customer=hold.customer,
        now=now,
        event_id=f"evt_{hold.public_id}_expired",
    )


def holds_expire(*, now: datetime) -> int:
    """The sweep: every open hold past its expiry marked expired and announced,
    each under its customer's lock. The holds expired."""
    expired = 0
    while True:
        due = list(
            Hold.objects.filter(status=Hold.OPEN, expires_at__lte=now)
            .order_by("expires_at", "pk")
            .values_list("public_id", flat=True)[:SWEEP_BATCH]
        )
        if not due:
            return expired
        for public_id in due:
            with transaction.atomic():
                hold = _hold_locked(public_id)
                if hold.status == Hold.OPEN and hold.expires_at <= now:
                    _expire(hold, now)
                    expired += 1
        if len(due) < SWEEP_BATCH:
            return expired


def hold_body(hold: Hold) -> dict:
    """A hold as the API and its webhook say it."""

    def money(value):
        return None if value is None else format_money(value, hold.currency)

    return {
        "id": hold.public_id,
        "customer": hold.customer.external_id,
        "status": hold.status,
        "allowed": True,
        "meter": hold.meter,
        "quantity": format_decimal(hold.quantity),
        "properties": hold.properties,
        "amount": money(hold.amount),
        "currency": hold.currency,
        "key": hold.key,
        "created_at": iso(hold.created_at),
        "expires_at": iso(hold.expires_at),
        "closed_at": iso(hold.closed_at) if hold.closed_at else None,
        "reason": hold.reason or None,
        "settled_quantity": (
            None if hold.settled_quantity is None else format_decimal(hold.settled_quantity)
        ),
    }

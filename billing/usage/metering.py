"""What an event contributes to each meter. Ingestion (rollups) and usage reads of
raw events both use `contributions`, so a quantity is the same whichever path
computed it.

Filters compare values as text: a property "gpt-4o" matches a filter value
"gpt-4o", and the number 1.5 matches 1.5 or "1.5".
"""

import json
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from common import rawsql
from common.money import decimal_input
from plans.models import Meter

MAX_UNIQUE_VALUE_LENGTH = 512


# One decoder for stored properties: exact decimals, built once (json.loads with
# arguments builds a new decoder on every call).
PROPERTIES_DECODER = json.JSONDecoder(parse_float=Decimal)


class EventRejected(Exception):
    """The event cannot be metered; the message says why."""


@dataclass(frozen=True, slots=True)
class MeterDef:
    id: int
    code: str
    event_name: str
    aggregation: str
    value_property: str
    unique_property: str
    # property -> the filter's values as text
    filters: tuple[tuple[str, frozenset[str]], ...]
    # What invoices and the portal call it.
    name: str = ""
    # The event properties its usage is broken down by (at most 3).
    group_by: tuple[str, ...] = ()
    # One of group_by: invoices split the meter's lines by it ("": not split).
    invoice_breakdown: str = ""
    # When the meter last changed or had its rollups rebuilt (its updated_at): what
    # is kept from its rollups' counts (billing.usage.edge_cache) is keyed by it.
    revision: datetime | None = None


# Not frozen: one is built for each meter an event feeds (a frozen dataclass's
# __init__ costs three times as much), and nothing changes one once built.
@dataclass(slots=True)
class Contribution:
    meter_id: int
    # The number the meter reads (sum, max, latest), or None for count and unique_count.
    value: Decimal | None
    # The distinct value for unique_count, as text.
    unique: str | None
    # A meter with group_by: the event's value of each of those properties as
    # text, "" for none, in their order (billing.breakdown_models).
    group: tuple[str, ...] | None = None
    # Its meter keeps only the combination of the group values (combinations_only).
    combination_only: bool = False


def as_text(value: object) -> str | None:
    """A scalar JSON value as the text filters and unique counts compare; None if not scalar."""
    if type(value) is str:  # the common case, first
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | float):
        number = Decimal(str(value)) if isinstance(value, float) else value
        if not number.is_finite():
            return None
        text = format(number.normalize(), "f")
        return "0" if text == "-0" else text
    return None


def as_quantity(value: object) -> Decimal:
    """A property value a meter adds up: a JSON number or a plain decimal string, not
    negative (common.money.decimal_input). Raises ValueError saying why not."""
    return decimal_input(value, negative=False)


def meter_def(meter: Meter) -> MeterDef:
    filters = tuple(
        sorted(
            (prop, frozenset(t for t in (as_text(v) for v in values) if t is not None))
            for prop, values in (meter.filters or {}).items()
        )
    )
    return MeterDef(
        id=meter.id,
        code=meter.code,
        event_name=meter.event_name,
        aggregation=meter.aggregation,
        value_property=meter.value_property,
        unique_property=meter.unique_property,
        filters=filters,
        name=meter.name,
        group_by=tuple(meter.group_by or ()),
        invoice_breakdown=meter.invoice_breakdown,
        revision=meter.updated_at,
    )


def group_value(value: object) -> str:
    """An event's value of a group_by property as its group's text: "" (the
    `null` group) for none, null, an empty or overlong text, a list or an object."""
    text = as_text(value) if value is not None else None
    if not text or len(text) > MAX_UNIQUE_VALUE_LENGTH:
        return ""
    return text


def group_of(meter: MeterDef, properties: dict) -> tuple[str, ...]:
    """The event's group text at each position of the meter's groups: one per
    group_by property, then, for a meter grouping by two or more, the
    combination of them all (combination_text), which rate cards price by."""
    values = tuple([group_value(properties.get(name)) for name in meter.group_by])
    if len(values) > 1:
        return (*values, _combination_text(values))
    return values


def values_of_group(meter: MeterDef, group: tuple | None) -> dict[str, str | None]:
    """The values (None: none) of the meter's group_by properties that an event's
    group texts (group_of) stand for, as the rollups count the event under a rate
    card: an overlong combination (combination_text's "") as none of them."""
    group = group or ()
    count = len(meter.group_by)
    if count > 1 and len(group) > count and group[count] == "":
        return dict.fromkeys(meter.group_by)
    return {
        name: (group[i] if i < len(group) else "") or None for i, name in enumerate(meter.group_by)
    }


def event_group_values(meter: MeterDef, properties: dict) -> dict[str, str | None]:
    """values_of_group of an event's (or a check's) properties."""
    return values_of_group(meter, group_of(meter, properties))


def combination_position(meter: MeterDef) -> int:
    """Where a grouping meter's groups keep the combination of all its group_by
    values: its one property's own position, or the one after them all."""
    return 0 if len(meter.group_by) == 1 else len(meter.group_by)


def combinations_only(meter: MeterDef) -> bool:
    """Whether the meter's group rollups keep only the combination of its group_by
    values (one group row an event-hour, not one per property and the combination):
    a count or sum meter grouping by two or more properties, whose one-property
    quantities are the sums of the combinations' (billing.usage.breakdowns). A max,
    latest or unique_count meter keeps a row per property: its groups do not add up."""
    return len(meter.group_by) > 1 and meter.aggregation in (Meter.COUNT, Meter.SUM)


def group_read_position(meter: MeterDef, position: int) -> int:
    """Where the group rollups keep what a read of `position` (a group_by property's,
    or combination_position) adds up: the combination for a combinations_only meter."""
    return combination_position(meter) if combinations_only(meter) else position


def combination_text(values: list[str]) -> str:
    """The group values of an event (group_value's, in group_by order) as one
    group's text: a JSON list, "" when that is longer than a group's text may be
    (then the event counts as having none of the values)."""
    return _combination_text(tuple(values))


# Kept: a rate card's events repeat a few hundred combinations, and writing one as
# JSON took most of a token event's metering (some 3 us of 4).
@lru_cache(maxsize=16_384)
def _combination_text(values: tuple[str, ...]) -> str:
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= MAX_UNIQUE_VALUE_LENGTH else ""


def combination_values(meter: MeterDef, text: str) -> tuple[tuple[str, str | None], ...]:
    """(property, value or None) of each of the meter's group_by properties, in
    order, that a group's text at combination_position stands for. Kept: a read
    of a rate card's usage parses each of its combinations (some 200 a /usage)."""
    return _combination_values(tuple(meter.group_by), text)


def combination_values_clear() -> None:
    """Forget the combinations parsed and written (config.process_caches)."""
    _combination_values.cache_clear()
    _combination_text.cache_clear()


@lru_cache(maxsize=16_384)
def _combination_values(group_by: tuple[str, ...], text: str) -> tuple[tuple[str, str | None], ...]:
    if len(group_by) == 1:
        return ((group_by[0], text or None),)
    try:
        values = json.loads(text) if text else None
    except ValueError:
        values = None
    # Anything but a list of texts of the meter's length (rows left by a group_by
    # changed before its rebuild has run) reads as none of the values.
    if not (
        isinstance(values, list)
        and len(values) == len(group_by)
        and all(isinstance(value, str) for value in values)
    ):
        values = [""] * len(group_by)
    return tuple(zip(group_by, (value or None for value in values), strict=True))


def passes_filters(meter: MeterDef, properties: dict) -> bool:
    """Whether the event's properties pass each of the meter's filters. A loop, not
    all() over a generator: it runs for every event, and costs half as much."""
    for prop, allowed in meter.filters:  # noqa: SIM110
        if as_text(properties.get(prop)) not in allowed:
            return False
    return True


def contributions(meters: list[MeterDef], properties: dict) -> list[Contribution]:
    """The contribution of an event (already known to have these meters' event name)
    to each meter whose filters it passes. Raises EventRejected when a meter that
    takes the event cannot read the value it needs."""
    out = []
    for meter in meters:
        if meter.filters and not passes_filters(meter, properties):
            continue
        group = group_of(meter, properties) if meter.group_by else None
        if meter.aggregation == Meter.COUNT:
            out.append(Contribution(meter.id, None, None, group, combinations_only(meter)))
        elif meter.aggregation == Meter.UNIQUE_COUNT:
            raw = properties.get(meter.unique_property)
            text = as_text(raw) if raw is not None else None
            if text is None or len(text) > MAX_UNIQUE_VALUE_LENGTH:
                raise EventRejected(
                    f"meter {meter.code!r} counts distinct values of property "
                    f"{meter.unique_property!r}: it must be a string, number or boolean "
                    f"of at most {MAX_UNIQUE_VALUE_LENGTH} characters"
                )
            out.append(Contribution(meter.id, None, text, group))
        else:
            if meter.value_property not in properties:
                raise EventRejected(
                    f"meter {meter.code!r} reads property {meter.value_property!r}, "
                    "which the event does not have"
                )
            try:
                value = as_quantity(properties[meter.value_property])
            except ValueError as exc:
                raise EventRejected(
                    f"property {meter.value_property!r} (meter {meter.code!r}) {exc}"
                ) from exc
            out.append(Contribution(meter.id, value, None, group, combinations_only(meter)))
    return out


class MeterCache:
    """Meters grouped by event name, per process. Reloaded when the meters table
    changes (count, highest id, latest update), checked with one small query."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pins = threading.local()
        self._fingerprint: tuple | None = None
        self._by_event: dict[str, list[MeterDef]] = {}
        self._by_id: dict[int, MeterDef] = {}
        self._by_code: dict[str, MeterDef] = {}

    def clear(self) -> None:
        """Forget every meter: the next read loads them again, by_code_frozen's too
        (which reads a meter it has without the freshness check)."""
        with self._lock:
            self._fingerprint = None
            self._by_event, self._by_id, self._by_code = {}, {}, {}

    @contextmanager
    def pinned(self):
        """Check once, then read the same meters until the block ends: for a run
        that reads meters many times (the period close), or twice in one
        transaction (a batch's metering and its draw-down)."""
        self._refresh()
        self._pins.depth = getattr(self._pins, "depth", 0) + 1
        try:
            yield
        finally:
            self._pins.depth -= 1

    def _refresh(self) -> None:
        if getattr(self._pins, "depth", 0) and self._fingerprint is not None:
            return
        # Written out (see common.rawsql): every batch and every usage read asks.
        (fingerprint,) = rawsql.rows(
            "SELECT COUNT(*), MAX(id), MAX(updated_at) FROM plans_meter",
            [],
            tuple(Meter._meta.get_field(name) for name in ("id", "id", "updated_at")),
            ahead=True,
        )
        if fingerprint == self._fingerprint:
            return
        by_event: dict[str, list[MeterDef]] = {}
        by_id = {}
        for meter in Meter.objects.order_by("id"):
            definition = meter_def(meter)
            by_event.setdefault(meter.event_name, []).append(definition)
            by_id[meter.id] = definition
        by_code = {definition.code: definition for definition in by_id.values()}
        with self._lock:
            self._by_event, self._by_id, self._by_code = by_event, by_id, by_code
            self._fingerprint = fingerprint

    def by_event_name(self) -> dict[str, list[MeterDef]]:
        self._refresh()
        return self._by_event

    def by_id(self) -> dict[int, MeterDef]:
        self._refresh()
        return self._by_id

    def by_code(self, code: str) -> MeterDef | None:
        self._refresh()
        return self._by_code.get(code)

    def by_codes(self, codes: Iterable[str]) -> dict[str, MeterDef]:
        """The meters named (by code), in the order first named, with one freshness
        check for them all (by_code checks on each call); a code that names no
        meter is left out."""
        self._refresh()
        return {code: self._by_code[code] for code in codes if code in self._by_code}

    def by_code_frozen(self, code: str) -> MeterDef | None:
        """A meter whose definition can no longer change (a published or archived
        version charges it), read without the freshness check when this process
        has it already."""
        found = self._by_code.get(code)
        if found is None:
            self._refresh()
            found = self._by_code.get(code)
        return found


meter_cache = MeterCache()

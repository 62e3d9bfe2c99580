"""What a report is asked (GET /margins, /revenue): its window, a date meaning
its midnight in the window's zone (`tz`, by default the seller's), its length
(at most MAX_DAYS), the seller whose customers it covers (`billing_entity`),
its view (`group_by`) and its currency. Every refusal is a 400 naming the
field."""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.margins.report import VIEWS, price_by_properties, window_currencies
from common.errors import InvalidRequest
from common.money import is_known_currency
from common.periods import on_the_hour, parse_instant
from customers.billing_entities import billed_by, billing_entity_by_code, billing_entity_zone
from customers.models import BillingEntity

DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
EXAMPLE = "e.g. 2026-11-01 or 2026-11-01T00:00:00Z"
# A report window longer than this is refused (a year and a month's slack).
MAX_DAYS = 400


@dataclass(frozen=True)
class ReportWindow:
    start: datetime
    end: datetime
    zone: str
    entity: BillingEntity | None  # named by the request

    def customers(self) -> list[int] | None:
        """The ids of the customers the entity named bills; None: every customer."""
        if self.entity is None:
            return None
        return list(billed_by(self.entity).values_list("pk", flat=True))


def _zone(request, entity: BillingEntity | None) -> str:
    given = request.query_params.get("tz")
    if given is None:
        return billing_entity_zone(entity)
    try:
        if not given or "\x00" in given or len(given) > 64:
            raise ValueError(given)
        ZoneInfo(given)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(
            f"unknown time zone {given!r}",
            fields={"tz": ["an IANA time zone, e.g. Europe/Paris or UTC"]},
        ) from exc
    return given


def _edge(request, name: str, zone: str, hourly: bool) -> datetime:
    text = request.query_params.get(name)
    if not text:
        raise InvalidRequest(f"{name} is required", fields={name: [EXAMPLE]})
    try:
        if DATE.fullmatch(text):
            day = date.fromisoformat(text)
            moment = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(zone))
        else:
            moment = parse_instant(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest(f"{name} {exc}", fields={name: [EXAMPLE]}) from exc
    if hourly and not on_the_hour(moment):
        raise InvalidRequest(
            f"{name} must be on the hour: costs are computed per hour",
            fields={name: ["costs are computed per hour: give a date or a time on the hour"]},
        )
    return moment


def refuse_unknown(request, known: frozenset, path: str) -> None:
    """A 400 naming the query parameters `path` does not take."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        taken = ", ".join(sorted(known))
        raise InvalidRequest(
            f"unknown query parameter {unknown[0]!r}; {path} takes {taken}",
            fields={name: [f"not one of {taken}"] for name in unknown},
        )


def report_window(request, *, start: str, end: str, hourly: bool) -> ReportWindow:
    """The window the request names by its `start` and `end` parameters;
    `hourly`: its edges must fall on the hour (costs are read per hour)."""
    entity = billing_entity_by_code(request.query_params.get("billing_entity"))
    zone = _zone(request, entity)
    first, last = _edge(request, start, zone, hourly), _edge(request, end, zone, hourly)
    if last <= first:
        raise InvalidRequest(f"{end} must be after {start}", fields={end: [f"after {start}"]})
    if last - first > timedelta(days=MAX_DAYS):
        raise InvalidRequest(
            f"the window is longer than {MAX_DAYS} days: ask for a shorter one",
            fields={end: [f"at most {MAX_DAYS} days after {start}"]},
        )
    return ReportWindow(first, last, zone, entity)


def report_group_by(request) -> str:
    given = request.query_params.get("group_by") or "customer"
    if given in VIEWS or given in price_by_properties():
        return given
    raise InvalidRequest(
        f"group_by must be customer, plan, meter or a property some meter groups its usage "
        f"by, not {given!r}",
        fields={"group_by": ["customer, plan, meter, or a property such as model"]},
    )


def report_currency(request, start: datetime, end: datetime, customers=None) -> str:
    """The currency asked; without one, the one currency of the window
    (report.window_currencies), or a 400 naming the window's currencies."""
    given = request.query_params.get("currency")
    if given is not None:
        if not is_known_currency(given):
            raise InvalidRequest(f"unknown currency {given!r}", fields={"currency": ["e.g. USD"]})
        return given
    used = window_currencies(start, end, customers=customers)
    if len(used) > 1:
        named = ", ".join(used)
        raise InvalidRequest(
            f"customers are billed in several currencies in this window ({named}): give one "
            f"(?currency={used[0]})",
            fields={"currency": [f"One currency per answer: one of {named}"]},
        )
    return used[0] if used else "USD"


@dataclass(frozen=True)
class ReportCurrency:
    """The currency of a report's answer, and, when converted into it
    (`report_currency`), the currencies of the customers it covers."""

    currency: str
    billed_in: list[str] | None  # None: not converted, the customers billed in `currency`


def report_currencies(request, start: datetime, end: datetime, customers=None) -> ReportCurrency:
    """`report_currency`: every amount converted into it, of the customers
    billed in `currency` when given (a filter), else in any currency of the
    window (report.window_currencies); without it, report_currency's one
    currency. An unknown code is a 400 naming the field."""
    given = request.query_params.get("report_currency")
    if given is None:
        return ReportCurrency(report_currency(request, start, end, customers), None)
    if not is_known_currency(given):
        raise InvalidRequest(
            f"unknown report currency {given!r}",
            fields={"report_currency": ["a currency code, e.g. USD"]},
        )
    filtered = request.query_params.get("currency")
    if filtered is not None:
        return ReportCurrency(given, [report_currency(request, start, end, customers)])
    return ReportCurrency(given, window_currencies(start, end, customers=customers))

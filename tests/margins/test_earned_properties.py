"""Issue 75's must-show, as properties of earned revenue
(billing.revenue.earned.earned_window), over random customers built through
the services the product uses: a plan (through the API) with a base fee (0
included), a usage charge per unit or in graduated tiers on a count meter or
on a sum meter split by model, maybe a seat price, a minimum commitment and a
progressive-billing threshold; a customer in one of five zones (Asia/Kolkata's
:30 offset among them), on calendar or anniversary periods from a random
start; usage at random seconds; maybe a percent-off coupon, a prepaid commit,
an immediate plan change at a past moment, threshold checks at past moments,
closes as of past moments and a credit note on an issued invoice.

1. Adjacent windows add up: for any t0 < t1 < t2, what [t0, t1) and [t1, t2)
   earned is what [t0, t2) earned, to the cent, billed and accrued apart, in
   total and per row of every view.
2. A window covering everything the customer ever billed (its whole life,
   every service period) earns, from invoiced lines, what its invoices billed
   before tax, after their discount, net of its credit notes before tax.
3. Every view of a window has the same totals, and its rows add up to them.

Each example has its own customer (and plans), and reads that customer's
revenue only, as of one fixed moment (NOW), so the examples of one test
transaction do not see each other."""

import contextlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.invoicing.close import subscriptions_close_and_finalize
from billing.invoicing.progressive import threshold_invoice_write
from billing.models import Subscription
from billing.revenue.earned import EarnedWindow, earned_window
from billing.subscriptions.discounts import discount_redeem
from billing.subscriptions.lifecycle import subscription_change_plan, subscription_set_seats
from billing.usage.ingestion import events_ingest
from common.errors import BillingError
from common.periods import period_boundary
from common.vocabulary import CouponDuration
from customers.services import customer_create
from invoices.credit_notes import (
    CreditLineInput,
    credit_note_issue,
    credited_by_line,
    invoice_left_to_credit,
)
from invoices.models import CreditNote, Invoice, InvoiceLine
from plans.coupons import coupon_create
from plans.models import Meter, PlanVersion
from tests.factories import api_client, llm_tokens_meter, prompts_meter, subscribe
from wallets.commit_models import Commit
from wallets.commit_terms import CommitRequest
from wallets.commits import commit_sign
from wallets.models import CreditBlock, LedgerEntry

pytestmark = pytest.mark.django_db

# Every example's "now": before the machine's clock (2026-11-27), fixed so that
# what is accruing reads the same at every call.
NOW = datetime(2026, 11, 27, tzinfo=UTC)
# Usage may be at most 35 days old when it is ingested (at NOW).
USAGE_FROM = NOW - timedelta(days=34)
EARLIEST_START = datetime(2026, 9, 20, tzinfo=UTC)
# Covers every service period an example bills (a commit's term included).
EVERYTHING = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))
ZONES = ("UTC", "America/New_York", "Europe/Paris", "Asia/Tokyo", "Asia/Kolkata")
VIEWS = ("customer", "plan", "meter", "billing_entity", "model", "token_type")
MODELS = ("gpt-4o", "mistral-large", "llama-3")
CENT = Decimal("0.01")
ZERO = Decimal(0)
# Each example's customer, plans and coupon have codes of their own.
serial = itertools.count(1)


@dataclass(frozen=True)
class Terms:
    """A plan version's terms, as the API takes them."""

    base_fee: Decimal
    meter: str  # prompts (count) or llm_tokens (sum, split by model)
    pricing: dict
    included: int
    seat_price: Decimal | None
    minimum: Decimal | None
    threshold: Decimal | None

    def body(self, code: str) -> dict:
        body = {
            "code": code,
            "name": code,
            "currency": "USD",
            "base_fee": str(self.base_fee),
            "charges": [
                {
                    "meter": self.meter,
                    "model": "overage",
                    "included_units": str(self.included),
                    "pricing": self.pricing,
                }
            ],
            "publish": True,
        }
        for name, value in (
            ("seat_price", self.seat_price),
            ("minimum_commitment", self.minimum),
            ("progressive_billing_threshold", self.threshold),
        ):
            if value is not None:
                body[name] = str(value)
        return body


@dataclass(frozen=True)
class Usage:
    at: datetime
    quantity: int
    model: str | None  # llm_tokens only; None: no model property


@dataclass(frozen=True)
class Scenario:
    terms: Terms
    zone: str
    anchor: str
    start: datetime
    seats: int
    usage: tuple[Usage, ...]
    # Usage that arrives after the closes (late for a closed period), and a close at NOW.
    late: tuple[Usage, ...]
    # The beat closes each period as it ends: due periods are closed before a threshold
    # check or a plan change (else only at the closes' moments).
    punctual: bool
    coupon_percent: Decimal | None
    commit: Decimal | None  # a prepaid commit of this much over 3 periods
    change: tuple[Terms, datetime] | None  # to these terms, at this moment
    seat_change: tuple[int, datetime] | None  # to this many seats, at this moment
    threshold_checks: tuple[datetime, ...]
    closes: tuple[datetime, ...]
    credit: tuple[float, float, datetime] | None  # which invoice, how much of a line, when
    windows: tuple[datetime, datetime, datetime] = field(default=())


def money(low: int, high: int, *, per: int = 100):
    return st.integers(low, high).map(lambda n: Decimal(n) / per)


def moment(low: datetime, high: datetime):
    """A second in [low, high], spread over the span (integers alone would
    crowd at `low`)."""
    span = int((high - low).total_seconds())

    def at(drawn: tuple[int, int]) -> datetime:
        per_mille, jitter = drawn
        return low + timedelta(seconds=min(span, span * per_mille // 1000 + jitter))

    return st.tuples(st.sampled_from(range(1001)), st.integers(0, 3599)).map(at)


@st.composite
def pricings(draw, meter: str) -> dict:
    per = "1" if meter == "prompts" else "1000"
    if draw(st.booleans()):
        price = draw(money(1, 5000, per=10000))
        return {"scheme": "per_unit", "unit_price": f"{price:f}", "per": per}
    bounds = sorted(draw(st.sets(st.integers(1, 60), min_size=1, max_size=3)))
    scale = 1 if meter == "prompts" else 1000
    prices = draw(st.lists(money(1, 900, per=10000), min_size=len(bounds) + 1, max_size=4))
    tiers = [
        {"up_to": str(bound * scale), "unit_price": f"{price / scale:f}"}
        for bound, price in zip(bounds, prices, strict=False)
    ]
    tiers.append({"up_to": None, "unit_price": f"{prices[len(bounds)] / scale:f}"})
    return {"scheme": "graduated", "tiers": tiers}


@st.composite
def plan_terms(draw) -> Terms:
    meter = draw(st.sampled_from(("prompts", "llm_tokens")))
    return Terms(
        base_fee=draw(st.one_of(st.just(ZERO), money(1, 20000))),
        meter=meter,
        pricing=draw(pricings(meter)),
        included=draw(st.sampled_from((0, 0, 5, 20))) * (1 if meter == "prompts" else 1000),
        seat_price=draw(st.one_of(st.none(), money(1, 3000))),
        minimum=draw(st.one_of(st.none(), money(100, 30000))),
        threshold=draw(st.one_of(st.none(), money(1, 500))),
    )


@st.composite
def scenarios(draw) -> Scenario:
    terms = draw(plan_terms())
    start = draw(moment(EARLIEST_START, NOW - timedelta(days=2)))
    usage_from = max(start, USAGE_FROM)
    quantity = (1, 40) if terms.meter == "prompts" else (1, 60_000)
    used = st.builds(
        Usage,
        at=moment(usage_from, NOW - timedelta(seconds=1)),
        quantity=st.integers(*quantity),
        model=st.sampled_from((*MODELS, None)) if terms.meter == "llm_tokens" else st.none(),
    )
    usage = draw(st.lists(used, max_size=10))
    change = None
    if draw(st.booleans()):
        change = (draw(plan_terms()), draw(moment(start, NOW)))
    # Threshold checks (as after an ingest) at past moments, most a while after some usage.
    checks = draw(st.lists(moment(start, NOW), max_size=1))
    if usage:
        after = st.tuples(st.sampled_from(usage), st.integers(1, 48 * 3600))
        checks += [
            min(used.at + timedelta(seconds=delay), NOW)
            for used, delay in draw(st.lists(after, max_size=3))
        ]
    # Closes at past moments, the last one in the last week.
    closes = draw(st.lists(moment(start, NOW), max_size=2))
    closes.append(draw(moment(max(start, NOW - timedelta(days=7)), NOW)))
    windows = sorted(draw(st.lists(window_edges(), min_size=3, max_size=3, unique=True)))
    return Scenario(
        terms=terms,
        zone=draw(st.sampled_from(ZONES)),
        anchor=draw(st.sampled_from((Subscription.CALENDAR, Subscription.ANNIVERSARY))),
        start=start,
        seats=draw(st.integers(1, 5)),
        usage=tuple(usage),
        late=tuple(draw(st.lists(used, max_size=3))),
        punctual=draw(st.booleans()),
        coupon_percent=draw(st.one_of(st.none(), money(1, 100, per=1))),
        commit=draw(st.one_of(st.none(), money(100, 30000))),
        change=change,
        seat_change=draw(st.one_of(st.none(), st.tuples(st.integers(1, 6), moment(start, NOW)))),
        threshold_checks=tuple(checks),
        closes=tuple(sorted(closes)),
        credit=draw(
            st.one_of(
                st.none(),
                st.tuples(st.floats(0, 1), st.floats(0.01, 1), moment(start, NOW)),
            )
        ),
        windows=tuple(windows),
    )


@st.composite
def window_edges(draw) -> datetime:
    """Any second from September 2026 to January 2027, or a local midnight or
    hour of one of the zones (where periods begin)."""
    at = draw(moment(datetime(2026, 9, 1, tzinfo=UTC), datetime(2027, 1, 31, tzinfo=UTC)))
    how = draw(st.sampled_from(("second", "midnight", "hour")))
    if how == "second":
        return at
    local = at.astimezone(ZoneInfo(draw(st.sampled_from(ZONES))))
    if how == "midnight":
        local = local.replace(hour=0)
    return local.replace(minute=0, second=0).astimezone(UTC)


def meters_made() -> None:
    if not Meter.objects.filter(code="prompts").exists():
        prompts_meter()
    if not Meter.objects.filter(code="llm_tokens").exists():
        llm_tokens_meter()


def plan_create(terms: Terms, code: str) -> PlanVersion:
    response = api_client("admin").post("/api/v1/plans", terms.body(code), format="json")
    assert response.status_code == 201, response.json()
    return PlanVersion.objects.get(plan__code=code)


def usage_events(customer: str, meter: str, usage: tuple[Usage, ...], tag: str) -> list[dict]:
    events = []
    for n, used in enumerate(usage):
        if meter == "prompts":
            for k in range(used.quantity):
                events.append(
                    {
                        "id": f"{tag}{n}-{k}",
                        "customer": customer,
                        "event_name": "prompt",
                        "timestamp": used.at.isoformat(),
                    }
                )
        else:
            properties = {"tokens": used.quantity}
            if used.model is not None:
                properties["model"] = used.model
            events.append(
                {
                    "id": f"{tag}{n}",
                    "customer": customer,
                    "event_name": "llm.tokens",
                    "timestamp": used.at.isoformat(),
                    "properties": properties,
                }
            )
    return events


def built(scenario: Scenario) -> int:
    """Make the scenario's customer and its history; its id."""
    meters_made()
    n = next(serial)
    version = plan_create(scenario.terms, f"prop{n}")
    customer = customer_create(
        external_id=f"prop-{n}", name=f"P{n}", currency="USD", timezone_name=scenario.zone
    )
    subscription = subscribe(
        customer,
        version.plan.code,
        start=scenario.start,
        billing_anchor=scenario.anchor,
        seats=scenario.seats,
    )
    if scenario.coupon_percent is not None:
        coupon = coupon_create(
            code=f"PROP{n}",
            name="Off",
            duration=CouponDuration.FOREVER,
            percent_off=scenario.coupon_percent,
        )
        discount_redeem(subscription=subscription, coupon=coupon, now=scenario.start)
    if scenario.commit is not None:
        zone = ZoneInfo(scenario.zone)
        ends = period_boundary(
            subscription.anchor_at,
            zone,
            interval="month",
            calendar_aligned=scenario.anchor == Subscription.CALENDAR,
            k=3,
        )
        request = CommitRequest(
            amount=scenario.commit,
            currency="USD",
            starts_at=subscription.current_period_start,
            ends_at=ends,
            billing=Commit.PREPAID,
            access=Commit.PER_PERIOD,
            applies_to=(scenario.terms.meter,),
        )
        commit_sign(
            subscription=subscription,
            request=request,
            known_meters={scenario.terms.meter},
            now=scenario.start,
        )
    usage_ingest(customer.external_id, scenario.terms.meter, scenario.usage, "e")
    # What happens after the usage, in the order of its moments.
    steps = [(at, "close") for at in scenario.closes]
    steps += [(at, "threshold") for at in scenario.threshold_checks]
    if scenario.change is not None:
        new_terms, at = scenario.change
        steps.append((at, "change"))
        new_version = plan_create(new_terms, f"prop{n}b")
    if scenario.seat_change is not None:
        steps.append((scenario.seat_change[1], "seats"))
    for at, step in sorted(steps):
        if scenario.punctual and step != "close":
            subscriptions_close_and_finalize(subscription_ids=[subscription.pk], as_of=at)
        subscription.refresh_from_db()
        if step == "close":
            subscriptions_close_and_finalize(subscription_ids=[subscription.pk], as_of=at)
        elif step == "threshold":
            threshold_invoice_write(subscription=subscription, now=at)
        elif step == "seats":
            with contextlib.suppress(BillingError):  # not in the current period
                subscription_set_seats(
                    subscription=subscription, seats=scenario.seat_change[0], at=at
                )
        else:
            # Refused when not in the current period, or before a threshold invoice's end.
            with contextlib.suppress(BillingError):
                subscription_change_plan(
                    subscription=subscription, version=new_version, effective="immediate", at=at
                )
    if scenario.late:
        usage_ingest(customer.external_id, scenario.terms.meter, scenario.late, "late")
        subscriptions_close_and_finalize(subscription_ids=[subscription.pk], as_of=NOW)
    if scenario.credit is not None:
        credit_note_made(customer.pk, *scenario.credit)
    return customer.pk


def usage_ingest(customer: str, meter: str, usage: tuple[Usage, ...], tag: str) -> None:
    if usage:
        ingested = events_ingest(events=usage_events(customer, meter, usage, tag), now=NOW)
        assert not ingested.rejected, ingested.rejected


def credit_note_made(customer_id: int, which: float, part: float, at: datetime) -> None:
    """A credit note for `part` of what is left to credit on one positive line of
    one of the customer's issued invoices (not a commit's; an immediate change may
    have credited some of it already, billing.invoicing.unused_time), dated `at`
    (or when the invoice was issued, if later)."""
    invoices = list(
        Invoice.objects.filter(
            customer_id=customer_id,
            status=Invoice.FINALIZED,
            reason__in=(Invoice.START, Invoice.PERIOD, Invoice.PLAN_CHANGE, Invoice.THRESHOLD),
        ).order_by("id")
    )
    if not invoices:
        return
    invoice = invoices[min(int(which * len(invoices)), len(invoices) - 1)]
    lines = [line for line in invoice.lines.order_by("position") if line.amount > 0]
    if not lines or invoice.total <= 0:
        return
    line = lines[min(int(which * len(lines) * 7) % len(lines), len(lines) - 1)]
    share = invoice.taxable_amount / invoice.subtotal if invoice.subtotal > 0 else Decimal(1)
    credited = credited_by_line(invoice)
    left = (line.amount * share).quantize(CENT, ROUND_DOWN) - credited.get(line.pk, ZERO)
    most = min(left, invoice.total, invoice_left_to_credit(invoice, credited))
    amount = (most * Decimal(str(part))).quantize(CENT, ROUND_DOWN)
    if amount <= 0:
        return
    # Issued at that moment: a document is dated when issued (invoices.issue_dates).
    issued_at = max(at, invoice.finalized_at or at)
    with time_machine.travel(issued_at, tick=False):
        credit_note_issue(
            invoice=invoice,
            lines=[CreditLineInput(line.pk, amount)],
            reason=CreditNote.OTHER,
            now=issued_at,
        )


def earned(customer_id: int, start: datetime, end: datetime) -> EarnedWindow:
    return earned_window(start=start, end=end, currency="USD", now=NOW, customers=[customer_id])


def by_view(window: EarnedWindow, view: str) -> dict:
    return {
        repr(row.key): (row.billed, row.accrued)
        for row in window.rows_by(view)
        if row.billed or row.accrued
    }


def added(left: dict, right: dict) -> dict:
    keys = set(left) | set(right)
    both = {
        key: tuple(
            a + b
            for a, b in zip(left.get(key, (ZERO, ZERO)), right.get(key, (ZERO, ZERO)), strict=True)
        )
        for key in keys
    }
    return {key: value for key, value in both.items() if any(value)}


def billed_net(customer_id: int) -> Decimal:
    """What the customer's invoices billed before tax, after discounts, net of
    its credit notes before tax. Left out: threshold invoices of the part of a
    period under way (their usage is accruing: earned counts the period's
    statement, which bills it again until the invoice ending the part, the
    close's or a plan change's, takes the threshold invoices off). The
    examples buy no credits, balances or top-ups (earned as drawn, not when
    invoiced)."""
    invoices = Invoice.objects.filter(customer_id=customer_id).exclude(status=Invoice.VOID)
    total = ZERO
    for invoice in invoices:
        if invoice.reason == Invoice.THRESHOLD and threshold_open(invoice):
            continue
        total += invoice.subtotal - invoice.discount
    notes = CreditNote.objects.filter(customer_id=customer_id).exclude(invoice__status=Invoice.VOID)
    return total - sum((note.subtotal for note in notes), ZERO) - commits_deferred(customer_id)


def commits_deferred(customer_id: int) -> Decimal:
    """What the customer's prepaid commits still defer: what was committed less
    what usage drew, what expired and what credit notes took back (a commit is
    earned as drawn plus breakage, not when invoiced)."""
    committed = Commit.objects.filter(customer_id=customer_id, billing=Commit.PREPAID)
    moved = LedgerEntry.objects.filter(
        block__kind=CreditBlock.COMMIT,
        block__commit__customer_id=customer_id,
        block__commit__billing=Commit.PREPAID,
        kind__in=(LedgerEntry.USAGE, LedgerEntry.EXPIRY, *LedgerEntry.TAKEN_BACK),
    )
    return sum((c.amount for c in committed), ZERO) + sum((e.amount for e in moved), ZERO)


def threshold_open(invoice: Invoice) -> bool:
    """Whether the threshold invoice bills part of the part of a period under
    way (no close or immediate plan change has billed that part yet, taking the
    threshold invoice off)."""
    subscription = invoice.subscription
    part_start = max(
        subscription.usage_from or subscription.current_period_start,
        subscription.current_period_start,
    )
    return subscription.status in Subscription.LIVE and invoice.period_start >= part_start


def check_properties(customer_id: int, scenario: Scenario) -> None:
    t0, t1, t2 = scenario.windows
    left, right, union = (
        earned(customer_id, t0, t1),
        earned(customer_id, t1, t2),
        earned(customer_id, t0, t2),
    )
    # 1. Adjacent windows add up, in total and per row of every view.
    for part in ("billed", "accrued"):
        assert getattr(left.total, part) + getattr(right.total, part) == getattr(
            union.total, part
        ), part
    for view in VIEWS:
        assert added(by_view(left, view), by_view(right, view)) == by_view(union, view), view
    # 3. Every view has the same totals, and its rows add up to them.
    for window in (left, right, union):
        total = window.total
        for view in VIEWS:
            rows = window.rows_by(view)
            assert sum((r.billed for r in rows), ZERO) == total.billed, view
            assert sum((r.accrued for r in rows), ZERO) == total.accrued, view
    # 2. The window covering everything earns from invoiced lines what they billed
    # (less what prepaid commits still defer), once every period they bill has
    # passed (nothing is earned ahead of time: read as of the window's end, what
    # was invoiced by NOW).
    whole = earned_window(
        start=EVERYTHING[0],
        end=EVERYTHING[1],
        currency="USD",
        now=EVERYTHING[1],
        customers=[customer_id],
    )
    assert whole.total.billed == billed_net(customer_id)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_windows_add_up_and_the_whole_life_earns_what_was_billed(db, scenario):
    customer_id = built(scenario)
    # What the examples made (--hypothesis-show-statistics).
    invoiced = Invoice.objects.filter(customer_id=customer_id).values_list("reason", flat=True)
    for reason in set(invoiced):
        event(f"invoice: {reason}")
    kinds = InvoiceLine.objects.filter(invoice__customer_id=customer_id).values_list(
        "kind", flat=True
    )
    for kind in set(kinds):
        event(f"line: {kind}")
    if CreditNote.objects.filter(customer_id=customer_id).exists():
        event("credit note")
    terms = scenario.terms
    event(f"{terms.meter} {terms.pricing['scheme']}")
    for name in ("seat_price", "minimum", "threshold"):
        if getattr(terms, name) is not None:
            event(name)
    check_properties(customer_id, scenario)


def test_a_seat_change_accrues_up_to_now_never_ahead(db):
    """A seat change in the open period charges the seats for the rest of the
    period on the invoice that closes it: until then the charge accrues,
    straight-line over the rest of the period, but only up to NOW (nothing is
    earned ahead of time): a window after NOW earns none of it, and windows
    across NOW still add up."""
    seat_price = Terms(
        base_fee=ZERO,
        meter="prompts",
        pricing={"scheme": "per_unit", "unit_price": "1", "per": "1"},
        included=0,
        seat_price=Decimal("30.00"),
        minimum=None,
        threshold=None,
    )
    scenario = Scenario(
        terms=seat_price,
        zone="UTC",
        anchor=Subscription.CALENDAR,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        seats=1,
        usage=(),
        late=(),
        punctual=True,
        coupon_percent=None,
        commit=None,
        change=None,
        seat_change=(2, datetime(2026, 11, 16, tzinfo=UTC)),
        threshold_checks=(),
        closes=(),
        credit=None,
        windows=(
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 11, 28, tzinfo=UTC),  # after NOW
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
    )
    customer_id = built(scenario)
    # 30.00 for 15 of November's 30 days: 15.00, 1.00 a day, of which the 11 days
    # from 16 Nov to NOW (27 Nov) are earned.
    assert earned(customer_id, *EVERYTHING).total.accrued == Decimal("11.00")
    after_now = earned(customer_id, scenario.windows[1], scenario.windows[2])
    assert after_now.total.accrued == Decimal("0.00")
    check_properties(customer_id, scenario)


def test_a_threshold_invoice_before_a_plan_change_is_billed_by_the_change(db):
    """Found by the property test (the identity's first cut left out every
    threshold invoice of an open period): a threshold invoice, then an immediate
    plan change in the same period. The change's invoice bills the part's usage
    (0.01) and takes the threshold invoice off (-0.01): 0.00; earned counts the
    usage once, 0.01, what the two invoices billed together."""
    scenario = Scenario(
        terms=Terms(
            base_fee=ZERO,
            meter="prompts",
            pricing={"scheme": "per_unit", "unit_price": "0.005", "per": "1"},
            included=0,
            seat_price=None,
            minimum=None,
            threshold=Decimal("0.01"),
        ),
        zone="UTC",
        anchor=Subscription.ANNIVERSARY,
        start=datetime(2026, 10, 23, 23, 45, 36, tzinfo=UTC),
        seats=1,
        usage=(Usage(at=USAGE_FROM, quantity=1, model=None),),
        late=(),
        punctual=False,
        coupon_percent=None,
        commit=None,
        change=(
            Terms(
                base_fee=ZERO,
                meter="prompts",
                pricing={"scheme": "per_unit", "unit_price": "0.0001", "per": "1"},
                included=0,
                seat_price=None,
                minimum=None,
                threshold=None,
            ),
            datetime(2026, 10, 24, 1, 23, 32, tzinfo=UTC),
        ),
        seat_change=None,
        threshold_checks=(datetime(2026, 10, 24, 0, 34, 34, tzinfo=UTC),),
        closes=(datetime(2026, 11, 20, tzinfo=UTC),),
        credit=None,
        windows=(
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
            datetime(2026, 11, 1, tzinfo=UTC),
        ),
    )
    customer_id = built(scenario)
    invoices = Invoice.objects.filter(customer_id=customer_id)
    assert sorted((i.reason, i.subtotal) for i in invoices) == [
        ("plan_change", Decimal("0.00")),
        ("start", Decimal("0.00")),
        ("threshold", Decimal("0.01")),
    ]
    assert earned(customer_id, *EVERYTHING).total.billed == Decimal("0.01")
    check_properties(customer_id, scenario)

"""The demo's history, for load_demo: two demo customers subscribed since the start of
last month, the usage their product sends each day, and their periods closed by the
real close, so that last month has real usage and finalized, numbered invoices (what
"Simulate prices" rates, what the portal and the dashboard show).

Everything goes through the services a real install uses: subscription_create,
events_ingest (each day's events sent at the end of that day, as the product would
have sent them), periods_close at each moment the beat would have closed a period (recording history
on purpose: invoices.issue_dates.history_recorded dates each invoice then), and
invoice_mark_paid for what the customers paid by now. Safe to run again: a customer
who has ever had a subscription is not subscribed again, and the usage of a day has
fixed event ids, so a second run stores no event twice; a later run adds the days since.
"""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from billing.invoicing.close import CloseResult, periods_close
from billing.models import Subscription, SubscriptionChange
from billing.subscriptions.lifecycle import subscription_create
from billing.usage.ingestion import MAX_EVENTS_PER_BATCH, events_ingest
from common.customer_text import customer_zone
from common.periods import month_start
from customers.models import Customer
from invoices.issue_dates import history_recorded
from invoices.models import Invoice
from invoices.settlement import invoice_mark_paid
from plans.models import Plan

DAY = timedelta(days=1)
# A demo customer pays an invoice this long after it is issued (before it is due).
PAID_AFTER = timedelta(days=10)


@dataclass(frozen=True)
class DemoSubscription:
    customer: str  # external_id
    plan: str  # code
    seats: int
    # What the customer's product sends each day: (hour UTC, event) pairs.
    daily: str  # "llm" or "prompts"


DEMO_SUBSCRIPTIONS = (
    # Team (hybrid): 49.00 and 10.00 a seat; LLM tokens past 1,000,000 on two tiers,
    # listed by model on the invoice.
    DemoSubscription("acme", "team_hybrid", 3, "llm"),
    # AI Assistant: 19.99; prompts past 200 at 0.05.
    DemoSubscription("globex", "ai_assistant", 1, "prompts"),
)

MODELS = (("gpt-4o-mini", 6), ("gpt-4o", 3), ("o3-mini", 1))  # model, weight
WORKFLOWS = ("chat", "summarize", "agent")


def _llm_events(rng: random.Random) -> list[tuple[int, str, dict]]:
    """A day of LLM completions: 6 to 10, each 15,000 to 40,000 tokens."""
    events = []
    for _ in range(rng.randint(6, 10)):
        model = rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
        input_tokens = rng.randrange(10_000, 30_000, 50)
        output_tokens = rng.randrange(5_000, 10_000, 50)
        properties = {
            "model": model,
            "workflow": rng.choice(WORKFLOWS),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
        events.append((rng.randint(7, 20), "llm.completion", properties))
    return events


def _prompt_events(rng: random.Random) -> list[tuple[int, str, dict]]:
    """A day of prompts: 8 to 18."""
    return [(rng.randint(8, 21), "prompt", {}) for _ in range(rng.randint(8, 18))]


DAILY = {"llm": _llm_events, "prompts": _prompt_events}


def day_events(demo: DemoSubscription, day: datetime) -> list[dict]:
    """The events the demo customer's product sends on `day` (midnight UTC): the same
    ones (ids, times, properties) on every run."""
    # Made-up usage, the same for a day on every run: no secret is drawn here.
    rng = random.Random(f"{demo.customer}-{day:%Y-%m-%d}")  # noqa: S311
    made = sorted(DAILY[demo.daily](rng), key=lambda event: event[0])
    return [
        {
            "id": f"demo-{demo.customer}-{day:%Y%m%d}-{n}",
            "customer": demo.customer,
            "event_name": name,
            "timestamp": (day + timedelta(hours=hour, minutes=n)).isoformat(),
            "properties": properties,
        }
        for n, (hour, name, properties) in enumerate(made)
    ]


def _subscribe(demo: DemoSubscription, now: datetime) -> Subscription | None:
    """Subscribe the demo customer from the start of last month in its zone (calendar
    months), unless it has ever had a subscription or is not there."""
    customer = Customer.objects.filter(external_id=demo.customer).first()
    plan = Plan.objects.filter(code=demo.plan).first()
    if customer is None or plan is None or customer.subscriptions.exists():
        return None
    return subscription_create(
        customer=customer,
        plan=plan,
        start=month_start(now.astimezone(customer_zone(customer)), months=-1),
        seats=demo.seats,
        billing_anchor=Subscription.CALENDAR,
    )


def _usage_from(subscription: Subscription, now: datetime) -> datetime:
    """Where the demo's usage of a live subscription starts: its open period, after
    its last change by `now` (a migration or a seat change bills the usage before it)."""
    changes = SubscriptionChange.objects.filter(subscription=subscription, effective_at__lte=now)
    last_change = max(changes.values_list("effective_at", flat=True), default=None)
    return max(subscription.current_period_start, last_change or subscription.started_at)


def _send_usage(now: datetime) -> int:
    """Each demo customer's usage from its live subscription's open period up to
    `now`, a day a batch, sent as of the end of that day. Returns the events stored."""
    since = {}
    for demo in DEMO_SUBSCRIPTIONS:
        subscription = Subscription.objects.filter(
            customer__external_id=demo.customer, status__in=Subscription.LIVE
        ).first()
        if subscription is not None:
            since[demo] = _usage_from(subscription, now)
    if not since:
        return 0
    day = min(since.values()).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stored = 0
    while day <= now:
        sent_at = min(day + DAY, now)
        events = [
            event
            for demo, start in since.items()
            for event in day_events(demo, day)
            if start <= datetime.fromisoformat(event["timestamp"]) <= now
        ]
        for first in range(0, len(events), MAX_EVENTS_PER_BATCH):
            batch = events[first : first + MAX_EVENTS_PER_BATCH]
            stored += events_ingest(events=batch, now=sent_at).accepted
        day += DAY
    return stored


def _close_as_the_beat_would(*, since: datetime | None, now: datetime) -> CloseResult:
    """Close every period ended by `now` at the moment it ended, in order, as the beat
    would have: each invoice finalized (and numbered) when it was issued, the start
    invoices first (at `since`, the last start of a new subscription)."""
    moments = [since] if since is not None else []
    closed = finalized = 0
    while True:
        for moment in moments:
            result = periods_close(as_of=moment)
            closed += result.periods_closed
            finalized += result.invoices_finalized
        due = (
            Subscription.objects.filter(status__in=Subscription.LIVE, current_period_end__lte=now)
            .order_by("current_period_end")
            .values_list("current_period_end", flat=True)
            .first()
        )
        if due is None:
            break
        moments = [due]
    result = periods_close(as_of=now)
    return CloseResult(closed + result.periods_closed, finalized + result.invoices_finalized)


def _pay_what_was_due(subscriptions: list[Subscription], now: datetime) -> int:
    """The new subscriptions' invoices due by `now`, paid PAID_AFTER their issue."""
    due = Invoice.objects.filter(
        subscription__in=subscriptions, status=Invoice.FINALIZED, due_at__lte=now
    ).order_by("id")
    for invoice in due:
        invoice_mark_paid(
            invoice=invoice,
            reference="demo bank transfer",
            now=now,
            paid_at=invoice.finalized_at + PAID_AFTER,
        )
    return len(due)


def demo_history_load(*, now: datetime) -> list[str]:
    """Subscribe the demo customers (once), send their usage up to `now`, close every
    period that has ended (finalizing its invoice, as the beat does), and record the
    new subscriptions' invoices due by now as paid. Returns what it created, in words."""
    subscribed = [made for demo in DEMO_SUBSCRIPTIONS if (made := _subscribe(demo, now))]
    created = [f"subscription {s.customer.external_id} to {s.version}" for s in subscribed]
    events = _send_usage(now)
    if events:
        created.append(f"{events} usage events")
    # The past months recorded on purpose: each invoice dated when the beat would
    # have issued it (invoices.issue_dates), which no close does on its own.
    with history_recorded():
        closed = _close_as_the_beat_would(
            since=max((s.started_at for s in subscribed), default=None), now=now
        )
    if closed.periods_closed:
        created.append(f"{closed.periods_closed} periods closed")
    if closed.invoices_finalized:
        created.append(f"{closed.invoices_finalized} invoices finalized")
    paid = _pay_what_was_due(subscribed, now)
    if paid:
        created.append(f"{paid} invoices paid")
    return created

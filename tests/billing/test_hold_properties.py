"""A property of holds (Hypothesis): in any order of holds, settles, releases,
expiries, usage a check allowed first, and top-ups, a prepaid balance keeps back
what its open holds hold and never goes below zero, a hard cap is never passed
(counting what is held), and the period's usage is exactly what was settled and
used: a money balance drew 0.10 for each of those units, no more, no less."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import time_machine
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from billing.hold_models import Hold
from billing.usage.check import live_read, usage_check
from billing.usage.held import held_open
from billing.usage.holds import hold_open, hold_release, hold_settle, holds_expire
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from customers.services import customer_create
from plans.models import Meter, Plan
from plans.services import meter_create
from tests.factories import balance, hard_cap, published_version, subscribe
from wallets.purchases import money_top_up
from wallets.selectors import money_drawn, wallet_usable_balance

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
START = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
PRICE = D("0.10")
CAP = D(10)
EXAMPLES = itertools.count()

OPS = st.one_of(
    st.tuples(st.just("hold"), st.integers(1, 15), st.integers(1, 30)),
    st.tuples(st.just("settle"), st.integers(0, 9), st.integers(0, 100)),
    st.tuples(st.just("release"), st.integers(0, 9)),
    st.tuples(st.just("use"), st.integers(1, 15)),
    st.tuples(st.just("top_up"), st.integers(1, 2)),
    st.tuples(st.just("wait"), st.integers(1, 40)),
)


def catalog() -> None:
    if Meter.objects.filter(code="gpu_seconds").exists():
        return
    meter_create(
        code="gpu_seconds",
        name="GPU seconds",
        event_name="gpu",
        aggregation=Meter.SUM,
        value_property="seconds",
    )
    published_version("gpu_balance", charges=(balance("gpu_seconds", str(PRICE)),))
    published_version("gpu_cap", charges=(hard_cap("gpu_seconds", int(CAP)),))


def use(external_id: str, quantity: int, now: datetime, step: int) -> bool:
    """Usage as a product sends it: only after a check (counting the holds) allowed it."""
    live = live_read(external_id=external_id, now=now)
    allowed = usage_check(
        customer=live.customer,
        subscription=live.subscription,
        meter_code="gpu_seconds",
        quantity=D(quantity),
        now=now,
        balances=live.balances,
        held=held_open(customer_id=live.customer.pk, now=now),
    ).allowed
    if allowed:
        event = {"id": f"use-{step}", "customer": external_id, "event_name": "gpu"}
        event |= {"timestamp": now.isoformat(), "properties": {"seconds": quantity}}
        assert events_ingest(events=[event], now=now).accepted == 1
    return allowed


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.sampled_from(["gpu_balance", "gpu_cap"]), ops=st.lists(OPS, max_size=14))
# Besides the search: two holds a cap cannot take both, usage a held balance cannot pay.
@example(plan="gpu_cap", ops=[("hold", 6, 10), ("hold", 6, 10), ("use", 5)])
@example(plan="gpu_balance", ops=[("hold", 15, 10), ("use", 10), ("settle", 0, 50)])
def test_holds_never_let_a_balance_or_a_cap_be_passed_and_bill_what_was_settled(db, plan, ops):
    catalog()
    code = f"h{next(EXAMPLES)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    subscribe(customer, Plan.objects.get(code=plan).versions.get(), NOV_1)
    if plan == "gpu_balance":
        money_top_up(customer=customer, amount=D("2.00"), currency="USD", now=NOV_1)
    meter = meter_cache.by_code("gpu_seconds")
    billed = D(0)
    now = START
    for step, op in enumerate(ops):
        now += timedelta(minutes=1)
        with time_machine.travel(now, tick=False):
            name = op[0]
            opened = list(Hold.objects.filter(customer=customer, status=Hold.OPEN).order_by("pk"))
            if name == "hold":
                hold_open(
                    external_id=code,
                    meter="gpu_seconds",
                    quantity=D(op[1]),
                    properties={},
                    key=f"k{step}",
                    expires_in_seconds=op[2] * 60,
                    now=now,
                )
            elif name == "settle" and opened:
                hold = opened[op[1] % len(opened)]
                quantity = (hold.quantity * op[2] / 100).quantize(D(1))
                if hold.expires_at > now:
                    hold_settle(public_id=hold.public_id, quantity=quantity, now=now)
                    billed += quantity
            elif name == "release" and opened:
                hold = opened[op[1] % len(opened)]
                if hold.expires_at > now:
                    hold_release(public_id=hold.public_id, reason="failed", now=now)
            elif name == "use" and use(code, op[1], now, step):
                billed += op[1]
            elif name == "top_up" and plan == "gpu_balance":
                money_top_up(customer=customer, amount=D(op[1]), currency="USD", now=now)
            elif name == "wait":
                now += timedelta(minutes=op[1])
                holds_expire(now=now)

        held = held_open(customer_id=customer.pk, now=now)
        used = usage_quantities(customer_id=customer.pk, meters=[meter], start=NOV_1, end=DEC_1)
        # The period's usage is exactly what was settled and used.
        assert used[meter.id] == billed
        if plan == "gpu_balance":
            usable = wallet_usable_balance(
                customer_id=customer.pk, kind="money", currency="USD", now=now
            )
            # What the open holds keep back is there, and nothing went below zero.
            assert usable - held.wallet("money", "USD") >= 0
            drawn = money_drawn(customer_id=customer.pk, currency="USD", start=NOV_1, end=DEC_1)
            assert drawn == billed * PRICE
        else:
            assert billed + held.quantity("gpu_seconds") <= CAP

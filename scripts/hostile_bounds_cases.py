"""Money and dates out of bounds (issue 73's attacker): a cost rate or a price whose
unit costs more than an amount holds is a 400 naming its field and stores nothing,
and the margins still answer for every grouping; a month that has not ended cannot be
locked, nor a lock lifted without a reason; a payment dated before its invoice was
issued or in the future is a 400 and the invoice stays unpaid; an exchange rate of
zero, negative, non-finite or over 1e9, of one currency to itself, or from a moment
out of range is a 400 naming its field and stores nothing."""

from datetime import UTC, datetime, timedelta

from hostile_world import Case, World, meter_made, plan_made

# The attacker's rate: 99999999999999.99 per 0.0000000001 is 10^24 a unit.
HUGE = {"unit_cost": "99999999999999.99", "per": "0.0000000001"}
GROUPINGS = ("customer", "plan", "meter", "model")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _setup(world: World) -> dict:
    """A meter grouped by model, a plan of 10.00 and one of 30.00 a month, and a
    customer moved from the first to the second at once: the change's invoice is
    finalized and left unpaid."""
    run = world.run
    meter = meter_made(world, "bound")
    for code, fee in ((f"{run}_blow", "10.00"), (f"{run}_bhigh", "30.00")):
        plan_made(world, code, meter, fee=fee)
    customer = f"{run}-bounds"
    world.made_with(
        "all",
        "POST",
        "/api/v1/customers",
        {"external_id": customer, "name": "Bounds", "currency": "USD", "timezone": "UTC"},
    )
    subscription = world.made_with(
        "all",
        "POST",
        "/api/v1/subscriptions",
        {
            "customer": customer,
            "plan": f"{run}_blow",
            "start": _stamp(datetime.now(UTC) - timedelta(hours=1)),
        },
    )
    changed = world.made_with(
        "all",
        "POST",
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        {"plan": f"{run}_bhigh", "effective": "immediate"},
    )
    invoice = world.made_with(
        "read", "GET", f"/api/v1/invoices/{((changed or {}).get('invoice') or {}).get('id')}", None
    )
    if invoice.get("status") != "finalized" or not invoice.get("issued_at"):
        raise SystemExit(f"the plan change's invoice is not one to pay: {invoice}")
    return {"meter": meter, "plan": f"{run}_bhigh", "invoice": invoice}


def _field_refused(status: int, answer, field: str) -> list[str]:
    if status != 400:
        return [f"{status}, expected 400"]
    fields = ((answer or {}).get("error") or {}).get("fields") or {}
    return [] if field in str(fields) else [f"no error on {field}: {answer}"]


def _cost_rate_case(world: World, made: dict) -> Case:
    def check() -> list[str]:
        rate = {
            "meter": made["meter"],
            "when": {},
            "currency": "USD",
            "effective_from": datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z"),
            **HUGE,
        }
        status, answer = world.json("admin", "POST", "/api/v1/cost-rates", rate)
        problems = _field_refused(status, answer, "unit_cost")
        status, listed = world.json(
            "finance:read", "GET", f"/api/v1/cost-rates?meter={made['meter']}"
        )
        if status != 200 or (listed or {}).get("results"):
            problems.append(f"cost rates after: {status} {listed}")
        return problems

    return Case("bounds: a unit costing 10^24 is refused, no rate stored", check)


# A pair no case ever gives a rate: whatever a refused POST stored would show.
UNUSED_PAIR = ("ISK", "HUF")
BAD_EXCHANGE_RATES = [
    ("rate", {"rate": "0"}),
    ("rate", {"rate": "-0.5"}),
    ("rate", {"rate": "NaN"}),
    ("rate", {"rate": "Infinity"}),
    ("rate", {"rate": "1000000000.5"}),
    ("quote", {"quote": UNUSED_PAIR[0]}),
    ("effective_from", {"effective_from": "9999-12-31T23:00:00-05:00"}),
]


def _exchange_rate_case(world: World, field: str, change: dict) -> Case:
    def check() -> list[str]:
        base, quote = UNUSED_PAIR
        rate = {
            "base": base,
            "quote": quote,
            "rate": "150",
            "effective_from": "2026-11-01T00:00:00Z",
            "source": "attacker",
        } | change
        status, answer = world.json("admin", "POST", "/api/v1/exchange-rates", rate)
        problems = _field_refused(status, answer, field)
        status, listed = world.json(
            "finance:read", "GET", f"/api/v1/exchange-rates?base={base}&quote={quote}"
        )
        if status != 200 or (listed or {}).get("results"):
            problems.append(f"exchange rates after: {status} {listed}")
        return problems

    return Case(f"bounds: an exchange rate with {change} is refused, none stored", check)


def _price_case(world: World) -> Case:
    def check() -> list[str]:
        plan = {
            "code": f"{world.run}_bhuge",
            "name": "huge",
            "currency": "USD",
            "interval": "month",
            "base_fee": "0",
            "publish": True,
            "charges": [
                {
                    "meter": f"{world.run}_bound",
                    "model": "overage",
                    "included_units": "0",
                    "pricing": {"scheme": "per_unit", "unit_price": HUGE["unit_cost"]}
                    | {"per": HUGE["per"]},
                }
            ],
        }
        status, answer = world.json("admin", "POST", "/api/v1/plans", plan)
        problems = [] if status == 400 else [f"{status}, expected 400: {answer}"]
        status, _ = world.call("read", "GET", f"/api/v1/plans/{world.run}_bhuge")
        return problems + ([] if status == 404 else [f"the plan after: {status}"])

    return Case("bounds: a price of 10^24 a unit is refused, no plan stored", check)


def _margins_case(world: World, grouping: str) -> Case:
    def check() -> list[str]:
        today = datetime.now(UTC).date()
        query = f"period_start={today.replace(day=1)}&period_end={today + timedelta(days=1)}"
        status, _ = world.call(
            "finance:read", "GET", f"/api/v1/margins?{query}&group_by={grouping}&currency=USD"
        )
        return [] if status in (200, 400) else [f"{status}, expected an answer"]

    return Case(f"bounds: margins by {grouping} answer", check)


def _month_case(world: World, month: str, what: str) -> Case:
    def check() -> list[str]:
        status, answer = world.json("admin", "POST", f"/api/v1/journal/periods/{month}/lock")
        problems = _field_refused(status, answer, "month")
        status, locks = world.json("finance:read", "GET", "/api/v1/journal/periods")
        held = [lock for lock in (locks or {}).get("results", []) if lock.get("month") == month]
        return problems + ([f"{month} locked after: {held}"] if held else [])

    return Case(f"dates: {what} ({month}) cannot be locked", check)


def _unlock_case(world: World) -> Case:
    def check() -> list[str]:
        status, answer = world.json(
            "admin", "POST", "/api/v1/journal/periods/2020-01/unlock", {"reason": "  "}
        )
        return _field_refused(status, answer, "reason")

    return Case("dates: a lock is not lifted without a reason", check)


def _payment_case(world: World, made: dict, paid_at: str, what: str) -> Case:
    invoice = made["invoice"]

    def check() -> list[str]:
        path = f"/api/v1/invoices/{invoice['id']}"
        status, answer = world.json(
            "admin", "POST", f"{path}/pay", {"reference": "hostile", "paid_at": paid_at}
        )
        problems = _field_refused(status, answer, "paid_at")
        status, after = world.json("read", "GET", path)
        if (after or {}).get("paid_at") is not None:
            problems.append(f"the invoice was paid: {after.get('paid_at')}")
        return problems

    return Case(f"dates: a payment dated {what} is refused, the invoice unpaid", check)


def cases(world: World) -> list[Case]:
    made = _setup(world)
    now = datetime.now(UTC)
    this_month = now.strftime("%Y-%m")
    next_month = (now.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    issued = datetime.fromisoformat(made["invoice"]["issued_at"].replace("Z", "+00:00"))
    return [
        _cost_rate_case(world, made),
        _price_case(world),
        *(_exchange_rate_case(world, field, change) for field, change in BAD_EXCHANGE_RATES),
        *(_margins_case(world, grouping) for grouping in GROUPINGS),
        _month_case(world, this_month, "the current month"),
        _month_case(world, next_month, "next month"),
        _month_case(world, "9999-12", "the last month there is"),
        _unlock_case(world),
        _payment_case(world, made, "2019-01-01T00:00:00Z", "years before its invoice"),
        _payment_case(world, made, _stamp(issued - timedelta(minutes=1)), "before its issue"),
        _payment_case(world, made, _stamp(now + timedelta(days=1)), "tomorrow"),
    ]

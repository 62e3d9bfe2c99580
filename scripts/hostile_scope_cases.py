"""Scopes (API.md: a call outside a key's scopes is a 403): each kind of key against
each finance read, the other reads, ingestion, check and writes; a refused write
must store nothing."""

from datetime import UTC, datetime, timedelta

from hostile_world import Case, World, path_id

KINDS = ["read", "finance:read", "admin", "events:write"]
WINDOW = "period_start={start}&period_end={end}"


def _setup(world: World) -> dict:
    """A meter, a free plan on it, a customer subscribed since an hour ago."""
    run = world.run
    meter, plan, customer = f"{run}_calls", f"{run}_plan", f"{run}-scopes"
    world.made_with(
        "all",
        "POST",
        "/api/v1/meters",
        {"code": meter, "name": "calls", "event_name": f"{run}.call", "aggregation": "count"},
    )
    free = {"scheme": "per_unit", "unit_price": "0"}
    world.made_with(
        "all",
        "POST",
        "/api/v1/plans",
        {
            "code": plan,
            "name": "scopes",
            "currency": "USD",
            "interval": "month",
            "base_fee": "0",
            "publish": True,
            "charges": [
                {"meter": meter, "model": "overage", "included_units": "0", "pricing": free}
            ],
        },
    )
    world.made_with(
        "all",
        "POST",
        "/api/v1/customers",
        {"external_id": customer, "name": customer, "currency": "USD", "timezone": "UTC"},
    )
    now = datetime.now(UTC)
    world.made_with(
        "all",
        "POST",
        "/api/v1/subscriptions",
        {
            "customer": customer,
            "plan": plan,
            "start": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    day = now.date()
    return {
        "meter": meter,
        "customer": customer,
        "event_name": f"{run}.call",
        "timestamp": (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finance_reads": [
            "/api/v1/margins?"
            + WINDOW.format(start=day - timedelta(days=1), end=day + timedelta(days=1)),
            f"/api/v1/cost-rates?meter={meter}",
            f"/api/v1/journal?from={day}&to={day + timedelta(days=1)}",
            f"/api/v1/journal.csv?from={day}&to={day + timedelta(days=1)}",
            f"/api/v1/journal.csv?from={day}&to={day + timedelta(days=1)}&format=xero",
        ],
        "reads": [
            "/api/v1/customers",
            f"/api/v1/customers/{path_id(customer)}",
            f"/api/v1/customers/{path_id(customer)}/usage",
            "/api/v1/plans",
            "/api/v1/invoices",
        ],
    }


def _status_case(world: World, kind, method, path, expected: int, payload=None) -> Case:
    def check() -> list[str]:
        status, _ = world.call(kind, method, path, payload)
        return [] if status == expected else [f"{status}, expected {expected}"]

    return Case(f"scope {kind}: {method} {path.split('?')[0]}", check)


def _events_case(world: World, made: dict, kind: str) -> Case:
    """Only events:write ingests; a refused batch stores nothing (the usage read
    after counts exactly the event events:write sent)."""
    event = {
        "id": f"{kind.replace(':', '-')}-1",
        "customer": made["customer"],
        "event_name": made["event_name"],
        "timestamp": made["timestamp"],
        "properties": {},
    }
    expected = 202 if kind == "events:write" else 403

    def check() -> list[str]:
        status, _ = world.call(kind, "POST", "/api/v1/events", {"events": [event]})
        return [] if status == expected else [f"{status}, expected {expected}"]

    return Case(f"scope {kind}: POST /api/v1/events", check)


def _stored_case(world: World, made: dict) -> Case:
    def check() -> list[str]:
        path = f"/api/v1/customers/{path_id(made['customer'])}/usage"
        status, answer = world.json("read", "GET", path)
        if status != 200 or not isinstance(answer, dict):
            return [f"usage read: {status}"]
        lines = [line for line in answer.get("lines", []) if line.get("meter") == made["meter"]]
        quantity = lines[0].get("quantity") if lines else None
        # The one event events:write sent; the refused keys' batches stored nothing.
        return [] if quantity in ("1", 1) else [f"usage {quantity!r}, expected 1"]

    return Case("scope: refused batches stored nothing", check)


def _refused_write_case(world: World, made: dict, kind: str) -> Case:
    """A cost rate posted by a key without `admin`: 403, and no rate stored."""
    rate = {
        "meter": made["meter"],
        "unit_cost": "0.01",
        "currency": "USD",
        "effective_from": datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z"),
    }

    def check() -> list[str]:
        problems = []
        status, _ = world.call(kind, "POST", "/api/v1/cost-rates", rate)
        if status != 403:
            problems.append(f"{status}, expected 403")
        status, listed = world.json("finance:read", "GET", made["finance_reads"][1])
        if status != 200 or not isinstance(listed, dict) or listed.get("results"):
            problems.append(f"cost rates after: {status} {listed}")
        return problems

    return Case(f"scope {kind}: POST /api/v1/cost-rates stores nothing", check)


def cases(world: World) -> list[Case]:
    made = _setup(world)
    found = []
    for kind in KINDS:
        for path in made["finance_reads"]:
            found.append(
                _status_case(world, kind, "GET", path, 200 if kind == "finance:read" else 403)
            )
        for path in made["reads"]:
            found.append(_status_case(world, kind, "GET", path, 200 if kind == "read" else 403))
        found.append(_events_case(world, made, kind))
        check = f"/api/v1/customers/{path_id(made['customer'])}/check"
        allowed = kind in ("read", "events:write")
        found.append(
            _status_case(
                world, kind, "POST", check, 200 if allowed else 403, {"meter": made["meter"]}
            )
        )
        if kind != "admin":
            found.append(_refused_write_case(world, made, kind))
    found.append(_stored_case(world, made))
    return found

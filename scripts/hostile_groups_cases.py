"""Distinct property values without end (issue 73's attacker sent 100,000 `model`s):
one customer sends more distinct values of a grouped property than
BILLING_GROUP_VALUES_LIMIT (read from the environment the server shares, else its
default, 500), in batches of 1,000. Every event is accepted and stored; the 202s name
under "other" exactly the events past the limit; the usage read by that property
answers at most the limit's groups plus one "other" group, holding the rest; the
usage's total is every event's."""

import os
from datetime import UTC, datetime, timedelta

from hostile_world import Case, World, meter_made, plan_made

BATCH = 1000  # the API's most events a batch


def _send(world: World, limit: int) -> dict:
    run = world.run
    meter = meter_made(world, "grp")
    plan_made(world, f"{run}_grp", meter, fee="0", unit_price="0.01")
    customer = f"{run}-groups"
    world.made_with(
        "all",
        "POST",
        "/api/v1/customers",
        {"external_id": customer, "name": "Groups", "currency": "USD", "timezone": "UTC"},
    )
    now = datetime.now(UTC)
    world.made_with(
        "all",
        "POST",
        "/api/v1/subscriptions",
        {
            "customer": customer,
            "plan": f"{run}_grp",
            "start": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    sent = limit + 250
    stamp = (now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answers = []
    for first in range(0, sent, BATCH):
        events = [
            {
                "id": f"{run}-g{n}",
                "customer": customer,
                "event_name": f"{run}.grp",
                "timestamp": stamp,
                "properties": {"model": f"model-{n:06d}"},
            }
            for n in range(first, min(first + BATCH, sent))
        ]
        status, answer = world.json("events:write", "POST", "/api/v1/events", {"events": events})
        answers.append((status, answer))
    return {"customer": customer, "meter": meter, "sent": sent, "answers": answers}


def _said_case(made: dict, limit: int) -> Case:
    def check() -> list[str]:
        problems, others = [], []
        for status, answer in made["answers"]:
            if status != 202:
                problems.append(f"a batch answered {status}")
                continue
            if (answer or {}).get("rejected"):
                problems.append(f"rejected: {answer['rejected'][:2]}")
            others += [o.get("id") for o in (answer or {}).get("other", [])]
        expected = made["sent"] - limit
        if len(others) != expected:
            problems.append(f"{len(others)} events said 'other', expected {expected}")
        return problems

    return Case(f"groups: {made['sent']} values, every event accepted, the 202 says other", check)


def _read_case(world: World, made: dict, limit: int) -> Case:
    def check() -> list[str]:
        path = f"/api/v1/customers/{made['customer']}/usage?group_by=model"
        status, answer = world.json("read", "GET", path)
        if status != 200 or not isinstance(answer, dict):
            return [f"usage: {status}"]
        lines = [line for line in answer.get("lines", []) if line.get("meter") == made["meter"]]
        if not lines:
            return ["no usage line for the meter"]
        line, problems = lines[0], []
        groups = line.get("groups") or []
        if len(groups) > limit + 1:
            problems.append(f"{len(groups)} groups, at most {limit + 1} expected")
        other = [group for group in groups if group.get("other")]
        if len(other) != 1 or str(other[0].get("quantity")) != str(made["sent"] - limit):
            problems.append(f"the other group: {other[:1]}")
        if str(line.get("quantity")) != str(made["sent"]):
            problems.append(f"usage {line.get('quantity')!r}, expected {made['sent']}")
        return problems

    return Case("groups: the usage by model is bounded, other holds the rest", check)


def cases(world: World) -> list[Case]:
    limit = int(os.environ.get("BILLING_GROUP_VALUES_LIMIT") or 500)
    made = _send(world, limit)
    return [_said_case(made, limit), _read_case(world, made, limit)]

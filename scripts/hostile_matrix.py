"""The hostile ingestion matrix's cases (scripts/hostile_ingest.py runs them): a Case
is one request and what it must do; the Matrix makes a run's customers, events and
cases."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ACCEPTED = {202}


@dataclass
class Case:
    name: str
    body: bytes | None = None
    # Event ids of good events in the body: stored exactly once if the batch is accepted.
    goods: list[str] = field(default_factory=list)
    # gids a hostile event may leave (the contract lets it be stored); anything else
    # found that is not a good event's is a failure.
    allowed: set[str] = field(default_factory=set)
    expect: set[int] = field(default_factory=lambda: set(ACCEPTED))
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # sent with Transfer-Encoding: chunked
    raw: bytes | None = None  # the whole request after the request line, as is
    method: str = "POST"
    authorized: bool = True
    # Goods already stored by an earlier case (a replay): counted, not sent anew.
    replay_of: str | None = None
    repeat: int = 1  # sent this many times at once (threads)
    customer: str = ""
    # Filled in when it runs.
    statuses: list[int] = field(default_factory=list)
    answer: dict | None = None


class Matrix:
    """The cases of one run, its customers and its events."""

    def __init__(self, run: str):
        self.run = run
        self.event_name = f"hostile.{run}"
        self.cases: list[Case] = []
        self.now = datetime.now(UTC)
        self.timestamp = (self.now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def customer(self, index: int) -> str:
        return f"{self.run}-{index:03d}"

    def event(self, customer: str, event_id, /, **changes) -> dict:
        event = {
            "id": event_id,
            "customer": customer,
            "event_name": self.event_name,
            "timestamp": self.timestamp,
            "properties": {"gid": event_id, "n": 1},
        }
        properties = changes.pop("properties", None)
        if properties is not None:
            event["properties"] = {"gid": event_id, **properties}
        event.update(changes)
        return event

    def add(self, name: str, customer: str | None = None, **kwargs) -> Case:
        case = Case(name=name, customer=customer or self.customer(len(self.cases)), **kwargs)
        self.cases.append(case)
        return case

    def goods(self, customer: str, count: int = 2, prefix: str = "g") -> list[dict]:
        return [self.event(customer, f"{prefix}{i}") for i in range(1, count + 1)]

    def batch_case(
        self, name: str, hostile, *, allowed=(), expect=None, ascii_only=True, **kwargs
    ) -> Case:
        """Two good events, then `hostile` (events, or a callable of the customer that
        returns them), in one batch sent as JSON: other scripts' characters escaped
        (\\u...), or as UTF-8 with `ascii_only=False`."""
        customer = self.customer(len(self.cases))
        goods = self.goods(customer)
        bad = hostile(customer) if callable(hostile) else hostile
        body = json.dumps({"events": [goods[0], *bad, goods[1]]}, ensure_ascii=ascii_only)
        return self.add(
            name,
            body=body.encode("utf-8", "surrogatepass"),
            goods=[g["id"] for g in goods],
            allowed=set(allowed),
            **({"expect": expect} if expect else {}),
            **kwargs,
        )

    def text_case(self, name: str, hostile_text: str, *, allowed=(), expect=None, **kwargs):
        """Two good events around `hostile_text` (JSON text, `{C}` for the customer,
        `{T}` for a valid timestamp, `{E}` for the event name), one batch."""
        customer = self.customer(len(self.cases))
        goods = self.goods(customer)
        middle = (
            hostile_text.replace("{C}", customer)
            .replace("{T}", self.timestamp)
            .replace("{E}", self.event_name)
        )
        body = f'{{"events": [{json.dumps(goods[0])}, {middle}, {json.dumps(goods[1])}]}}'
        return self.add(
            name,
            body=body.encode("utf-8", "surrogatepass"),
            goods=[g["id"] for g in goods],
            allowed=set(allowed),
            **({"expect": expect} if expect else {}),
            **kwargs,
        )

    def refused_case(self, name: str, body: bytes, expect: set[int], **kwargs) -> Case:
        """A request refused whole: the good events it carries must not be stored."""
        return self.add(name, body=body, expect=expect, **kwargs)

    def batch_bytes(self, customer: str, events: list[dict]) -> bytes:
        return json.dumps({"events": events}).encode()


def with_properties(properties: str, event_id: str = '"h1"') -> str:
    """A hostile event's JSON text for text_case, its properties as given."""
    return (
        '{"id": ' + event_id + ', "customer": "{C}", "event_name": "{E}", '
        '"timestamp": "{T}", "properties": ' + properties + "}"
    )


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth

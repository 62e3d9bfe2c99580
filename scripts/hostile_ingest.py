"""The hostile ingestion matrix: POST /api/v1/events sent what a careless or hostile
client sends, against a live server, each case in a batch beside good events.

Every case has a customer of its own (created through the API with a meter pair and a
plan of this run's own, so a run never meets another's data), and every good event
its own value of the property `gid`, which both meters group by. After the cases, the
usage read (GET .../usage?group_by=gid) is asked twice, at once and after the folder
has had time to fold (`--settle`): each good event of an accepted batch must count
exactly once on both meters (a sum of `n`=1 and a count), none of a refused batch
anywhere, and no hostile event the contract refuses.

    .venv/bin/python scripts/hostile_ingest.py --url http://127.0.0.1:8000 \
        --key-file var/dev-api-key.txt

Run the server as docs/running.md does (granian on PostgreSQL, the folder beside it)
with the rate limits off (API_THROTTLE_RATE=off): the matrix sends bursts. It prints a
table, a case a line, and the totals. Exit status: 0 clean; 1 on any 5xx, any good
event lost or doubled, any status outside the case's expected ones, or any event
stored that should not have been; 2 when the server cannot be set up.

Standard library only: the requests are built byte by byte (http.client), chunked
bodies and lying headers included.
"""

import argparse
import gzip
import http.client
import json
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlsplit

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


class Client:
    def __init__(self, url: str, key: str, timeout: float):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.key, self.timeout = key, timeout

    def request(self, method, path, body=None, headers=None, *, authorized=True):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            sent = dict(headers or {})
            if authorized:
                sent["Authorization"] = f"Bearer {self.key}"
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(
            method, path, body, {"Content-Type": "application/json"} if body else {}
        )
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None

    def send(self, case: Case) -> tuple[int, bytes]:
        """One request as the case describes it; status 0 when the server closed the
        connection without an answer (counted, not a 5xx)."""
        path = "/api/v1/events"
        headers = dict(case.headers)
        if case.authorized:
            headers["Authorization"] = f"Bearer {self.key}"
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            if case.raw is not None:
                connection.putrequest(case.method, path, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.endheaders()
                connection.send(case.raw)
            elif case.chunks is not None:
                headers["Transfer-Encoding"] = "chunked"
                connection.request(
                    case.method, path, body=iter(case.chunks), headers=headers, encode_chunked=True
                )
            else:
                connection.request(case.method, path, body=case.body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (TimeoutError, ConnectionError, http.client.RemoteDisconnected) as exc:
            return 0, str(exc).encode()
        finally:
            connection.close()


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


def build(matrix: Matrix) -> list[Case]:
    m = matrix
    ev, T = m.event, m.timestamp
    MIB = 1024 * 1024

    # The baseline and the sizes of batch the contract allows.
    customer = m.customer(len(m.cases))
    goods = m.goods(customer, 5)
    baseline = m.add(
        "5 good events", body=m.batch_bytes(customer, goods), goods=[g["id"] for g in goods]
    )
    m.add(
        "replay of the 5 (all duplicates)",
        body=baseline.body,
        replay_of=baseline.name,
        customer=baseline.customer,
    )
    changed = [dict(g, properties={"gid": g["id"], "n": 7}) for g in goods]
    m.add(
        "replay of the 5 with other values (the first wins)",
        body=m.batch_bytes(customer, changed),
        replay_of=baseline.name,
        customer=baseline.customer,
    )
    customer = m.customer(len(m.cases))
    many = m.goods(customer, 995) + [
        ev(customer, f"h{i}", properties={"n": " 5 "}) for i in range(1, 6)
    ]
    m.add(
        "995 good + 5 bad quantities (1,000)",
        body=m.batch_bytes(customer, many),
        goods=[g["id"] for g in many[:995]],
    )
    customer = m.customer(len(m.cases))
    m.add(
        "1,001 events (413, none stored)",
        body=m.batch_bytes(customer, m.goods(customer, 1001)),
        expect={413},
    )
    customer = m.customer(len(m.cases))
    same = [ev(customer, "g1")] * 1000
    m.add("1,000 copies of one event", body=m.batch_bytes(customer, same), goods=["g1"])
    customer = m.customer(len(m.cases))
    pair = m.goods(customer, 3)
    m.add(
        "one batch posted 8 times at once",
        body=m.batch_bytes(customer, pair),
        goods=[g["id"] for g in pair],
        repeat=8,
    )
    m.batch_case(
        "the same id twice in a batch, other values", lambda c: [ev(c, "g1", properties={"n": 9})]
    )
    m.text_case(
        "repeated keys in an event (the last wins)",
        '{"id": "x1", "id": "h1", "customer": "{C}", "event_name": "{E}", "timestamp": "{T}", '
        '"properties": {"gid": "h1", "n": 5, "n": 1}}',
        allowed={"h1"},
    )

    # Wrong types and shapes, per event.
    for label, hostile in [
        ("an event that is a string", lambda c: ["evt"]),
        ("an event that is null", lambda c: [None]),
        ("an event that is a number", lambda c: [42]),
        ("an event that is a list", lambda c: [[ev(c, "h1")]]),
        ("an empty event", lambda c: [{}]),
        ("id a number", lambda c: [ev(c, 5)]),
        ("id empty", lambda c: [ev(c, "")]),
        ("id null", lambda c: [ev(c, None)]),
        ("id of 256 characters", lambda c: [ev(c, "h" * 256)]),
        ("customer a number", lambda c: [ev(c, "h1", customer=1)]),
        ("customer null", lambda c: [ev(c, "h1", customer=None)]),
        ("customer missing", lambda c: [{k: v for k, v in ev(c, "h1").items() if k != "customer"}]),
        ("unknown customer", lambda c: [ev(c, "h1", customer=c + "-nobody")]),
        ("customer differing by case", lambda c: [ev(c, "h1", customer=c.upper())]),
        ("event_name a list", lambda c: [ev(c, "h1", event_name=["x"])]),
        ("event_name empty", lambda c: [ev(c, "h1", event_name="")]),
        ("event_name of 256 characters", lambda c: [ev(c, "h1", event_name="e" * 256)]),
        ("timestamp a number", lambda c: [ev(c, "h1", timestamp=1764000000)]),
        (
            "timestamp missing",
            lambda c: [{k: v for k, v in ev(c, "h1").items() if k != "timestamp"}],
        ),
        ("properties a list", lambda c: [ev(c, "h1", properties=None) | {"properties": [1]}]),
        ("properties a string", lambda c: [ev(c, "h1") | {"properties": "n=1"}]),
        ("properties null", lambda c: [ev(c, "h1") | {"properties": None}]),
        (
            "no value property (meter reads n)",
            lambda c: [ev(c, "h1") | {"properties": {"gid": "h1"}}],
        ),
    ]:
        m.batch_case(label, hostile)
    m.batch_case(
        "unknown event name (stored, meters nothing)",
        lambda c: [ev(c, "h1", event_name=m.event_name + ".nometer")],
        allowed={"h1"},
    )

    # Quantities: the property the sum meter reads.
    refused_quantities = [
        " 5 ",
        "1_000",
        "+5",
        "1e3",
        "1E3",
        "5e-1",
        "\u0665",  # ARABIC-INDIC DIGIT FIVE
        "\uff15",  # FULLWIDTH DIGIT FIVE
        "\u07c5",  # NKO DIGIT FIVE
        "\U0001d7d3",  # MATHEMATICAL BOLD DIGIT FIVE
        "1,5",
        "1 000",
        "0x10",
        "",
        " ",
        "NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "5.",
        ".5",
        "--5",
        "5-",
        "1.2.3",
        "\u0661\u0662",
        "\u00a05",
        "5\u200b",
        "5\n",
        "\t5",
        "0b1",
        "\u00bd",
        "\u2164",  # ROMAN NUMERAL FIVE
    ]
    for value in refused_quantities:
        m.batch_case(f"quantity {value!r}", lambda c, v=value: [ev(c, "h1", properties={"n": v})])
    for value in [True, False, None, [], {}, [1], {"v": 1}]:
        m.batch_case(
            f"quantity {json.dumps(value)}", lambda c, v=value: [ev(c, "h1", properties={"n": v})]
        )
    for label, text in [
        ("quantity -1 (a sum may fall)", "-1"),
        ("quantity 0", "0"),
        ("quantity 0.000000001", "0.000000001"),
        ('quantity "12.50"', '"12.50"'),
        ('quantity "-3"', '"-3"'),
        ("quantity 1e3 (a JSON number)", "1e3"),
        ("quantity -0.0", "-0.0"),
        ("quantity 99999999999999999999", "99999999999999999999"),
        ("quantity 1e-400", "1e-400"),
    ]:
        m.text_case(
            label,
            with_properties('{"gid": "h1", "n": ' + text + "}"),
            allowed={"h1"},
        )
    for label, text in [
        ("quantity 1e400", "1e400"),
        ("quantity -1e400", "-1e400"),
        ("quantity 1e999999999999", "1e999999999999"),
        ("quantity of 5,000 digits", "9" * 5000),
        ("quantity of 140,001 digits", "1" + "0" * 140000),
    ]:
        m.text_case(
            label,
            with_properties('{"gid": "h1", "n": ' + text + "}"),
        )
    for constant in ["NaN", "Infinity", "-Infinity"]:
        m.text_case(
            f"quantity {constant} (not JSON: 400)",
            with_properties('{"gid": "h1", "n": ' + constant + "}"),
            expect={400},
        )

    # Timestamps.
    now = m.now
    for label, value in [
        ("timestamp year 1", "0001-01-01T00:00:00Z"),
        ("timestamp year 9999", "9999-12-31T23:59:59Z"),
        ("timestamp month 13", "2026-13-01T00:00:00Z"),
        ("timestamp day 0", "2026-11-00T00:00:00Z"),
        ("timestamp hour 24", T[:11] + "24:00:00Z"),
        ("timestamp second 60", T[:17] + "60Z"),
        ("timestamp without offset", T[:-1]),
        ("timestamp offset +25:00", T[:-1] + "+25:00"),
        ("timestamp offset +99:99", T[:-1] + "+99:99"),
        ("timestamp empty", ""),
        ("timestamp of 10,000 characters", T + " " * 10000),
        ("timestamp 'now'", "now"),
        ("timestamp a day ahead", (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("timestamp 400 days old", (now - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("timestamp with other-script digits", "٢٠٢٦" + T[4:]),
        ("timestamp year +275760", "+275760-09-13T00:00:00Z"),
        ("timestamp NUL between date and time", T[:10] + "\x00" + T[11:]),
        ("timestamp X between date and time", T[:10] + "X" + T[11:]),
        ("timestamp a digit between date and time", T[:10] + "5" + T[11:]),
    ]:
        m.batch_case(label, lambda c, v=value: [ev(c, "h1", timestamp=v)])
    for label, value in [
        ("timestamp with fractions", T[:-1] + ".123456Z"),
        (
            "timestamp at +05:30",
            (now + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S+05:30"),
        ),
        ("timestamp lower-case t and z", T.lower()),
        ("timestamp with a space for T", T[:10] + " " + T[11:]),
        ("timestamp in basic format", T.replace("-", "").replace(":", "")),
        ("timestamp with 12 fraction digits", T[:-1] + ".123456789012Z"),
    ]:
        m.batch_case(label, lambda c, v=value: [ev(c, "h1", timestamp=v)], allowed={"h1"})

    # Nesting.
    for depth in [33, 1000, 10_000, 100_000]:
        m.text_case(
            f"properties nested {depth:,} deep (lists)",
            with_properties('{"gid": "h1", "n": 1, "deep": ' + nested(depth - 1) + "}"),
        )
    for depth in [1000, 10_000]:
        m.text_case(
            f"properties nested {depth:,} deep (objects)",
            with_properties('{"gid": "h1", "n": 1, "deep": ' + nested_objects(depth - 1) + "}"),
        )
    m.text_case(
        "quantity nested 10,000 deep",
        with_properties('{"gid": "h1", "n": ' + nested(10_000) + "}"),
    )
    m.text_case("an event that is 10,000 nested lists", nested(10_000))
    m.text_case(
        "id nested 10,000 deep",
        with_properties("{}", event_id=nested(10_000)),
    )
    m.text_case("deep nesting in strings only", '"' + "[" * 100_000 + '"')
    customer = m.customer(len(m.cases))
    goods = m.goods(customer)
    m.add(
        "a top-level key nested 10,000 deep",
        body=('{"junk": ' + nested(10_000) + ', "events": ' + json.dumps(goods) + "}").encode(),
        goods=[g["id"] for g in goods],
    )
    m.refused_case("a body of 200,000 '['", b"[" * 200_000, {400})
    m.refused_case("a body of 500,000 nested lists", nested(500_000).encode(), {400})

    # Sizes.
    m.batch_case(
        "a 900 KB property",
        lambda c: [ev(c, "h1", properties={"n": 1, "blob": "x" * 900_000})],
        allowed={"h1"},
    )
    m.batch_case(
        "10,000 properties",
        lambda c: [ev(c, "h1", properties={"n": 1, **{f"p{i}": i for i in range(10_000)}})],
        allowed={"h1"},
    )
    m.batch_case(
        "a property name of 100,000 characters",
        lambda c: [ev(c, "h1", properties={"n": 1, "k" * 100_000: 1})],
        allowed={"h1"},
    )
    m.batch_case(
        "gid of 10,000 characters",
        lambda c: [ev(c, "h1", properties={"n": 1, "gid": "g" * 10_000})],
        allowed={"g" * 10_000, None},  # past a group value's length: null
    )
    customer = m.customer(len(m.cases))
    big = [*m.goods(customer), ev(customer, "h1", properties={"n": 1, "blob": "x" * MIB})]
    m.refused_case("a body of 1 MiB + (413)", m.batch_bytes(customer, big), {413})
    customer = m.customer(len(m.cases))
    huge = [*m.goods(customer), ev(customer, "h1", properties={"n": 1, "blob": "x" * 20 * MIB})]
    # The server may answer and close before the client has sent it all (status 0).
    m.refused_case("a body of 20 MiB (413)", m.batch_bytes(customer, huge), {0, 413})

    # Bodies refused whole.
    for label, body, expect in [
        ("an empty body", b"", {400}),
        ("whitespace only", b"  \n\t ", {400}),
        ("null", b"null", {400}),
        ("a list", b"[]", {400}),
        ("a number", b"1", {400}),
        ("{} (no events)", b"{}", {400}),
        ('{"events": null}', b'{"events": null}', {400}),
        ('{"events": {}}', b'{"events": {}}', {400}),
        ('{"events": "x"}', b'{"events": "x"}', {400}),
    ]:
        m.refused_case(label, body, expect)
    m.add("no events (empty list)", body=b'{"events": []}')
    for label, transform in [
        ("truncated JSON", lambda b: b[: len(b) // 2]),
        ("a trailing comma", lambda b: b[:-2] + b",]}"),
        ("trailing garbage", lambda b: b + b"garbage"),
        ("two JSON documents", lambda b: b + b),
        ("single quotes", lambda b: b.replace(b'"', b"'")),
        ("a comment", lambda b: b"// events\n" + b),
        ("a raw NUL byte in a string", lambda b: b.replace(b'"g1"', b'"g\x001"', 1)),
        ("a raw control character", lambda b: b.replace(b'"g1"', b'"g\x07 1"', 1)),
        ("invalid UTF-8", lambda b: b.replace(b'"g1"', b'"g\xff1"', 1)),
        ("overlong UTF-8 for '/'", lambda b: b.replace(b'"g1"', b'"g\xc0\xaf1"', 1)),
        ("NaN as the batch", lambda b: b"NaN"),
    ]:
        customer = m.customer(len(m.cases))
        m.refused_case(label, transform(m.batch_bytes(customer, m.goods(customer))), {400})
    customer = m.customer(len(m.cases))
    body = m.batch_bytes(customer, m.goods(customer)).replace(b'"g1"', b'"g\xed\xa0\x801"', 1)
    # Read as the lone surrogate it encodes (as json.loads reads bytes): that event alone
    # is rejected.
    m.add("UTF-8 of a surrogate (CESU) in an id", body=body, goods=["g2"])
    customer = m.customer(len(m.cases))
    goods = m.goods(customer)
    m.add(
        "a byte order mark first",
        body=b"\xef\xbb\xbf" + m.batch_bytes(customer, goods),
        goods=[g["id"] for g in goods],
        expect={202, 400},
    )
    customer = m.customer(len(m.cases))
    goods = m.goods(customer)
    m.add(
        "UTF-16 body",
        body=json.dumps({"events": goods}).encode("utf-16"),
        goods=[g["id"] for g in goods],
        expect={202, 400},
    )

    # Content types and headers.
    for label, content_type, expect in [
        ("Content-Type text/plain", "text/plain", {415}),
        ("no Content-Type", None, {415}),
        ("form-urlencoded", "application/x-www-form-urlencoded", {415}),
        ("multipart/form-data", "multipart/form-data; boundary=x", {415}),
        ("application/json-patch+json", "application/json-patch+json", {415}),
        ("application/jsonx", "application/jsonx", {415}),
        ("Content-Type with NUL", "application/json\x00", {400, 415}),
    ]:
        customer = m.customer(len(m.cases))
        m.refused_case(
            label, m.batch_bytes(customer, m.goods(customer)), expect, content_type=content_type
        )
    for label, content_type in [
        ("application/json; charset=utf-8", "application/json; charset=utf-8"),
        ("APPLICATION/JSON", "APPLICATION/JSON"),
        ("application/json; charset=latin-1 (read as UTF-8)", "application/json; charset=latin-1"),
    ]:
        customer = m.customer(len(m.cases))
        goods = m.goods(customer)
        m.add(
            label,
            body=m.batch_bytes(customer, goods),
            goods=[g["id"] for g in goods],
            content_type=content_type,
        )
    customer = m.customer(len(m.cases))
    m.refused_case(
        "gzip with Content-Encoding",
        gzip.compress(m.batch_bytes(customer, m.goods(customer))),
        {400, 415},
        headers={"Content-Encoding": "gzip"},
    )
    customer = m.customer(len(m.cases))
    m.refused_case(
        "no API key", m.batch_bytes(customer, m.goods(customer)), {401}, authorized=False
    )
    customer = m.customer(len(m.cases))
    m.refused_case(
        "a wrong API key",
        m.batch_bytes(customer, m.goods(customer)),
        {401},
        authorized=False,
        headers={"Authorization": "Bearer sk_" + "x" * 43},
    )
    customer = m.customer(len(m.cases))
    m.refused_case("PUT", m.batch_bytes(customer, m.goods(customer)), {405}, method="PUT")

    # Chunked bodies (Transfer-Encoding: chunked, no Content-Length).
    customer = m.customer(len(m.cases))
    goods = m.goods(customer, 3)
    body = m.batch_bytes(customer, goods)
    m.add("chunked, one chunk", chunks=[body], goods=[g["id"] for g in goods])
    customer = m.customer(len(m.cases))
    goods = m.goods(customer, 3)
    body = m.batch_bytes(customer, goods)
    m.add(
        "chunked, a byte a chunk",
        chunks=[body[i : i + 1] for i in range(len(body))],
        goods=[g["id"] for g in goods],
    )
    customer = m.customer(len(m.cases))
    goods = m.goods(customer, 3)
    body = m.batch_bytes(customer, goods)
    padded = body[:-1] + b', "pad": "' + b"x" * MIB + b'"}'
    m.add(
        "chunked, 1 MiB + in 64 KiB chunks (413)",
        chunks=[padded[i : i + 65536] for i in range(0, len(padded), 65536)],
        expect={0, 413},
    )
    customer = m.customer(len(m.cases))
    goods = m.goods(customer, 2)
    body = m.batch_bytes(customer, goods)
    framed = b"%x;ext=1\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(body), body)
    m.add(
        "chunked with an extension and a trailer",
        raw=framed,
        headers={"Transfer-Encoding": "chunked"},
        goods=[g["id"] for g in goods],
    )
    customer = m.customer(len(m.cases))
    body = m.batch_bytes(customer, m.goods(customer, 2))
    m.refused_case(
        "chunked, a size that is not hex",
        None,
        {0, 400},
        raw=b"zz\r\n" + body + b"\r\n0\r\n\r\n",
        headers={"Transfer-Encoding": "chunked"},
    )
    customer = m.customer(len(m.cases))
    body = m.batch_bytes(customer, m.goods(customer, 2))
    m.refused_case(
        "chunked, a size shorter than the data",
        None,
        {0, 400},
        raw=b"%x\r\n" % (len(body) - 10) + body + b"\r\n0\r\n\r\n",
        headers={"Transfer-Encoding": "chunked"},
    )
    customer = m.customer(len(m.cases))
    goods = m.goods(customer, 2)
    body = m.batch_bytes(customer, goods)
    m.add(
        "chunked and a Content-Length both",
        raw=b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n",
        headers={"Transfer-Encoding": "chunked", "Content-Length": "5"},
        goods=[g["id"] for g in goods],
        expect={0, 202, 400},
    )
    customer = m.customer(len(m.cases))
    body = m.batch_bytes(customer, m.goods(customer, 2))
    m.refused_case(
        "a Content-Length shorter than the body",
        None,
        {400},
        raw=body,
        headers={"Content-Length": str(len(body) // 2)},
    )
    customer = m.customer(len(m.cases))
    body = m.batch_bytes(customer, m.goods(customer, 2))
    m.refused_case(
        "a Content-Length that is not a number",
        None,
        {0, 400},
        raw=body,
        headers={"Content-Length": "12abc"},
    )

    # Unicode and text no column stores.
    for label, event_id, allowed in [
        ("id with an emoji", "h1-\U0001f600", True),
        ("id with right-to-left override", "h1-\u202eevil", True),
        ("id with zero-width joiner", "h1\u200d", True),
        ("id with combining marks", "h1e\u0301", True),
        ("id of 255 four-byte characters", "\U0001f600" * 255, True),
        ("id with a NUL", "h1\x00", False),
        ("id with a lone surrogate", "h1\ud800", False),
        ("id with U+FFFF", "h1\uffff", True),
    ]:
        m.batch_case(
            label,
            lambda c, i=event_id: [ev(c, i)],
            allowed={event_id} if allowed else set(),
        )
    for label, properties, allowed in [
        ("a property with a NUL", {"n": 1, "note": "a\x00b"}, False),
        ("a property name with a NUL", {"n": 1, "a\x00b": 1}, False),
        ("a property with a lone surrogate", {"n": 1, "note": "\udfff"}, False),
        ("a property name with a lone surrogate", {"n": 1, "\ud83d": 1}, False),
        ("a gid with a NUL", {"n": 1, "gid": "h1\x00"}, False),
        ("a property with a surrogate pair", {"n": 1, "note": "\U0001f600"}, True),
        ("a property with U+2028", {"n": 1, "note": "a\u2028b"}, True),
    ]:
        m.batch_case(
            label,
            lambda c, p=properties: [ev(c, "h1", properties=p)],
            allowed={"h1"} if allowed else set(),
        )
    m.batch_case(
        "a property of 100,000 emoji (UTF-8)",
        lambda c: [ev(c, "h1", properties={"n": 1, "note": "\U0001f600" * 100_000})],
        allowed={"h1"},
        ascii_only=False,
    )
    m.batch_case("customer with a NUL", lambda c: [ev(c, "h1", customer=c + "\x00")])
    m.batch_case("customer with a lone surrogate", lambda c: [ev(c, "h1", customer=c + "\ud800")])
    m.batch_case("event_name with a NUL", lambda c: [ev(c, "h1", event_name=m.event_name + "\x00")])
    m.text_case(
        "escaped NUL and surrogates everywhere",
        '{"id": "h1\\u0000", "customer": "{C}\\ud800", "event_name": "{E}\\udc00", '
        '"timestamp": "{T}\\u0000", "properties": {"\\u0000": "\\ud800\\udc00\\ud800"}}',
    )
    return m.cases


def usage_groups(client: Client, customer: str) -> tuple[int, dict[str, dict[str, Decimal]]]:
    """The customer's usage by gid, per meter: {meter: {gid: quantity}}."""
    status, answer = client.json("GET", f"/api/v1/customers/{quote(customer)}/usage?group_by=gid")
    if status != 200 or not answer:
        return status, {}
    found = {}
    for line in answer.get("lines", []):
        groups = {}
        for group in line.get("groups") or []:
            groups[(group["key"] or {}).get("gid")] = Decimal(group["quantity"])
        found[line["meter"]] = groups
    return status, found


def setup(client: Client, matrix: Matrix, cases: list[Case]) -> list[str]:
    """The run's meters (a sum of `n` and a count, both by gid), plan, customers and
    subscriptions. Returns the meters' codes."""
    run = matrix.run
    meters = [f"{run}_sum", f"{run}_count"]
    for code, aggregation in zip(meters, ["sum", "count"], strict=True):
        payload = {
            "code": code,
            "name": f"hostile {aggregation}",
            "event_name": matrix.event_name,
            "aggregation": aggregation,
            "group_by": ["gid"],
        }
        if aggregation == "sum":
            payload["value_property"] = "n"
        status, answer = client.json("POST", "/api/v1/meters", payload)
        if status != 201:
            raise SystemExit(f"creating meter {code}: {status} {answer}")
    free = {"scheme": "per_unit", "unit_price": "0"}
    status, answer = client.json(
        "POST",
        "/api/v1/plans",
        {
            "code": f"{run}_plan",
            "name": "hostile",
            "currency": "USD",
            "interval": "month",
            "base_fee": "0",
            "publish": True,
            "charges": [
                {"meter": code, "model": "overage", "included_units": "0", "pricing": free}
                for code in meters
            ],
        },
    )
    if status != 201:
        raise SystemExit(f"creating the plan: {status} {answer}")
    start = (matrix.now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for customer in sorted({case.customer for case in cases}):
        status, answer = client.json(
            "POST",
            "/api/v1/customers",
            {"external_id": customer, "name": customer, "currency": "USD", "timezone": "UTC"},
        )
        if status != 201:
            raise SystemExit(f"creating customer {customer}: {status} {answer}")
        status, answer = client.json(
            "POST",
            "/api/v1/subscriptions",
            {"customer": customer, "plan": f"{run}_plan", "start": start},
        )
        if status != 201:
            raise SystemExit(f"subscribing {customer}: {status} {answer}")
    return meters


def run_case(client: Client, case: Case) -> None:
    if case.repeat == 1:
        results = [client.send(case)]
    else:
        with ThreadPoolExecutor(case.repeat) as pool:
            results = list(pool.map(lambda _: client.send(case), range(case.repeat)))
    case.statuses = [status for status, _ in results]
    try:
        case.answer = json.loads(results[-1][1]) if results[-1][1] else None
    except ValueError:
        case.answer = None
    if case.repeat > 1:
        answers = []
        for _, data in results:
            try:
                answers.append(json.loads(data))
            except ValueError:
                answers.append({})
        case.answer = {
            "accepted": sum(a.get("accepted", 0) for a in answers),
            "duplicates": sum(a.get("duplicates", 0) for a in answers),
            "rejected": [r for a in answers for r in a.get("rejected", [])],
        }


@dataclass
class Verdict:
    sent: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    unexpected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def judge(case: Case, meters: list[str], reads: list[dict]) -> Verdict:
    """The case's statuses and answer, and its customer's usage by gid in each read:
    every good event of an accepted batch exactly once on each meter (a sum of n=1
    and a count), nothing else but what the case allows."""
    verdict = Verdict()
    server_errors = [s for s in case.statuses if s >= 500]
    if server_errors:
        verdict.problems.append(f"{len(server_errors)} x 5xx")
    wrong = sorted({s for s in case.statuses if s not in case.expect})
    if wrong:
        verdict.problems.append(f"status {wrong}, expected {sorted(case.expect)}")
    answer = case.answer if isinstance(case.answer, dict) else {}
    accepted = any(s in ACCEPTED for s in case.statuses)
    if case.replay_of:
        # Its events are the original case's, counted there.
        if accepted and answer.get("accepted") != 0:
            verdict.problems.append(f"a replay accepted {answer.get('accepted')}")
        return verdict
    expected = set(case.goods) if accepted else set()
    verdict.sent = len(expected)
    for read in reads:
        for meter in meters:
            groups = read.get(meter, {})
            lost = sum(1 for gid in expected if groups.get(gid, 0) == 0)
            doubled = sum(1 for gid in expected if groups.get(gid, 0) > 1)
            verdict.lost = max(verdict.lost, lost)
            verdict.doubled = max(verdict.doubled, doubled)
            for gid, quantity in groups.items():
                if gid in expected or gid in case.allowed or quantity == 0:
                    continue
                label = repr(gid[:20]) if isinstance(gid, str) else repr(gid)
                if label not in verdict.unexpected:
                    verdict.unexpected.append(label)
    final = reads[-1].get(meters[1], {})
    verdict.stored = sum(1 for gid in expected if final.get(gid, 0) == 1)
    if verdict.lost:
        verdict.problems.append(f"{verdict.lost} good lost")
    if verdict.doubled:
        verdict.problems.append(f"{verdict.doubled} good counted more than once")
    if verdict.unexpected:
        verdict.problems.append("stored, should not be: " + ", ".join(verdict.unexpected))
    # The hostile events a case allows may be accepted too.
    if accepted and not (
        len(expected) <= answer.get("accepted", 0) <= len(expected) + len(case.allowed)
    ):
        verdict.problems.append(
            f"the answer says {answer['accepted']} accepted, {len(expected)} good sent"
        )
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BILLING_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("BILLING_API_KEY"))
    parser.add_argument("--key-file", default="var/dev-api-key.txt")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds for the folder to fold")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    key = args.key
    if not key:
        try:
            with open(args.key_file) as file:
                key = file.read().strip()
        except OSError:
            print("error: give --key, BILLING_API_KEY or --key-file", file=sys.stderr)
            return 2
    client = Client(args.url, key, args.timeout)
    run = "hx" + datetime.now(UTC).strftime("%H%M%S") + secrets.token_hex(2)
    matrix = Matrix(run)
    cases = build(matrix)
    print(f"== run {run}: {len(cases)} cases against {args.url}")
    meters = setup(client, matrix, cases)
    started = time.monotonic()
    for case in cases:
        run_case(client, case)
    took = time.monotonic() - started
    print(f"== sent in {took:.1f}s; reading usage, then again after {args.settle}s")
    customers = sorted({c.customer for c in cases})
    first = {c: usage_groups(client, c)[1] for c in customers}
    time.sleep(args.settle)
    second = {c: usage_groups(client, c)[1] for c in customers}

    totals = Verdict()
    failed = 0
    server_errors = 0
    print()
    print(f"{'case':<58} {'status':>9} {'acc/dup/rej':>13} {'good':>5} {'stored':>6}  verdict")
    for case in cases:
        verdict = judge(case, meters, [first[case.customer], second[case.customer]])
        server_errors += sum(1 for s in case.statuses if s >= 500)
        totals.sent += verdict.sent
        totals.stored += verdict.stored
        totals.lost += verdict.lost
        totals.doubled += verdict.doubled
        statuses = sorted(set(case.statuses))
        status_text = "/".join(str(s) for s in statuses) + (
            f" x{case.repeat}" if case.repeat > 1 else ""
        )
        answer = case.answer if isinstance(case.answer, dict) else {}
        counts = ""
        if "accepted" in answer:
            rejected = len(answer.get("rejected", []))
            counts = f"{answer['accepted']}/{answer.get('duplicates', '-')}/{rejected}"
        if verdict.problems:
            failed += 1
        note = "ok" if not verdict.problems else "FAIL: " + "; ".join(verdict.problems)
        if not verdict.problems and answer.get("rejected"):
            note += " (" + answer["rejected"][0]["error"]["message"][:60] + ")"
        elif not verdict.problems and "error" in answer:
            note += " (" + str(answer["error"].get("message", ""))[:60] + ")"
        good = verdict.sent if not case.replay_of else "-"
        stored = verdict.stored if not case.replay_of else "-"
        print(f"{case.name[:58]:<58} {status_text:>9} {counts:>13} {good:>5} {stored:>6}  {note}")
    print()
    print(f"cases:              {len(cases)} ({sum(c.repeat for c in cases)} requests)")
    print(f"5xx:                {server_errors}")
    print(f"cases failing:      {failed}")
    print(f"good events sent in accepted batches: {totals.sent}")
    print(f"  stored once:      {totals.stored}")
    print(f"  lost:             {totals.lost}")
    print(f"  doubled:          {totals.doubled}")
    return 1 if failed or server_errors else 0


if __name__ == "__main__":
    sys.exit(main())

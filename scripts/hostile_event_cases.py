"""The hostile ingestion matrix's cases about what an event holds: the baseline and
batch sizes, wrong types and shapes, quantities, timestamps and nesting."""

import json
from datetime import timedelta

from hostile_matrix import Case, Matrix, nested, nested_objects, with_properties


def event_cases(matrix: Matrix) -> list[Case]:
    m = matrix
    ev, T = m.event, m.timestamp

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
    return m.cases

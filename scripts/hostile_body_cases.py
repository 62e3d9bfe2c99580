"""The hostile ingestion matrix's cases about how a body is sent: sizes, bodies
refused whole, content types and headers, chunked framing, and text no column
stores."""

import gzip
import json

from hostile_matrix import Case, Matrix


def body_cases(matrix: Matrix) -> list[Case]:
    m = matrix
    ev = m.event
    MIB = 1024 * 1024

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

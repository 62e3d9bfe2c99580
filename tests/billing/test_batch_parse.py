"""A batch body reads the same through the fast decoder (msgspec) as through
json.loads: the same values, the same Decimals to the exponent, and for what the
fast decoder refuses, json.loads' own answer or error."""

import json
import string
import sys
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.storable import UNSTORABLE_NUMBER
from billing.usage import ingestion
from billing.usage.ingestion import batch_parse, json_parse


def outcome(parse, body: bytes):
    """What a parser makes of a body: its value with every Decimal's digits and
    exponent spelled out (repr), or the kind of error it raised."""
    try:
        return "value", repr(parse(body))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # json.JSONDecodeError is a ValueError: the request answers "malformed JSON".
        return "error", ValueError if isinstance(exc, ValueError) else type(exc)


EDGE_BODIES = [
    b'{"events": [{"n": 1.5}, {"n": 2.50}, {"n": -0.0}, {"n": -0}, {"n": 0.1e1}]}',
    b'{"n": 1e400, "m": 1E-2, "k": 1.5e+3}',
    b'{"n": 1e-20000}',  # past numeric's scale: UNSTORABLE_NUMBER, not an error
    b'{"n": ' + b"9" * 5000 + b"}",  # past Python's int digits: read as a number
    b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',
    b'{"a": 1, "a": 2}',
    b'{"a": "\\ud83d\\ude00", "b": "\\u00e9\\/\\n", "c": "\\u0000"}',
    b'{"a": "\\ud800"}',  # a lone surrogate's escape: json.loads reads it
    b'{"a": "\xed\xa0\x80"}',  # a surrogate's bytes: json.loads reads them too
    b'\xef\xbb\xbf{"a": 1}',  # a byte order mark
    b'{"a": "\xff"}',
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": 01}',
    b'{"a": 1.}',
    b'{"a": "\t"}',
    b"[1, 2",
    b'{"a": 1} x',
    b"",
    b"[" * 100_000 + b"]" * 100_000,
    b'  {"events" : [ ] }  ',
    b'"just text"',
]


@pytest.mark.parametrize("body", EDGE_BODIES, ids=lambda b: repr(b[:24]))
def test_fast_decoder_agrees_with_json_loads(body):
    assert outcome(batch_parse, body) == outcome(json_parse, body)


def test_numbers_past_what_a_column_or_python_holds():
    assert batch_parse(b'{"n": 1e-20000}') == {"n": UNSTORABLE_NUMBER}
    # Past Python's 4,300 digits of an int: a Decimal, through json.loads' second read.
    assert batch_parse(b'{"n": ' + b"9" * 5000 + b"}") == {"n": Decimal("9" * 5000)}


def test_nesting_near_the_recursion_limit():
    """msgspec reads a few levels deeper than json.loads (which stops at Python's
    recursion limit): there, and only there, a body json.loads refuses is read.
    Such a value is never stored: properties nest at most 32 deep."""
    limit = sys.getrecursionlimit()
    read_only_fast = 0
    for depth in range(limit - 150, limit + 10):
        body = b'{"events": [], "x": ' + b"[" * depth + b"]" * depth + b"}"
        fast, reference = outcome(batch_parse, body), outcome(json_parse, body)
        if fast != reference:
            assert reference == ("error", RecursionError) and fast[0] == "value", depth
            read_only_fast += 1
    assert read_only_fast <= 10


def test_fallback_is_taken_only_for_what_the_fast_decoder_refuses(monkeypatch):
    calls = []

    def counted(body):
        calls.append(body)
        return json_parse(body)

    monkeypatch.setattr(ingestion, "json_parse", counted)
    batch_parse(b'{"events": [{"n": 1.5}]}')
    assert calls == []
    batch_parse(b'{"a": "\\ud800"}')
    assert calls == [b'{"a": "\\ud800"}']


# JSON texts built from their grammar, with the number spellings the standard
# allows (signs, fractions, exponents of either case and sign) and strings with
# escapes of every kind, lone surrogates among them.
digits = st.text(string.digits, min_size=1, max_size=25)
integer = st.builds(
    lambda sign, head, rest: sign + (head + rest if head != "0" else "0"),
    st.sampled_from(["", "-"]),
    st.sampled_from(list("0123456789")),
    st.text(string.digits, max_size=20),
)
fraction = st.one_of(st.just(""), digits.map(lambda d: "." + d))
exponent = st.one_of(
    st.just(""),
    st.builds(
        lambda e, sign, d: e + sign + d,
        st.sampled_from(["e", "E"]),
        st.sampled_from(["", "+", "-"]),
        st.text(string.digits, min_size=1, max_size=6),
    ),
)
number = st.builds(lambda i, f, e: i + f + e, integer, fraction, exponent)
escape = st.one_of(
    st.sampled_from(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"]),
    st.integers(0, 0xFFFF).map(lambda c: f"\\u{c:04x}"),
)
plain = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'), max_size=8
).filter(lambda t: all(ord(c) >= 0x20 for c in t))
string_literal = st.lists(st.one_of(plain, escape), max_size=6).map(
    lambda parts: '"' + "".join(parts) + '"'
)
scalar = st.one_of(number, string_literal, st.sampled_from(["true", "false", "null"]))
json_text = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(string_literal, inner), max_size=5).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_text)
def test_any_json_reads_the_same_both_ways(text):
    body = text.encode("utf-8")
    assert outcome(batch_parse, body) == outcome(json_parse, body)


@settings(max_examples=200, deadline=None)
@given(json_text)
def test_a_batch_reads_the_same_both_ways(text):
    body = json.dumps({"events": [{"id": "e1", "properties": {}}]}).encode()[:-3]
    body += b', "extra": ' + text.encode("utf-8") + b"}]}"
    assert outcome(batch_parse, body) == outcome(json_parse, body)

"""A batch body reads the same through the fast decoder (msgspec) as through
json.loads: the same values, the same Decimals to the exponent, and for what the
fast decoder refuses, json.loads' own answer or error. A body nested deeper than
MAX_BODY_DEPTH is read without recursion (common.nesting), as json.loads reads
it up to that depth, and what lies past it as TOO_DEEP."""

import json
import string
import sys
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.usage import ingestion
from billing.usage.ingestion import batch_parse, json_parse
from common import nesting
from common.nesting import MAX_BODY_DEPTH, TOO_DEEP, may_nest_deeper_than
from common.rest_api import json_body
from common.storable import UNSTORABLE_NUMBER, unstorable_json_reason


def outcome(parse, body: bytes):
    """What a parser makes of a body: its value with every Decimal's digits and
    exponent spelled out (repr), or the kind of error it raised."""
    try:
        return "value", repr(parse(body))
    except (ValueError, UnicodeDecodeError) as exc:
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
    b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH,
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


def nested(depth: int, inner: bytes = b"1") -> bytes:
    """An event whose properties hold arrays `depth` levels deep, in a batch of 3."""
    deep = b"[" * depth + inner + b"]" * depth
    return (
        b'{"events": [{"id": "a"}, {"id": "deep", "properties": {"a": '
        + deep
        + b'}}, {"id": "b"}]}'
    )


def frames() -> int:
    frame, count = sys._getframe(), 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


def with_recursion_limit_of(levels: int, read):
    """`read()` with no more than `levels` frames of recursion left: a reader that
    recursed once a level of the body's nesting would stop at RecursionError."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frames() + levels)
    try:
        return read()
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH - 3, MAX_BODY_DEPTH, 1_000, 10_000, 100_000])
def test_a_batch_reads_at_any_depth_past_which_values_are_too_deep(depth):
    body = nested(depth)

    batch = with_recursion_limit_of(40, lambda: batch_parse(body))

    first, deep, last = batch["events"]
    assert (first, last) == ({"id": "a"}, {"id": "b"})
    value, levels = deep["properties"]["a"], 1
    while isinstance(value, list):
        assert len(value) == 1
        value, levels = value[0], levels + 1
    # The batch, the list of events, the event and its properties hold the arrays.
    if depth <= MAX_BODY_DEPTH - 4:
        assert (value, levels) == (1, depth + 1)
    else:
        assert (value, levels) == (TOO_DEEP, MAX_BODY_DEPTH - 4 + 1)
    reason = unstorable_json_reason(deep["properties"], check_text=False, max_depth=32)
    assert reason == "nests deeper than 32 levels"


def test_within_the_depth_both_readers_read_as_json_loads():
    body = nested(MAX_BODY_DEPTH - 4)
    assert not may_nest_deeper_than(body, MAX_BODY_DEPTH)
    assert may_nest_deeper_than(nested(MAX_BODY_DEPTH - 3), MAX_BODY_DEPTH)
    reference = outcome(json_parse, body)
    assert outcome(batch_parse, body) == reference
    assert outcome(lambda b: json_parse(b, max_depth=MAX_BODY_DEPTH), body) == reference


@pytest.mark.parametrize(
    "body",
    [
        nested(10_000, b"1,"),  # broken deep inside
        nested(10_000)[:-3],  # cut short
        nested(10_000, b"NaN"),
        nested(10_000).replace(b"[[[[", b"[[[{", 1),  # a bracket closed by the wrong kind
    ],
    ids=["comma", "truncated", "NaN", "mismatched"],
)
def test_a_deep_body_broken_past_the_depth_is_malformed(body):
    with pytest.raises(ValueError):
        with_recursion_limit_of(40, lambda: batch_parse(body))


def test_another_body_nested_too_deep_is_refused_for_its_depth():
    body = b'{"meter": "prompts", "quantity": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"

    with pytest.raises(Exception, match=f"nests deeper than {MAX_BODY_DEPTH} levels"):
        with_recursion_limit_of(40, lambda: json_body(body))
    with pytest.raises(Exception, match="malformed JSON"):
        with_recursion_limit_of(40, lambda: json_body(body[:-1]))
    assert json_body(b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH)


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


def depth_of(value) -> int:
    """How deep arrays and objects nest in a parsed value (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, tuple):  # a key and its value
            stack.append((item[1], depth))
        elif isinstance(item, dict | list):
            deepest = max(deepest, depth)
            inner = item.values() if isinstance(item, dict) else item
            stack.extend((value, depth + 1) for value in inner)
    return deepest


@settings(max_examples=200, deadline=None)
@given(json_text)
def test_the_reader_without_recursion_reads_as_json_loads(text):
    body = text.encode("utf-8")
    reference = outcome(json_parse, body)
    assert outcome(lambda b: json_parse(b, max_depth=10_000), body) == reference
    assert outcome(lambda b: nesting.loads(text, max_depth=10_000), body)[0] == reference[0]


@settings(max_examples=200, deadline=None)
@given(json_text, st.integers(0, 6))
def test_the_depth_is_told_exactly_without_parsing(text, depth):
    body = text.encode("utf-8")
    # Every value of an object kept (json.loads keeps the last of repeated keys).
    read = json.loads(body, object_pairs_hook=lambda pairs: dict(enumerate(pairs)))
    assert may_nest_deeper_than(body, depth) == (depth_of(read) > depth)

"""What a database column can store, checked before anything is written: text
without a NUL or a lone UTF-16 surrogate (PostgreSQL refuses the first, psycopg
and sqlite3 cannot encode the second), numbers within PostgreSQL's numeric range
(which also holds jsonb's numbers). Request parsing and ingestion use these, so
hostile input is a 400 or a per-event rejection, never a failed write."""

import re
from decimal import Decimal, InvalidOperation

from common.nesting import TooDeep

# PostgreSQL's numeric keeps at most 131,072 digits before the decimal point and
# 16,383 after it.
NUMERIC_MAX_ADJUSTED = 131_071
NUMERIC_MIN_EXPONENT = -16_383

NUL_MESSAGE = "text must not contain the NUL character (U+0000)"
SURROGATE_MESSAGE = "text must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)"
NUMBER_MESSAGE = "holds a number outside the range a database can store"

# What puts such text into parsed JSON: a \u0000 escape, the escape of a UTF-16
# surrogate, or a surrogate's three bytes in UTF-8 (json.loads decodes bytes with
# "surrogatepass"). An escaped pair of surrogates (an emoji) matches too; the
# text checks then find it valid.
_UNSTORABLE_TEXT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


class UnstorableNumber:
    """Stands in, in parsed JSON, for a number no column could hold, so that the
    one event carrying it is rejected rather than the request."""

    __slots__ = ()


UNSTORABLE_NUMBER = UnstorableNumber()


def reject_json_constant(name: str):
    """json.loads' parse_constant: NaN and Infinity are no numbers JSON allows."""
    raise ValueError(f"{name} is not a number JSON allows")


def storable_json_number(text: str) -> Decimal | None:
    """A JSON number's text as an exact Decimal, or None where no column could hold
    it: outside PostgreSQL's numeric range, or past what a Decimal represents (an
    exponent beyond 10**18). The plain short numbers of nearly every request skip
    the range check, which only a long text or an exponent can fail."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if len(text) > 20 or "e" in text or "E" in text:
        if number.as_tuple().exponent < NUMERIC_MIN_EXPONENT:
            return None
        if number and number.adjusted() > NUMERIC_MAX_ADJUSTED:
            return None
    return number


def number_or_marker(text: str) -> Decimal | UnstorableNumber:
    """json.loads' parse_float (and parse_int) for a batch: UNSTORABLE_NUMBER where
    storable_json_number finds none."""
    number = storable_json_number(text)
    return UNSTORABLE_NUMBER if number is None else number


def may_hold_unstorable_text(body: bytes) -> bool:
    """False when a JSON body cannot hold a NUL or a lone surrogate, so the text
    checks can be skipped; True does not mean that it does. Two plain scans spare
    most bodies the slower pattern search."""
    if b"\\u" not in body and b"\xed" not in body:
        return False
    return _UNSTORABLE_TEXT.search(body) is not None


def unstorable_text_reason(text: str) -> str | None:
    """Why this text cannot be stored, or None when it can."""
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


# The types of the JSON scalars a column holds as they are (json.loads with
# number_or_marker yields Decimals, not floats): a value of one of these holds no
# nesting and no UNSTORABLE_NUMBER, only text to look at.
STORABLE_SCALARS = frozenset({str, int, bool, Decimal, float, type(None)})


def unstorable_json_reason(value, *, check_text: bool, max_depth: int) -> str | None:
    """Why a parsed JSON value cannot be stored: a key or text that cannot (only
    looked for when `check_text`), an UNSTORABLE_NUMBER, or nesting deeper than
    `max_depth` (TOO_DEEP too: what a reader left unread past its own depth,
    common.nesting); None when it can. Iterative, so no payload exhausts the stack;
    a flat object costs one pass over its values (without `check_text`, one pass in C)."""
    if (
        not check_text
        and type(value) is dict
        and max_depth >= 1
        and STORABLE_SCALARS.issuperset(map(type, value.values()))
    ):
        return None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            if depth > max_depth:
                return f"nests deeper than {max_depth} levels"
            for key, inner in item.items():
                if check_text and (reason := unstorable_text_reason(key)):
                    return reason
                inner_kind = type(inner)
                if inner_kind is dict or inner_kind is list:
                    stack.append((inner, depth + 1))
                elif inner_kind is str:
                    if check_text and (reason := unstorable_text_reason(inner)):
                        return reason
                elif inner_kind is UnstorableNumber:
                    return NUMBER_MESSAGE
                elif inner_kind is TooDeep:
                    return f"nests deeper than {max_depth} levels"
        elif kind is list:
            if depth > max_depth:
                return f"nests deeper than {max_depth} levels"
            stack.extend((inner, depth + 1) for inner in item)
        elif kind is str:
            if check_text and (reason := unstorable_text_reason(item)):
                return reason
        elif kind is UnstorableNumber:
            return NUMBER_MESSAGE
        elif kind is TooDeep:
            return f"nests deeper than {max_depth} levels"
    return None

"""JSON nested deeper than a request may nest, told and read without recursion.

json.loads and msgspec recurse once per level of nesting, so a valid body nested a
thousand levels deep (2 KB) exhausted Python's recursion limit and a whole batch was
refused for one event. A body is first measured (`may_nest_deeper_than`, a few passes
in C over its bytes); one that nests no deeper than MAX_BODY_DEPTH is read by the fast
readers, whose recursion is then bounded by it, and a deeper one by `loads` here, which
keeps its own stack and reads whatever lies past `max_depth` as TOO_DEEP, checking its
syntax without building it. No Python recursion follows a body's depth."""

import json
import re
from array import array
from itertools import accumulate

# The deepest a request body nests: an event batch's properties nest at most 32
# levels (billing.usage.ingestion) inside the batch's 3, and no other body comes near.
MAX_BODY_DEPTH = 64


class TooDeep:
    """Stands in, in what `loads` reads, for an array or object nested deeper than its
    `max_depth`: the event holding it is rejected (common.storable), not the batch."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TOO_DEEP"


TOO_DEEP = TooDeep()

_BRACKETS = b"[]{}"
# Either kind of bracket as a square one: nesting is counted, not checked.
_SQUARE = bytes.maketrans(b"{}", b"[]")
# Each bracket as +1 or -1 (a signed byte), for a running sum of the depth.
_DEPTH_STEPS = bytes.maketrans(b"[]", b"\x01\xff")
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"' + _BRACKETS)))
_QUOTED = re.compile(rb'"[^"]*"')


def may_nest_deeper_than(body: bytes, depth: int) -> bool:
    """Whether a UTF-8 JSON body nests arrays and objects more than `depth` levels
    deep; True also when it cannot tell cheaply (a UTF-16 or UTF-32 body, which
    json.loads reads too). Exact for valid JSON; for JSON broken at some point, exact up
    to that point, which is as far as a reader goes. A few passes in C over the body,
    then over its brackets: about a third of the time msgspec takes to read a batch."""
    if len(body) <= depth:
        # Fewer bytes than levels, so fewer brackets, whatever the encoding (a check's
        # body): nothing to look at.
        return False
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
        return True
    if b"\\" in body:
        # Escaped backslashes, then escaped quotes: what is left of the quotes opens
        # and closes strings (left to right, as a reader pairs the escapes).
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = body.translate(None, _NOT_STRUCTURE)
    if structure.count(b"[") + structure.count(b"{") <= depth:
        return False
    if structure.count(b'""') * 2 == structure.count(b'"'):
        # The quotes come in runs of even length between brackets: every string is
        # two quotes side by side, with no bracket in it.
        brackets = structure.translate(_SQUARE, b'"')
        # Each pass takes out the innermost pairs, one level: a body n levels deep is
        # empty after n passes (a batch's, after 4).
        rest = brackets
        for _ in range(depth):
            shorter = rest.replace(b"[]", b"")
            if not shorter:
                return False
            if len(shorter) == len(rest):
                break  # unbalanced: counted below
            rest = shorter
    else:
        # Some string holds a bracket: the strings taken out quote to quote (a quote
        # left unpaired opens a string that never ends: what follows it counts).
        brackets = _QUOTED.sub(b"", structure).translate(_SQUARE, b'"')
    return max(accumulate(array("b", brackets.translate(_DEPTH_STEPS))), default=0) > depth


_WHITESPACE = re.compile(r"[ \t\n\r]*")
# As json.loads' scanner matches a number (ASCII digits only).
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = (("null", None), ("true", True), ("false", False))
_CONSTANTS = ("NaN", "Infinity", "-Infinity")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def loads(
    text: str | bytes,
    *,
    max_depth: int,
    parse_float=float,
    parse_int=int,
    parse_constant=_reject_constant,
):
    """What json.loads reads, with the same hooks, values and errors (a
    json.JSONDecodeError, or what a hook raises), read with a stack of its own rather
    than recursion; an array or object nested deeper than `max_depth` is read as
    TOO_DEEP, its syntax checked all the same (its numbers are not given to the hooks,
    its constants are)."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    elif text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    scan_string = json.decoder.scanstring
    whitespace = _WHITESPACE.match
    # One frame an open array or object: [its bracket, what is built (None past
    # max_depth), the key whose value comes next].
    stack: list[list] = []
    position = whitespace(text, 0).end()
    while True:
        # A value starts here.
        char = text[position : position + 1]
        built = not stack or stack[-1][1] is not None
        if char == "{" or char == "[":
            closer = "}" if char == "{" else "]"
            deep = len(stack) >= max_depth
            position = whitespace(text, position + 1).end()
            if text.startswith(closer, position):
                position += 1
                value = TOO_DEEP if deep else ({} if char == "{" else [])
            else:
                container = None if deep or not built else ({} if char == "{" else [])
                stack.append([char, container, None])
                if char == "{":
                    position = _key(text, position, stack[-1], scan_string, whitespace)
                continue
        elif char == '"':
            value, position = scan_string(text, position + 1, True)
        else:
            number = _NUMBER.match(text, position)
            if number is not None:
                position = number.end()
                if not built:
                    value = None
                elif number[2] or number[3]:  # a fraction or an exponent
                    value = parse_float(number[0])
                else:
                    value = parse_int(number[0])
            else:
                value, position = _literal(text, position, parse_constant)
        # A value is complete: into its array or object, and on to what follows it.
        while True:
            if not stack:
                end = whitespace(text, position).end()
                if end != len(text):
                    raise json.JSONDecodeError("Extra data", text, end)
                return value
            frame = stack[-1]
            bracket, container = frame[0], frame[1]
            if container is not None:
                if bracket == "[":
                    container.append(value)
                else:
                    container[frame[2]] = value
            position = whitespace(text, position).end()
            char = text[position : position + 1]
            if char == ",":
                position = whitespace(text, position + 1).end()
                if bracket == "{":
                    position = _key(text, position, frame, scan_string, whitespace)
                break
            if char == ("]" if bracket == "[" else "}"):
                position += 1
                stack.pop()
                value = TOO_DEEP if container is None else container
                continue
            expected = "',' delimiter" if bracket == "[" else "',' delimiter or '}'"
            raise json.JSONDecodeError(f"Expecting {expected}", text, position)


def _key(text: str, position: int, frame: list, scan_string, whitespace) -> int:
    """An object's key and its colon: the key into the frame; where its value starts."""
    if not text.startswith('"', position):
        raise json.JSONDecodeError(
            "Expecting property name enclosed in double quotes", text, position
        )
    frame[2], position = scan_string(text, position + 1, True)
    position = whitespace(text, position).end()
    if not text.startswith(":", position):
        raise json.JSONDecodeError("Expecting ':' delimiter", text, position)
    return whitespace(text, position + 1).end()


def _literal(text: str, position: int, parse_constant) -> tuple[object, int]:
    for word, value in _LITERALS:
        if text.startswith(word, position):
            return value, position + len(word)
    for name in _CONSTANTS:
        if text.startswith(name, position):
            return parse_constant(name), position + len(name)
    raise json.JSONDecodeError("Expecting value", text, position)

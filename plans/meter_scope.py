"""Credits and money for some meters: a credit block, a pack or a money top-up
`applies_to` a list of meter codes; empty, it pays for every meter. The one
reading of such a list (checked against the catalog) and the one rule of
whether it pays for a meter, and the one greedy draw over blocks in order."""

from collections.abc import Mapping
from decimal import Decimal

from common.errors import InvalidRequest
from plans.field_checks import CODE_RE
from plans.models import Meter

MAX_METERS = 100


def applies(applies_to: list[str], meter_code: str) -> bool:
    """Whether a block (or pack) scoped to `applies_to` pays for this meter."""
    return not applies_to or meter_code in applies_to


def draw_in_order(
    blocks, wanted: Decimal, meter: str | None = None, *, left: Mapping | None = None
) -> list:
    """(block, taken) pairs of drawing `wanted` from blocks in draw order, each
    as far as its `remaining` goes (nothing changed), or what `left` says it has
    left (by block id: a batch planning its draws); with a `meter`, only from
    those that apply to it (without, the caller chose them: a commit's)."""
    taken_from = []
    for block in blocks:
        if wanted <= 0:
            break
        if meter is not None and not applies(block.applies_to, meter):
            continue
        taken = min(block.remaining if left is None else left[block.pk], wanted)
        if taken <= 0:
            continue
        taken_from.append((block, taken))
        wanted -= taken
    return taken_from


def meter_scope_errors(value: object) -> list[str]:
    """What is wrong with an `applies_to` value, in words (empty: nothing). A list
    of distinct, known meter codes is right; so is an empty list (every meter)."""
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        return ['must be a list of meter codes, e.g. ["gpt4o_tokens"] (empty: every meter)']
    if len(value) > MAX_METERS:
        return [f"names {len(value)} meters; at most {MAX_METERS}"]
    seen, twice = set(), []
    for code in value:
        if code in seen and code not in twice:
            twice.append(code)
        seen.add(code)
    if twice:
        return [f"names {', '.join(repr(c) for c in twice)} twice: list each meter once"]
    # A text no meter code could be (a NUL, 10,000 characters) is not looked up.
    codes = [code for code in seen if CODE_RE.match(code)]
    known = set(Meter.objects.filter(code__in=codes).values_list("code", flat=True))
    unknown = [code for code in value if code not in known]
    if unknown:
        names = ", ".join(repr(c if len(c) <= 64 else c[:64] + "…") for c in unknown)
        return [f"there is no meter {names}: name meters by their codes"]
    return []


def meter_scope_checked(value: object) -> list[str]:
    """`applies_to` as given, once meter_scope_errors finds nothing wrong with it;
    else InvalidRequest (400) naming what is wrong."""
    errors = meter_scope_errors(value)
    if errors:
        raise InvalidRequest(
            f"applies_to {errors[0]}",
            fields={"applies_to": errors},
            words=f"Meters: {errors[0]}.",
        )
    return list(value)

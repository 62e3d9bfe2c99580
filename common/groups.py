"""How many groups a breakdown shown to people names, and the one rule that cuts
one (the portal, the admin, the invoice and its PDF all call top_and_rest); and the
reserved group value that usage past the per-customer limit of distinct values
counts under (billing.usage.group_limits)."""

from decimal import Decimal

# A breakdown shown to people names this many groups, the rest as "Other".
TOP_GROUPS = 5

# The group value of usage counted under "other": U+FFFF, a Unicode noncharacter
# (kept for a program's internal use), so no real value means something else by it.
OTHER_VALUE = "\uffff"


def top_and_rest(
    parts: list[tuple[str | None, Decimal]], *, additive: bool, top: int = TOP_GROUPS
) -> tuple[list[tuple[str | None, Decimal]], Decimal | None]:
    """Of (value, quantity) groups, largest first: the first `top` values, and the
    rest's quantity summed as "Other" (None: no rest, or a meter whose groups do
    not add up, whose rest is left out). A group of OTHER_VALUE is always in the
    rest."""
    named = [(value, quantity) for value, quantity in parts if value != OTHER_VALUE]
    rest = named[top:] + [(value, quantity) for value, quantity in parts if value == OTHER_VALUE]
    if not rest or not additive:
        return named[:top], None
    return named[:top], sum((quantity for _, quantity in rest), Decimal(0))

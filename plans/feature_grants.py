"""What a plan version (or a subscription's deal) grants of each feature, and the
rule of a feature's value, once: a `boolean` feature takes true or false; a
`config` one a number, a text or a list of texts. Values are normalized as they
are stored and answered: a whole number as an integer, a list as a tuple here
and a JSON list outside."""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from common.vocabulary import FeatureKind

MAX_FEATURES = 100
MAX_TEXT = 255
MAX_LIST = 100
# Beyond this a number is not a limit a product enforces but a typo.
MAX_NUMBER = Decimal(10) ** 15


@dataclass(frozen=True)
class FeatureGrant:
    feature: str
    # bool | int | float | str | tuple[str, ...]; in a deal, None revokes the feature.
    value: object


class BadValue(ValueError):
    pass


def feature_value(kind: str, value: object) -> object:
    """The value normalized for a feature of this kind; BadValue says why not."""
    if kind == FeatureKind.BOOLEAN:
        if isinstance(value, bool):
            return value
        raise BadValue("a boolean feature takes true or false")
    if isinstance(value, bool):
        raise BadValue("a config feature takes a number, a text or a list of texts, not true/false")
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite() or abs(number) > MAX_NUMBER:
            raise BadValue(f"must be a finite number of at most {MAX_NUMBER:,} in size")
        if number == number.to_integral_value():
            return int(number)
        return float(number)
    if isinstance(value, str):
        if not value or len(value) > MAX_TEXT:
            raise BadValue(f"a text of 1 to {MAX_TEXT} characters")
        return value
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise BadValue(f"at most {MAX_LIST} texts")
        if not all(isinstance(item, str) and 0 < len(item) <= MAX_TEXT for item in value):
            raise BadValue(f"a list of texts of 1 to {MAX_TEXT} characters each")
        return tuple(value)
    raise BadValue("a config feature takes a number, a text or a list of texts")


def value_to_json(value: object) -> object:
    """A valid value as JSON stores it: a list for a tuple, an exact number as an
    integer when whole (a decimal fraction as a float)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def check_grants(
    add: Callable[[str, str], None],
    grants: Iterable[FeatureGrant],
    *,
    known: Mapping[str, str],
    revocable: bool = False,
) -> None:
    """Report through `add(path, message)` each grant naming an unknown feature,
    twice the same one, or a value its kind does not take (`revocable`: None,
    a deal's revocation, is taken too). `known` maps feature codes to kinds."""
    seen: dict[str, int] = {}
    grants = list(grants)
    if len(grants) > MAX_FEATURES:
        add("features", f"at most {MAX_FEATURES} features")
    for index, grant in enumerate(grants):
        path = f"features.{index}"
        if grant.feature not in known:
            add(f"{path}.feature", f"there is no feature {grant.feature!r}")
            continue
        if grant.feature in seen:
            add(
                f"{path}.feature",
                f"feature {grant.feature!r} is granted twice (features.{seen[grant.feature]})",
            )
        seen.setdefault(grant.feature, index)
        if grant.value is None and revocable:
            continue
        try:
            feature_value(known[grant.feature], grant.value)
        except BadValue as bad:
            add(f"{path}.value", str(bad))


def granted(grants: Iterable[FeatureGrant]) -> dict[str, object]:
    """Feature code -> value, as the entitlements answer them."""
    return {grant.feature: value_to_json(grant.value) for grant in grants}


def features_compared(before: Mapping[str, object], after: Mapping[str, object]) -> dict:
    """What changed between two feature sets: gained, lost, and changed values."""
    return {
        "gained": sorted(code for code in after if code not in before),
        "lost": sorted(code for code in before if code not in after),
        "changed": sorted(code for code in after if code in before and before[code] != after[code]),
    }

"""The rules of a meter's filters and breakdown properties (plans.validation's
validate_meter checks a whole meter with them)."""

from collections.abc import Mapping
from decimal import Decimal

MAX_FILTERS = 50
# A meter splits its usage by at most this many event properties (breakdowns).
MAX_GROUP_BY = 3
MAX_PROPERTY_NAME = 255


def check_filters(errors, path: str, filters: object) -> None:
    if not isinstance(filters, Mapping):
        errors.add(
            path, 'must be an object of property -> list of values, e.g. {"model": ["gpt-4o"]}'
        )
        return
    if len(filters) > MAX_FILTERS:
        errors.add(path, f"at most {MAX_FILTERS} properties")
    for key, values in filters.items():
        if not isinstance(key, str) or not key:
            errors.add(path, "property names must be non-empty strings")
        elif not isinstance(values, list) or not values:
            errors.add(f"{path}.{key}", "must be a non-empty list of values")
        elif len(values) > MAX_FILTERS:
            errors.add(f"{path}.{key}", f"at most {MAX_FILTERS} values")
        elif not all(isinstance(v, str | int | Decimal | bool) for v in values):
            errors.add(f"{path}.{key}", "values must be strings, numbers or booleans")


def check_group_by(errors, path: str, group_by: object) -> None:
    """At most MAX_GROUP_BY distinct, non-blank property names."""
    if not isinstance(group_by, list | tuple):
        errors.add(path, 'must be a list of event property names, e.g. ["model"]')
        return
    if len(group_by) > MAX_GROUP_BY:
        errors.add(path, f"at most {MAX_GROUP_BY} properties")
    for index, name in enumerate(group_by):
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_PROPERTY_NAME:
            errors.add(f"{path}.{index}", f"a property name of 1 to {MAX_PROPERTY_NAME} characters")
        elif "," in name:
            # usage?group_by= separates properties by commas
            errors.add(f"{path}.{index}", "a property name without commas")
        elif name in group_by[:index]:
            errors.add(f"{path}.{index}", f"{name!r} is given twice")

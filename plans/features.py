"""Writes to the feature catalog (entitlements). A feature's code and kind are
what products and plan versions refer to: the code never changes, and the kind
not once a version grants the feature; its name and description do."""

from django.db import IntegrityError, transaction

from common.errors import Conflict, InvalidRequest
from common.vocabulary import FeatureKind
from plans.models import Feature, VersionFeature
from plans.validation import FieldErrors, check_code

NAME_MAX_LENGTH = 255


def validate_feature(*, code: object, name: object, kind: object) -> None:
    errors = FieldErrors()
    check_code(errors, "code", code)
    if not isinstance(name, str) or not name.strip():
        errors.add("name", "must not be blank")
    elif len(name) > NAME_MAX_LENGTH:
        errors.add("name", f"at most {NAME_MAX_LENGTH} characters")
    if kind not in FeatureKind.values:
        errors.add("kind", f"must be one of {', '.join(FeatureKind.values)}")
    errors.raise_if_any("invalid feature")


def feature_create(*, code: str, name: str, kind: str, description: str = "") -> Feature:
    """Create a feature; 400 (nothing written) for a bad code, name or kind, 409
    for a code taken."""
    validate_feature(code=code, name=name, kind=kind)
    try:
        with transaction.atomic():
            return Feature.objects.create(
                code=code, name=name.strip(), kind=kind, description=description
            )
    except IntegrityError as exc:
        raise Conflict(
            f"a feature with code {code!r} already exists", fields={"code": ["already exists"]}
        ) from exc


def feature_kind_check(*, feature: Feature, kind: str, named_by_deals: bool = False) -> None:
    """409 when the kind would change under the values plan versions or
    subscriptions' deals (`named_by_deals`, which the caller reads: deals are
    the billing side's, billing.subscriptions.deals) grant."""
    if kind == feature.kind:
        return
    if named_by_deals or VersionFeature.objects.filter(feature=feature).exists():
        raise Conflict(
            f"feature {feature.code} is granted as {feature.kind} by plan versions or "
            "subscriptions' deals; its kind cannot change",
            fields={"kind": ["granted by plan versions or deals: cannot change"]},
        )


def feature_update(*, feature: Feature, named_by_deals: bool = False, **changes) -> Feature:
    """Rename or describe a feature, or change its kind while no version or deal
    grants it."""
    unknown = set(changes) - {"name", "description", "kind"}
    if unknown:
        raise InvalidRequest(
            "a feature's code never changes",
            fields={name: ["cannot change"] for name in sorted(unknown)},
        )
    merged = {"name": feature.name, "kind": feature.kind, **changes}
    validate_feature(code=feature.code, name=merged["name"], kind=merged["kind"])
    with transaction.atomic():
        feature = Feature.objects.select_for_update().get(pk=feature.pk)
        feature_kind_check(feature=feature, kind=merged["kind"], named_by_deals=named_by_deals)
        for name, value in changes.items():
            setattr(feature, name, value.strip() if name == "name" else value)
        feature.save()
    return feature

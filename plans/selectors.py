"""Reads of the catalog."""

from django.db.models import Prefetch, QuerySet, Value
from django.db.models.functions import Coalesce, Lower, NullIf

from plans.feature_grants import FeatureGrant
from plans.models import (
    Charge,
    ChargeRate,
    Feature,
    Meter,
    Plan,
    PlanVersion,
    PriceTier,
    VersionFeature,
)
from plans.pricing import TierSpec
from plans.rate_card_pricing import RateSpec
from plans.rate_cards import rate_of
from plans.validation import ChargeSpec, VersionSpec, version_terms_spec


def meter_codes_in(spec: VersionSpec) -> dict[str, str]:
    """The codes among a spec's charges that name existing meters, with their
    aggregations."""
    wanted = {c.meter for c in spec.charges}
    return dict(Meter.objects.filter(code__in=wanted).values_list("code", "aggregation"))


def meter_groups_in(spec: VersionSpec) -> dict[str, tuple[str, ...]]:
    """The group_by of the existing meters a spec's rate cards price by."""
    wanted = {c.meter for c in spec.charges if c.rated}
    if not wanted:
        return {}
    return {
        code: tuple(group_by or ())
        for code, group_by in Meter.objects.filter(code__in=wanted).values_list("code", "group_by")
    }


def feature_kinds_in(spec) -> dict[str, str]:
    """The codes among a spec's (or a deal's) feature grants that name existing
    features, with their kinds."""
    wanted = {grant.feature for grant in spec.features}
    if not wanted:
        return {}
    return dict(Feature.objects.filter(code__in=wanted).values_list("code", "kind"))


def meter_is_in_published_version(*, meter: Meter) -> bool:
    return Charge.objects.filter(meter=meter).exclude(version__status=PlanVersion.DRAFT).exists()


def _name_order(prefix: str = ""):
    """A plan as menus name it (its name, else its code), whatever the case."""
    return Lower(Coalesce(NullIf(f"{prefix}name", Value("")), f"{prefix}code"))


def plans_by_name(plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """Plans as a menu lists them: by name, "alpha" before "Beta"."""
    return plans.order_by(_name_order(), "code")


def versions_by_plan_name(
    versions: QuerySet[PlanVersion], *, newest_first: bool = False
) -> QuerySet[PlanVersion]:
    """Versions as a menu lists them: by plan name ("alpha v1" before "Beta v1"),
    then by number."""
    number = "-number" if newest_first else "number"
    return versions.order_by(_name_order("plan__"), "plan__code", number)


def plan_versions_prefetched() -> QuerySet[PlanVersion]:
    return PlanVersion.objects.select_related("plan").prefetch_related(
        Prefetch(
            "charges",
            queryset=Charge.objects.select_related("meter").prefetch_related("tiers", "rates"),
        ),
        Prefetch("features", queryset=VersionFeature.objects.select_related("feature")),
    )


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.prefetch_related(Prefetch("versions", queryset=plan_versions_prefetched()))


def plan_version_latest_published(*, plan: Plan) -> PlanVersion | None:
    """The version a new subscription gets."""
    return (
        plan_versions_prefetched()
        .filter(plan=plan, status=PlanVersion.PUBLISHED)
        .order_by("-number")
        .first()
    )


def version_spec(*, version: PlanVersion) -> VersionSpec:
    """A version's stored terms as the plain value the validators and the rating
    read. A published or archived version never changes, so its spec is kept per
    process; a draft is read afresh every time."""
    if version.status != PlanVersion.DRAFT and version.pk in _frozen_specs:
        return _frozen_specs[version.pk]
    charges = list(
        Charge.objects.filter(version_id=version.pk).select_related("meter").order_by("id")
    )
    tiers: dict[int, list[TierSpec]] = {}
    for tier in PriceTier.objects.filter(charge__version_id=version.pk).order_by(
        "charge_id", "position", "id"
    ):
        tiers.setdefault(tier.charge_id, []).append(
            TierSpec(
                up_to=tier.up_to, unit_price=tier.unit_price, flat_fee=tier.flat_fee, per=tier.per
            )
        )
    rates: dict[int, list[RateSpec]] = {}
    if any(charge.price_by for charge in charges):
        for row in ChargeRate.objects.filter(charge__version_id=version.pk).order_by(
            "charge_id", "position", "id"
        ):
            rates.setdefault(row.charge_id, []).append(rate_of(row))
    spec = version_terms_spec(
        version,
        (
            ChargeSpec(
                meter=charge.meter.code,
                model=charge.model,
                included_units=charge.included_units,
                credits_per_unit=charge.credits_per_unit,
                when_exhausted=charge.when_exhausted,
                pricing=charge.pricing_spec(tiers=tuple(tiers.get(charge.id, ()))),
                price_by=tuple(charge.price_by or ()),
                rates=tuple(rates.get(charge.id, ())),
            )
            for charge in charges
        ),
        (
            FeatureGrant(code, tuple(value) if isinstance(value, list) else value)
            for code, value in VersionFeature.objects.filter(version_id=version.pk)
            .order_by("feature__code")
            .values_list("feature__code", "value")
        ),
    )
    if version.status != PlanVersion.DRAFT:
        _frozen_specs[version.pk] = spec
    return spec


# Specs of published and archived versions, which never change (plans.services
# refuses every write to them).
_frozen_specs: dict[int, VersionSpec] = {}


def version_spec_cache_clear() -> None:
    _frozen_specs.clear()

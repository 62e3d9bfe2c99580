"""Reads of the catalog."""

from django.db.models import Prefetch, QuerySet

from plans.models import Charge, Meter, Plan, PlanVersion
from plans.validation import ChargeSpec, VersionSpec, version_terms_spec


def meter_codes_in(spec: VersionSpec) -> set[str]:
    """The codes among a spec's charges that name existing meters."""
    wanted = {c.meter for c in spec.charges}
    return set(Meter.objects.filter(code__in=wanted).values_list("code", flat=True))


def meter_is_in_published_version(*, meter: Meter) -> bool:
    return Charge.objects.filter(meter=meter).exclude(version__status=PlanVersion.DRAFT).exists()


def plan_versions_prefetched() -> QuerySet[PlanVersion]:
    return PlanVersion.objects.select_related("plan").prefetch_related(
        Prefetch(
            "charges", queryset=Charge.objects.select_related("meter").prefetch_related("tiers")
        )
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
    """A version's stored terms as the plain value the validators and the rating read."""
    charges = tuple(
        ChargeSpec(
            meter=charge.meter.code,
            model=charge.model,
            included_units=charge.included_units,
            credits_per_unit=charge.credits_per_unit,
            pricing=charge.pricing_spec(),
        )
        for charge in version.charges.select_related("meter").prefetch_related("tiers")
    )
    return version_terms_spec(version, charges)

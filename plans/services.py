"""Writes to the catalog. Every function validates with plans.validation first and
changes nothing when it refuses; a published version is never changed.

A version's services each write its audit rows (the version, its charges, tiers
and feature grants) as one change (common.history.one_change): its price history
reads one save as one change, however soon the next save follows."""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from djmoney.money import Money

from common.errors import Conflict, InvalidRequest
from common.history import change_in_progress, history_tags, one_change
from common.task_sending import enqueue_on_commit
from plans import selectors
from plans.feature_grants import feature_value, value_to_json
from plans.locks import (
    credit_pack_lock,
    meter_lock,
    plan_lock,
    plan_version_lock,
)
from plans.models import (
    DEFAULT_UNIT_CODE,
    Charge,
    ChargeRate,
    CreditPack,
    Feature,
    Meter,
    Plan,
    PlanVersion,
    PriceTier,
    VersionFeature,
)
from plans.rate_cards import rate_rows

# The tax rates' writes, in a module of their own (callers name them here too).
from plans.tax_rates import (  # noqa: F401
    TAX_RATE_TERMS,
    default_rate_check,
    rate_name,
    tax_rate_archive_check,
    tax_rate_create,
    tax_rate_delete,
    tax_rate_in_use,
    tax_rate_update,
)
from plans.validation import (
    VERSION_TERMS,
    FieldErrors,
    VersionSpec,
    check_code,
    validate_credit_pack,
    validate_meter,
    validate_version,
)

METER_DEFINITION_FIELDS = (
    "event_name",
    "aggregation",
    "value_property",
    "unique_property",
    "filters",
    "group_by",
)


def meter_create(
    *,
    code: str,
    name: str,
    event_name: str,
    aggregation: str,
    value_property: str = "",
    unique_property: str = "",
    filters: dict | None = None,
    group_by: list | None = None,
    invoice_breakdown: str = "",
    unit_code: str = DEFAULT_UNIT_CODE,
) -> Meter:
    definition = {
        "code": code,
        "name": name,
        "event_name": event_name,
        "aggregation": aggregation,
        "value_property": value_property,
        "unique_property": unique_property,
        "filters": {} if filters is None else filters,
        "group_by": [] if group_by is None else list(group_by),
        "invoice_breakdown": invoice_breakdown or "",
        "unit_code": unit_code,
    }
    validate_meter(**definition)
    try:
        with transaction.atomic():
            meter = Meter.objects.create(**definition)
            _rebuild_usage_after_commit(meter)
            return meter
    except IntegrityError as exc:
        raise Conflict(
            f"a meter with code {code!r} already exists", fields={"code": ["already exists"]}
        ) from exc


def meter_check_update(*, meter: Meter, values: dict) -> None:
    """Refuse a change to a meter. Its definition (what it counts) is frozen once
    a published version charges for it: otherwise an old price would start
    counting new things."""
    validate_meter(**values)
    changed = [f for f in ("code", *METER_DEFINITION_FIELDS) if values[f] != getattr(meter, f)]
    if changed and selectors.meter_is_in_published_version(meter=meter):
        raise Conflict(
            f"meter {meter.code!r} is charged by a published version; "
            "create a new meter instead of changing what it counts",
            fields={
                f: [
                    _(
                        "A published version charges this meter, so what it counts is fixed: "
                        "create a new meter instead."
                    )
                ]
                for f in changed
            },
        )


def meter_update(*, meter: Meter, **changes) -> Meter:
    """Change a meter's name, or its definition while no published version uses it."""
    with transaction.atomic():
        meter = meter_lock(meter.pk)
        values = {
            f: getattr(meter, f)
            for f in ("code", "name", "invoice_breakdown", "unit_code", *METER_DEFINITION_FIELDS)
        }
        values.update(changes)
        meter_check_update(meter=meter, values=values)
        redefined = any(values[f] != getattr(meter, f) for f in METER_DEFINITION_FIELDS)
        for name, value in values.items():
            setattr(meter, name, value)
        meter.save()
        if redefined:
            _rebuild_usage_after_commit(meter)
    return meter


def _rebuild_usage_after_commit(meter: Meter) -> None:
    """Events stored before a meter existed (or with another definition) are
    counted again for it, by a task, once this transaction has committed."""
    enqueue_on_commit("billing.tasks.rebuild_meter_usage", meter.pk, robust=False)


def _validate_in_catalog(spec: VersionSpec) -> None:
    """validate_version against the meters and features the catalog holds now."""
    validate_version(
        spec,
        known_meters=selectors.meter_codes_in(spec),
        known_features=selectors.feature_kinds_in(spec),
        meter_groups=selectors.meter_groups_in(spec),
    )


def plan_create(
    *, code: str, name: str, version: VersionSpec, description: str = "", publish: bool = False
) -> PlanVersion:
    """Create a plan and its version 1 (draft, or published when `publish`). Atomic."""
    errors = FieldErrors()
    check_code(errors, "code", code)
    if not name or not name.strip():
        errors.add("name", "must not be blank")
    errors.raise_if_any("invalid plan")
    _validate_in_catalog(version)
    with transaction.atomic():
        plan, created = Plan.objects.get_or_create(
            code=code, defaults={"name": name, "description": description}
        )
        if not created:
            raise Conflict(
                f"a plan with code {code!r} already exists; add a version instead",
                fields={"code": ["already exists"]},
            )
        # The version's creation (and publication) is one change; the plan's row is
        # left out of it, as the plan's History page would show its change id.
        with one_change():
            plan_version = _version_write(plan=plan, number=1, spec=version)
            if publish:
                plan_version = plan_version_publish(version=plan_version)
    return plan_version


@one_change()
def plan_version_create(*, plan: Plan, version: VersionSpec) -> PlanVersion:
    """Add the next numbered draft version to a plan. Locks the plan row to number it."""
    _validate_in_catalog(version)
    with transaction.atomic():
        plan = plan_lock(plan.pk)
        plan_version_check_currency(plan=plan, currency=version.currency)
        last = plan.versions.aggregate(last=Max("number"))["last"] or 0
        return _version_write(plan=plan, number=last + 1, spec=version)


@one_change()
def plan_version_update(*, version: PlanVersion, spec: VersionSpec) -> PlanVersion:
    """Replace a draft's terms and charges. A published or archived version is refused."""
    _validate_in_catalog(spec)
    with transaction.atomic():
        version = _lock_draft(version, action="change")
        plan_version_check_currency(plan=version.plan, currency=spec.currency, excluding=version)
        version.charges.all().delete()
        version.features.all().delete()
        _apply_terms(version, spec)
        version.save()
        _write_charges(version, spec)
        _write_features(version, spec)
    return version


@one_change()
def plan_version_publish(*, version: PlanVersion) -> PlanVersion:
    """Validate the stored draft again and publish it; from then on it never changes.
    Existing subscribers stay on their versions (grandfathering)."""
    with transaction.atomic():
        version = _lock_draft(version, action="publish")
        spec = selectors.version_spec(version=version)
        _validate_in_catalog(spec)
        version.status = PlanVersion.PUBLISHED
        version.published_at = timezone.now()
        version.save(update_fields=["status", "published_at"])
    return version


@one_change()
def plan_version_archive(*, version: PlanVersion) -> PlanVersion:
    """Stop offering a version to new subscriptions. Its subscribers keep it."""
    with transaction.atomic():
        version = plan_version_lock(version.pk)
        if version.status == PlanVersion.ARCHIVED:
            raise Conflict(f"{version} is already archived")
        version.status = PlanVersion.ARCHIVED
        version.archived_at = timezone.now()
        version.save(update_fields=["status", "archived_at"])
    return version


@one_change()
def plan_version_copy_as_draft(*, version: PlanVersion) -> PlanVersion:
    """A new draft with the same terms and charges: the way to change a published price.
    Its history says which version it copies (the `copied_from` tag, its number)."""
    with history_tags(copied_from=version.number):
        return plan_version_create(
            plan=version.plan, version=selectors.version_spec(version=version)
        )


def credit_pack_create(
    *,
    code: str,
    credits: Decimal,
    price: Decimal,
    currency: str,
    name: str = "",
    applies_to: list[str] | None = None,
) -> CreditPack:
    """A pack; `applies_to`: the meters its credits pay for (none: every meter)."""
    applies_to = [] if applies_to is None else applies_to
    validate_credit_pack(
        code=code, credits=credits, price=price, currency=currency, applies_to=applies_to
    )
    try:
        with transaction.atomic():
            return CreditPack.objects.create(
                code=code,
                name=name or code,
                credits=credits,
                price=Money(price, currency),
                applies_to=applies_to,
            )
    except IntegrityError as exc:
        raise Conflict(
            f"a credit pack with code {code!r} already exists", fields={"code": ["already exists"]}
        ) from exc


def credit_pack_update(*, pack: CreditPack, **changes) -> CreditPack:
    """Change a pack for future purchases; past purchases keep what they paid."""
    values = {
        "code": pack.code,
        "credits": pack.credits,
        "price": pack.price.amount,
        "currency": str(pack.price.currency),
        "applies_to": pack.applies_to,
    } | changes
    validate_credit_pack(
        **{k: values[k] for k in ("code", "credits", "price", "currency", "applies_to")}
    )
    with transaction.atomic():
        pack = credit_pack_lock(pack.pk)
        pack.code = values["code"]
        pack.credits = values["credits"]
        pack.price = Money(values["price"], values["currency"])
        pack.applies_to = values["applies_to"]
        pack.name = values.get("name", pack.name)
        pack.active = values.get("active", pack.active)
        pack.save()
    return pack


PAST_PARTICIPLES = {"change": "changed", "publish": "published"}


def _lock_draft(version: PlanVersion, *, action: str) -> PlanVersion:
    version = plan_version_lock(version.pk, with_plan=True)
    if version.status != PlanVersion.DRAFT:
        raise Conflict(
            # The status as stored ("published"): the API's words are English.
            f"{version} is {version.status}: only a draft can be "
            f"{PAST_PARTICIPLES[action]}; published versions never change, so make a new "
            "draft instead"
        )
    return version


def plan_version_check_currency(
    *, plan: Plan, currency: str, excluding: PlanVersion | None = None
) -> None:
    others = plan.versions.exclude(currency=currency)
    if excluding is not None:
        others = others.exclude(pk=excluding.pk)
    other = others.first()
    if other is not None:
        raise InvalidRequest(
            f"plan {plan.code!r} bills in {other.currency}; a plan's versions share one currency",
            fields={
                "currency": [
                    _("{plan} bills in {currency}: all its versions share one currency.").format(
                        plan=plan, currency=other.currency
                    )
                ]
            },
        )


def _apply_terms(version: PlanVersion, spec: VersionSpec) -> None:
    for name in VERSION_TERMS:
        setattr(version, name, getattr(spec, name))


def _version_write(*, plan: Plan, number: int, spec: VersionSpec) -> PlanVersion:
    version = PlanVersion(plan=plan, number=number, status=PlanVersion.DRAFT)
    _apply_terms(version, spec)
    version.save()
    _write_charges(version, spec)
    _write_features(version, spec)
    return version


def _write_charges(version: PlanVersion, spec: VersionSpec) -> None:
    meters = {m.code: m for m in Meter.objects.filter(code__in=[c.meter for c in spec.charges])}
    tiers: list[PriceTier] = []
    rates: list[ChargeRate] = []
    for charge_spec in spec.charges:
        pricing = charge_spec.pricing
        charge = Charge.objects.create(
            version=version,
            meter=meters[charge_spec.meter],
            model=charge_spec.model,
            included_units=charge_spec.included_units,
            credits_per_unit=charge_spec.credits_per_unit,
            when_exhausted=charge_spec.when_exhausted,
            pricing_scheme=pricing.scheme if pricing else "",
            unit_price=pricing.unit_price if pricing else None,
            per=pricing.per if pricing else Decimal(1),
            package_size=pricing.package_size if pricing else None,
            package_price=pricing.package_price if pricing else None,
            price_by=list(charge_spec.price_by),
        )
        rates.extend(rate_rows(charge, charge_spec.rates))
        if pricing:
            tiers.extend(
                PriceTier(
                    charge=charge,
                    position=position,
                    up_to=tier.up_to,
                    unit_price=tier.unit_price,
                    per=tier.per,
                    flat_fee=tier.flat_fee,
                )
                for position, tier in enumerate(pricing.tiers)
            )
    # bulk_create writes no audit history of its own: the tiers' rows are added here
    # (the price history of a version reads them).
    for model, rows in ((PriceTier, tiers), (ChargeRate, rates)):
        model.history.bulk_history_create(
            model.objects.bulk_create(rows), default_change_reason=change_in_progress()
        )


def _write_features(version: PlanVersion, spec: VersionSpec) -> None:
    """The version's feature grants, values normalized by their features' kinds."""
    features = Feature.objects.in_bulk([g.feature for g in spec.features], field_name="code")
    grants = VersionFeature.objects.bulk_create(
        VersionFeature(
            version=version,
            feature=features[grant.feature],
            value=value_to_json(feature_value(features[grant.feature].kind, grant.value)),
        )
        for grant in spec.features
    )
    VersionFeature.history.bulk_history_create(grants, default_change_reason=change_in_progress())

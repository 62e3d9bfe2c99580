"""Writes to the catalog. Every function validates with plans.validation first and
changes nothing when it refuses; a published version is never changed.

A version's services each write its audit rows (the version, its charges, tiers
and feature grants) as one change (config.history.one_change): its price history
reads one save as one change, however soon the next save follows."""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from djmoney.money import Money

from billing.core.errors import Conflict, InvalidRequest
from billing.core.money import format_decimal
from config.celery import enqueue_on_commit
from config.history import change_in_progress, one_change
from plans import selectors
from plans.feature_grants import feature_value, value_to_json
from plans.locks import (
    credit_pack_lock,
    meter_lock,
    plan_lock,
    plan_version_lock,
    tax_rate_lock,
    tax_rates_lock,
)
from plans.models import (
    Charge,
    ChargeRate,
    CreditPack,
    Feature,
    Meter,
    Plan,
    PlanVersion,
    PriceTier,
    TaxRate,
    VersionFeature,
)
from plans.rate_cards import rate_rows
from plans.validation import (
    VERSION_TERMS,
    FieldErrors,
    VersionSpec,
    check_code,
    validate_credit_pack,
    validate_meter,
    validate_tax_rate,
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
                    "A published version charges this meter, so what it counts is fixed: "
                    "create a new meter instead."
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
            for f in ("code", "name", "invoice_breakdown", *METER_DEFINITION_FIELDS)
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
    """A new draft with the same terms and charges: the way to change a published price."""
    return plan_version_create(plan=version.plan, version=selectors.version_spec(version=version))


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


TAX_RATE_TERMS = ("code", "name", "percentage", "country")


def tax_rate_create(
    *,
    code: str,
    name: str,
    percentage: Decimal,
    country: str = "",
    is_default: bool = False,
    active: bool = True,
) -> TaxRate:
    country = country or ""
    validate_tax_rate(code=code, name=name, percentage=percentage, country=country)
    try:
        with transaction.atomic():
            return TaxRate.objects.create(
                code=code,
                name=name.strip(),
                percentage=percentage,
                country=country,
                is_default=is_default,
                active=active,
            )
    except IntegrityError as exc:
        raise Conflict(
            f"a tax rate with code {code!r} already exists", fields={"code": ["already exists"]}
        ) from exc


def tax_rate_in_use(rate: TaxRate) -> bool:
    """Whether an invoice was taxed at the rate: its terms are then frozen."""
    return rate.invoice_tax_lines.exists()


def tax_rate_archive_check(
    *, rate: TaxRate, active: bool | None, replaced_by: object = None
) -> TaxRate | None:
    """The rate that archiving `rate` (`active` False; None: left as it is) moves
    the customers holding it as their own to: the active rate `replaced_by` names,
    or None. A rate customers hold is not archived under them without one (they
    would silently be taxed at the default rates): 409 naming how many hold it.
    400 naming replaced_by for a replacement without archiving, an unknown or
    archived rate, the rate itself, or a rate of another country than the rate's
    (a rate without a country applies everywhere, so it may replace any). Reads
    only; tax_rate_update calls it with the rates locked."""
    if replaced_by is None:
        held_by = rate.customers.count() if active is False and rate.active else 0
        if held_by:
            holders = f"{held_by} customer{'' if held_by == 1 else 's'}"
            raise Conflict(
                f"tax rate {rate.code} is charged to {holders} as their own rate: "
                "archive it with replaced_by, the code of the rate they move to, or give them "
                "another rate first",
                fields={
                    "active": [f"charged to {holders} as their own rate"],
                    "replaced_by": [f"choose the rate the {holders} move to"],
                },
            )
        return None
    replacement = TaxRate.objects.filter(code=replaced_by).first()
    if active is not False:
        problem = "only when the rate is archived (active: false)"
        words = "Customers move to another rate only when this rate is archived: untick Active."
    elif replacement is None:
        problem = f"unknown tax rate {replaced_by!r}"
        words = "That rate no longer exists: choose another rate for the customers."
    elif replacement.pk == rate.pk:
        problem = "is the rate being archived"
        words = f"{rate_name(rate)} is the rate being archived: choose another one."
    elif not replacement.active:
        problem = f"tax rate {replacement.code!r} is archived"
        words = f"{rate_name(replacement)} is archived too: choose an active rate."
    elif rate.country and replacement.country not in ("", rate.country):
        problem = (
            f"tax rate {replacement.code!r} applies in {replacement.country}, "
            f"{rate.code} in {rate.country}"
        )
        words = (
            f"{rate_name(replacement)} applies in {replacement.country} and "
            f"{rate_name(rate)} in {rate.country}: choose a rate of {rate.country} "
            "or one without a country."
        )
    else:
        return replacement
    raise InvalidRequest(
        f"invalid replaced_by: {problem}", fields={"replaced_by": [problem]}, words=words
    )


def rate_name(rate: TaxRate) -> str:
    """'MwSt. 19 %': a tax rate as finance names it (the percentage tells names apart)."""
    return f"{rate.name} {format_decimal(rate.percentage)} %"


def _holders_move(rate: TaxRate, replacement: TaxRate) -> None:
    """The customers holding `rate` as their own hold `replacement` instead (once,
    for one holding both). Under their row locks, in primary-key order, taken
    after the rates' (plans.locks). Their Stripe customers hold no tax rates:
    nothing to send them."""
    list(rate.customers.select_for_update(of=("self",)).order_by("pk").values_list("pk"))
    links = TaxRate.customers.through.objects
    holding_both = links.filter(taxrate=replacement).values("customer_id")
    links.filter(taxrate=rate, customer_id__in=holding_both).delete()
    links.filter(taxrate=rate).update(taxrate=replacement)


def tax_rate_update(*, rate: TaxRate, replaced_by: str | None = None, **changes) -> TaxRate:
    """Change a tax rate. Once an invoice was taxed at it, only `active` and
    `is_default` may change: archive it and create another for a new percentage.
    Archiving a rate customers hold as their own needs `replaced_by`, the code of
    the rate they hold instead from then, moved in the same transaction
    (tax_rate_archive_check says what is refused). Locks the rate and its
    replacement, then the customers moved."""
    unknown = set(changes) - {*TAX_RATE_TERMS, "is_default", "active"}
    if unknown:
        raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
    with transaction.atomic():
        codes = [replaced_by] if isinstance(replaced_by, str) else []
        locked = {r.pk: r for r in tax_rates_lock(ids=[rate.pk], codes=codes)}
        rate = locked[rate.pk]
        values = {name: getattr(rate, name) for name in TAX_RATE_TERMS} | {
            name: value for name, value in changes.items() if name in TAX_RATE_TERMS
        }
        values["country"] = values["country"] or ""
        changed = [name for name in TAX_RATE_TERMS if values[name] != getattr(rate, name)]
        if changed and tax_rate_in_use(rate):
            raise Conflict(
                f"tax rate {rate.code} has taxed invoices: its {', '.join(changed)} cannot "
                "change; archive it (active: false) and create a new rate",
                fields={name: ["cannot change once invoices were taxed at it"] for name in changed},
            )
        replacement = tax_rate_archive_check(
            rate=rate, active=changes.get("active"), replaced_by=replaced_by
        )
        validate_tax_rate(**values)
        for name, value in values.items():
            setattr(rate, name, value)
        rate.is_default = changes.get("is_default", rate.is_default)
        rate.active = changes.get("active", rate.active)
        rate.save()
        if replacement is not None:
            _holders_move(rate, replacement)
    return rate


def tax_rate_delete(*, rate: TaxRate) -> None:
    with transaction.atomic():
        rate = tax_rate_lock(rate.pk)
        if tax_rate_in_use(rate):
            raise Conflict(
                f"tax rate {rate.code} has taxed invoices: archive it (active: false) instead",
                words=(
                    f"{rate_name(rate)} has taxed invoices, so it is kept: archive it "
                    "(untick Active) instead."
                ),
            )
        rate.delete()


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
                    f"{plan} bills in {other.currency}: all its versions share one currency."
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

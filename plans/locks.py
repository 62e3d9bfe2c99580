"""Row locks on the catalog, in one place: a write to a meter, a plan, a version
or a credit pack holds its row, and a new version holds its plan (numbering).
Price simulations are claimed under their row lock too. A coupon is redeemed
under its row lock (taken after the subscription's: billing.locks). Tax rates
are locked before customers: an archive holds the rate and its replacement, then
the customers it moves; a customer given rates holds them before its own row
(customers.services), so that it is never given a rate archived meanwhile."""

from collections.abc import Iterable

from django.db.models import Q

from plans.models import Coupon, CreditPack, Meter, Plan, PlanVersion, PriceSimulation, TaxRate


def meter_lock(meter_id: int) -> Meter:
    return Meter.objects.select_for_update().get(pk=meter_id)


def plan_lock(plan_id: int) -> Plan:
    return Plan.objects.select_for_update().get(pk=plan_id)


def plan_version_lock(version_id: int, *, with_plan: bool = False) -> PlanVersion:
    """Lock a version; `with_plan` locks its plan too (a draft's edits and its
    publishing), otherwise the plan row is read, not held."""
    versions = PlanVersion.objects.select_related("plan")
    locked = versions.select_for_update() if with_plan else versions.select_for_update(of=("self",))
    return locked.get(pk=version_id)


def credit_pack_lock(pack_id: int) -> CreditPack:
    return CreditPack.objects.select_for_update().get(pk=pack_id)


def price_simulation_lock(simulation_id: int) -> PriceSimulation:
    return (
        PriceSimulation.objects.select_for_update(of=("self",))
        .select_related("version__plan")
        .get(pk=simulation_id)
    )


def tax_rate_lock(rate_id: int) -> TaxRate:
    return TaxRate.objects.select_for_update().get(pk=rate_id)


def tax_rates_lock(
    *, ids: Iterable[int] = (), codes: Iterable[str] = (), no_key: bool = False
) -> list[TaxRate]:
    """Lock the rates of these ids and codes in primary-key order and return them
    fresh (those that exist). `no_key`: FOR NO KEY UPDATE, as a customer given the
    rates takes them (it waits for an archive, FOR UPDATE, and sees its result)."""
    wanted = Q(pk__in=list(ids)) | Q(code__in=list(codes))
    return list(TaxRate.objects.select_for_update(no_key=no_key).filter(wanted).order_by("pk"))


def coupon_lock(coupon_id: int) -> Coupon:
    return Coupon.objects.select_for_update().get(pk=coupon_id)

"""Row locks on the catalog, in one place: a write to a meter, a plan, a version
or a credit pack holds its row, and a new version holds its plan (numbering).
Price simulations are claimed under their row lock too. A coupon is redeemed
under its row lock (taken after the subscription's: billing.locks)."""

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


def coupon_lock(coupon_id: int) -> Coupon:
    return Coupon.objects.select_for_update().get(pk=coupon_id)

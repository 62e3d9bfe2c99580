"""Row locks on the catalog, in one place: a write to a meter, a plan, a version
or a credit pack holds its row, and a new version holds its plan (numbering).
Price simulations are claimed under their row lock too."""

from plans.models import CreditPack, Meter, Plan, PlanVersion, PriceSimulation


def meter_lock(meter_id: int) -> Meter:
    return Meter.objects.select_for_update().get(pk=meter_id)


def plan_lock(plan_id: int) -> Plan:
    return Plan.objects.select_for_update().get(pk=plan_id)


def plan_version_lock(version_id: int) -> PlanVersion:
    return PlanVersion.objects.select_for_update().select_related("plan").get(pk=version_id)


def credit_pack_lock(pack_id: int) -> CreditPack:
    return CreditPack.objects.select_for_update().get(pk=pack_id)


def price_simulation_lock(simulation_id: int) -> PriceSimulation:
    return (
        PriceSimulation.objects.select_for_update(of=("self",))
        .select_related("version__plan")
        .get(pk=simulation_id)
    )

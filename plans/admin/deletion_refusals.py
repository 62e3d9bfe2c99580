"""Why a catalog object in use may not be deleted, in the words its admin page
shows (common.admin_deletion): the plan and version by name, how many
customers are on it, and what to do instead."""

from billing.subscriptions.selectors import with_live_subscription_count
from plans.models import Meter, Plan, PlanVersion
from plans.selectors import versions_by_plan_name


def customers_on(count: int, version: PlanVersion) -> str:
    """'12 customers are on Pro v1', '1 customer is on Pro v1'."""
    if count == 1:
        return f"1 customer is on {version}"
    return f"{count} customers are on {version}"


def _names(versions) -> str:
    return ", ".join(str(version) for version in versions)


def version_deletion_refusal(version: PlanVersion) -> str | None:
    """None for a draft (nobody was ever on it); for a published or archived
    version, why it stays."""
    if version.pk is None or version.status == PlanVersion.DRAFT:
        return None
    count = with_live_subscription_count(PlanVersion.objects.filter(pk=version.pk)).values_list(
        "live_subscription_count", flat=True
    )[0]
    if version.status == PlanVersion.PUBLISHED:
        if count:
            return f"{customers_on(count, version)}: archive it instead."
        return (
            f"{version} is published: archive it instead "
            "(its invoices and subscriptions keep naming it)."
        )
    if count:
        return f"{customers_on(count, version)}: it stays while they are, and for their invoices."
    return f"{version} is archived: it stays, for the invoices and subscriptions that name it."


def plan_deletion_refusal(plan: Plan) -> str | None:
    """None for a plan without versions; otherwise why it stays: the customers
    on its versions, its published or archived versions, or its drafts."""
    if plan.pk is None:
        return None
    versions = list(with_live_subscription_count(plan.versions.all()).order_by("number"))
    if not versions:
        return None
    sold = [v for v in versions if v.status != PlanVersion.DRAFT]
    with_customers = [v for v in sold if v.live_subscription_count]
    if with_customers:
        who = "; ".join(customers_on(v.live_subscription_count, v) for v in with_customers)
        return (
            f"{who}: archive {'it' if len(with_customers) == 1 else 'them'} instead "
            f"({plan} stays, for the invoices that name it)."
        )
    if sold:
        return (
            f"{plan} was sold through {_names(sold)}: it stays, for the invoices and "
            "subscriptions that name it; archive its published versions to stop selling it."
        )
    return f"{plan} has draft versions ({_names(versions)}): delete them first."


def meter_deletion_refusal(meter: Meter) -> str | None:
    """None for a meter no version charges; otherwise the versions that do."""
    if meter.pk is None:
        return None
    versions = list(
        versions_by_plan_name(
            PlanVersion.objects.filter(charges__meter=meter).select_related("plan").distinct()
        )
    )
    if not versions:
        return None
    name = meter.name or meter.code
    if any(v.status != PlanVersion.DRAFT for v in versions):
        return (
            f"{name} is charged by {_names(versions)}: it stays while a published or "
            "archived version charges it (their invoices name it)."
        )
    return f"{name} is charged by the drafts {_names(versions)}: remove their charges first."

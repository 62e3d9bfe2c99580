"""Stamp the plan that priced each line written before lines said so (0026):
the rule the journal and margins used to reconstruct it with.

A line of a subscription's invoice is under the plan of the subscription's
billed part (billing.BilledPeriod: usage_from to usage_to, at a version) in
which its service period starts; a credit for the unused fixed fees from a
moment (a plan change's, a cancel's) is under the part that ends there, the
version left. Where no part was recorded there (the part under way, or a line
with no service period) it is under the subscription's plan now. Lines of
invoices without a subscription, and lines no plan prices (credit packs,
credits and top-ups bought, a prepaid commit's invoice), keep ""."""

from django.db import migrations

# Lines that sell something used later: no plan priced them.
NOT_PRICED = ("credit_pack", "credits", "top_up", "commit")
# Subscriptions read at a time.
CHUNK = 500


def _part_plan(parts: list[tuple], kind: str, start) -> str | None:
    """The plan of the part (usage_from, usage_to, plan) a line starting at
    `start` lies in; a proration credit's, the part ending at `start`."""
    if start is None:
        return None
    if kind == "proration_credit":
        for _usage_from, usage_to, plan in parts:
            if usage_to == start:
                return plan
    for usage_from, usage_to, plan in parts:
        if usage_from <= start < usage_to:
            return plan
    return None


def line_plans_fill(apps, schema_editor) -> None:
    InvoiceLine = apps.get_model("invoices", "InvoiceLine")
    BilledPeriod = apps.get_model("billing", "BilledPeriod")
    Subscription = apps.get_model("billing", "Subscription")
    empty = InvoiceLine.objects.filter(plan="", invoice__subscription__isnull=False).exclude(
        kind__in=NOT_PRICED
    )
    subscription_ids = sorted(
        empty.values_list("invoice__subscription_id", flat=True).order_by().distinct()
    )
    for at in range(0, len(subscription_ids), CHUNK):
        chunk = subscription_ids[at : at + CHUNK]
        now = dict(
            Subscription.objects.filter(pk__in=chunk).values_list("pk", "version__plan__code")
        )
        parts: dict[int, list[tuple]] = {}
        for subscription_id, *part in (
            BilledPeriod.objects.filter(subscription_id__in=chunk)
            .order_by("subscription_id", "usage_from")
            .values_list("subscription_id", "usage_from", "usage_to", "version__plan__code")
        ):
            parts.setdefault(subscription_id, []).append(tuple(part))
        stamps: dict[str, list[int]] = {}
        for pk, subscription_id, kind, start in empty.filter(
            invoice__subscription_id__in=chunk
        ).values_list("pk", "invoice__subscription_id", "kind", "period_start"):
            plan = _part_plan(parts.get(subscription_id, []), kind, start)
            stamps.setdefault(plan or now[subscription_id], []).append(pk)
        for plan, ids in stamps.items():
            InvoiceLine.objects.filter(pk__in=ids).update(plan=plan)


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0028_line_share"),
        ("billing", "0034_group_values_limit"),
    ]

    operations = [migrations.RunPython(line_plans_fill, migrations.RunPython.noop)]

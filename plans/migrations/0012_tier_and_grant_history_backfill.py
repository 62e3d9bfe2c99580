"""Price tiers and feature grants were written in bulk without audit history rows
until plans.services wrote them: each tier and grant that has none gets its
creation row, dated with its charge's (its version's) creation, so a version's
price history finds them there and a later save reads as what it changed."""

from django.db import migrations
from django.utils import timezone


def _created_at(historical_model) -> dict:
    """The first history date of each object of a historical model, by id."""
    dates: dict = {}
    for object_id, date in historical_model.objects.order_by("history_date").values_list(
        "id", "history_date"
    ):
        dates.setdefault(object_id, date)
    return dates


def backfill(apps, schema_editor):
    now = timezone.now()
    recorded = apps.get_model("plans", "HistoricalPriceTier")
    seen = set(recorded.objects.values_list("id", flat=True))
    charge_created = _created_at(apps.get_model("plans", "HistoricalCharge"))
    recorded.objects.bulk_create(
        recorded(
            id=tier.id,
            charge_id=tier.charge_id,
            position=tier.position,
            up_to=tier.up_to,
            unit_price=tier.unit_price,
            flat_fee=tier.flat_fee,
            history_date=charge_created.get(tier.charge_id, now),
            history_type="+",
        )
        for tier in apps.get_model("plans", "PriceTier").objects.order_by("id")
        if tier.id not in seen
    )
    recorded = apps.get_model("plans", "HistoricalVersionFeature")
    seen = set(recorded.objects.values_list("id", flat=True))
    version_created = _created_at(apps.get_model("plans", "HistoricalPlanVersion"))
    recorded.objects.bulk_create(
        recorded(
            id=grant.id,
            version_id=grant.version_id,
            feature_id=grant.feature_id,
            value=grant.value,
            history_date=version_created.get(grant.version_id, now),
            history_type="+",
        )
        for grant in apps.get_model("plans", "VersionFeature").objects.order_by("id")
        if grant.id not in seen
    )


class Migration(migrations.Migration):
    dependencies = [("plans", "0011_breakdowns")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]

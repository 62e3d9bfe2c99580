"""Group rollups keep each event's combination of its meter's group values (for a
meter grouping by two or more properties), which rate cards price: events stored
before have none, so each such meter's rollups are rebuilt from its events once
(billing.usage.rebuild; a no-op on a database without such meters)."""

from django.db import migrations


def rebuild_multi_property_meters(apps, schema_editor):
    from billing.usage.rebuild import meter_usage_rebuild

    Meter = apps.get_model("plans", "Meter")
    for meter_id, group_by in Meter.objects.values_list("id", "group_by"):
        if group_by and len(group_by) > 1:
            meter_usage_rebuild(meter_id=meter_id)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0024_admin_words_translatable"),
        ("plans", "0015_rate_cards"),
    ]

    operations = [
        migrations.RunPython(rebuild_multi_property_meters, migrations.RunPython.noop),
    ]

from django.db import migrations

# The values as this migration knows them (billing.integrations.ingest may change).
OLD_DEFAULT = "user"
PER_KIND = "per_kind"


def customer_per_kind(apps, schema_editor):
    """OpenRouter's source made with the old default customer_from (`user`, which a
    generation record does not carry) and never saved by anyone since (no
    updated_by) takes the new default, per kind of record: a generation's
    `external_user`, a completion's `user`. A `user` someone saved stays."""
    IntegrationSource = apps.get_model("billing", "IntegrationSource")
    IntegrationSource.objects.filter(
        source="openrouter", customer_from=OLD_DEFAULT, updated_by=""
    ).update(customer_from=PER_KIND)


def customer_user(apps, schema_editor):
    IntegrationSource = apps.get_model("billing", "IntegrationSource")
    IntegrationSource.objects.filter(
        source="openrouter", customer_from=PER_KIND, updated_by=""
    ).update(customer_from=OLD_DEFAULT)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0041_unpriced_models"),
    ]

    operations = [
        migrations.RunPython(customer_per_kind, customer_user),
    ]

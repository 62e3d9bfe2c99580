"""The first billing entity, from the BILLING_SELLER_* settings (they only seed
it): the default, numbering with INV and CN so that the sequences documents were
numbered with go on counting. No customer is pointed at it (none names an
entity: the default bills it)."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

from customers.billing_entities import seed_values


def seed(apps, schema_editor):
    BillingEntity = apps.get_model("customers", "BillingEntity")
    if BillingEntity.objects.exists():
        return
    entity = BillingEntity.objects.create(**seed_values(settings.BILLING_SELLER))
    HistoricalBillingEntity = apps.get_model("customers", "HistoricalBillingEntity")
    values = {field.attname: getattr(entity, field.attname) for field in entity._meta.fields}
    HistoricalBillingEntity.objects.create(
        **values,
        history_date=timezone.now(),
        history_type="+",
        history_change_reason="seeded from the BILLING_SELLER_* settings",
    )


class Migration(migrations.Migration):
    dependencies = [("customers", "0007_billing_entities")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

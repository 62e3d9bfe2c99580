"""The documents issued before billing entities existed were issued by the seller
the settings named, which migration customers 0008 made the first entity: they
keep a copy of it, so that a change to the entity shows on the next documents,
not on these."""

from django.db import migrations

from invoices.sellers import seller_snapshot


def backfill(apps, schema_editor):
    BillingEntity = apps.get_model("customers", "BillingEntity")
    Invoice = apps.get_model("invoices", "Invoice")
    CreditNote = apps.get_model("invoices", "CreditNote")
    entity = BillingEntity.objects.filter(is_default=True).first()
    if entity is None:
        return
    copy = seller_snapshot(entity)
    # The copies were all {} until now (migration 0015 added them).
    Invoice.objects.filter(number__isnull=False).update(billing_entity=entity, seller_snapshot=copy)
    CreditNote.objects.update(billing_entity=entity, seller_snapshot=copy)


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0015_seller_snapshots"),
        ("customers", "0008_billing_entity_from_settings"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]

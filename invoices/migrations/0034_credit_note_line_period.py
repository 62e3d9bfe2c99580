"""A credit note line crediting unused time keeps the service it credits."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0033_received_payments"),
    ]

    operations = [
        migrations.AddField(
            model_name="creditnoteline",
            name="period_end",
            field=models.DateTimeField(blank=True, null=True, verbose_name="period end"),
        ),
        migrations.AddField(
            model_name="creditnoteline",
            name="period_start",
            field=models.DateTimeField(blank=True, null=True, verbose_name="period start"),
        ),
    ]

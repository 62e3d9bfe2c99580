"""Every invoice has written_at (0031 filled it for those written before)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0034_credit_note_line_period"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="written_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now, verbose_name="written at"
            ),
        ),
    ]

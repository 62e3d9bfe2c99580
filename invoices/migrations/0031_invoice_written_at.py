"""Invoices keep when they were really written (written_at) beside the moment
they bill as of (created_at); those written before are taken as written then."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0030_line_usage_groups"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="written_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="written at"),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="created_at",
            field=models.DateTimeField(verbose_name="bills as of"),
        ),
        migrations.RunSQL(
            "UPDATE invoices_invoice SET written_at = created_at WHERE written_at IS NULL",
            migrations.RunSQL.noop,
        ),
    ]

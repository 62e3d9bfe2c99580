"""A correction invoice (re-rating, issue 92): a period billed too little is
corrected by an invoice of its own for the difference, naming the invoice it
corrects (`corrects`). A new column, null on every invoice written before."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0040_invoice_service_period"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="corrects",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="corrections",
                to="invoices.invoice",
                verbose_name="corrects",
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="reason",
            field=models.CharField(
                choices=[
                    ("start", "Subscription start"),
                    ("period", "Period close"),
                    ("plan_change", "Plan change"),
                    ("cancel", "Cancellation"),
                    ("purchase", "Credit or balance purchase"),
                    ("threshold", "Usage threshold reached (progressive billing)"),
                    ("commit", "Commit"),
                    ("commit_true_up", "Commit true-up"),
                    ("correction", "Correction of an earlier invoice (re-rating)"),
                ],
                max_length=16,
                verbose_name="reason",
            ),
        ),
    ]

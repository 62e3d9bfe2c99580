"""A correction invoice (re-rating, issue 92): a period billed too little is
corrected by an invoice of its own for the difference, naming the invoice it
corrects (`corrects`; null on every invoice written before); and the permission
to re-rate the usage invoices billed (Finance's: setup_roles)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0040_invoice_service_period"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="invoice",
            options={
                "ordering": ["-id"],
                "permissions": [
                    ("finalize_invoice", "Can finalize invoices"),
                    ("void_invoice", "Can void invoices (with a credit note)"),
                    ("mark_paid_invoice", "Can mark invoices paid"),
                    ("mark_uncollectible_invoice", "Can mark invoices uncollectible"),
                    ("render_invoice", "Can re-render invoice PDFs"),
                    ("rerate_invoice", "Can re-rate the usage invoices billed, and correct them"),
                ],
                "verbose_name": "invoice",
                "verbose_name_plural": "invoices",
            },
        ),
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

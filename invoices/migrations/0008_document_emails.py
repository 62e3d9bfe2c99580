import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0007_credit_note_documents"),
    ]

    operations = [
        migrations.CreateModel(
            name="DocumentEmail",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("recipients", models.JSONField(default=list)),
                ("subject", models.CharField(max_length=500)),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed")],
                        db_index=True,
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True, default="")),
                ("created_at", models.DateTimeField()),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                (
                    "credit_note",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="emails",
                        to="invoices.creditnote",
                    ),
                ),
                (
                    "invoice",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="emails",
                        to="invoices.invoice",
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(invoice__isnull=False, credit_note__isnull=True)
                        | models.Q(invoice__isnull=True, credit_note__isnull=False),
                        name="document_email_for_invoice_or_credit_note",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(invoice__isnull=False),
                        fields=("invoice",),
                        name="document_email_once_per_invoice",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(credit_note__isnull=False),
                        fields=("credit_note",),
                        name="document_email_once_per_credit_note",
                    ),
                ],
            },
        ),
    ]

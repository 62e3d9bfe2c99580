import django.db.models.deletion
from django.db import migrations, models

AMOUNT = {"max_digits": 28, "decimal_places": 10}


def from_void_credit_notes(apps, schema_editor):
    """Every credit note so far was the whole of a voided invoice, without tax."""
    CreditNote = apps.get_model("invoices", "CreditNote")
    for note in CreditNote.objects.select_related("invoice"):
        note.customer_id = note.invoice.customer_id
        note.currency = note.invoice.currency
        note.subtotal = note.total
        note.to_amount_due = note.total
        note.paid_back_to = "amount_due"
        note.voids_invoice = True
        note.save()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0006_tax_rates"),
        ("invoices", "0006_invoice_tax"),
    ]

    operations = [
        migrations.RenameField("creditnote", "reason", "memo"),
        migrations.AlterField(
            "creditnote", "memo", models.CharField(blank=True, default="", max_length=500)
        ),
        migrations.RenameField("creditnote", "amount", "total"),
        migrations.AddField(
            "creditnote",
            "reason",
            models.CharField(
                choices=[
                    ("duplicate", "Duplicate charge"),
                    ("product_unsatisfactory", "Product unsatisfactory"),
                    ("order_change", "Order change"),
                    ("other", "Other"),
                ],
                default="other",
                max_length=32,
            ),
        ),
        migrations.AddField(
            "creditnote",
            "customer",
            models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="credit_notes",
                to="customers.customer",
            ),
        ),
        migrations.AddField("creditnote", "currency", models.CharField(default="", max_length=3)),
        migrations.AddField("creditnote", "subtotal", models.DecimalField(default=0, **AMOUNT)),
        migrations.AddField("creditnote", "tax", models.DecimalField(default=0, **AMOUNT)),
        migrations.AddField("creditnote", "tax_lines", models.JSONField(blank=True, default=list)),
        migrations.AddField(
            "creditnote", "to_amount_due", models.DecimalField(default=0, **AMOUNT)
        ),
        migrations.AddField("creditnote", "paid_back", models.DecimalField(default=0, **AMOUNT)),
        migrations.AddField(
            "creditnote",
            "paid_back_to",
            models.CharField(
                blank=True,
                choices=[
                    ("amount_due", "Lowered the invoice's amount due"),
                    ("credit_balance", "Added to the customer's credit balance"),
                    ("refund", "Refunded"),
                ],
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField("creditnote", "voids_invoice", models.BooleanField(default=False)),
        migrations.AddField(
            "creditnote",
            "pdf_file",
            models.FileField(blank=True, default="", max_length=255, upload_to=""),
        ),
        migrations.AddField(
            "creditnote", "pdf_sha256", models.CharField(blank=True, default="", max_length=64)
        ),
        migrations.AddField(
            "creditnote", "pdf_rendered_at", models.DateTimeField(blank=True, null=True)
        ),
        migrations.AlterField(
            "creditnote", "created_at", models.DateTimeField(help_text="When it was issued.")
        ),
        migrations.RunPython(from_void_credit_notes, migrations.RunPython.noop),
        migrations.AlterField(
            "creditnote",
            "customer",
            models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="credit_notes",
                to="customers.customer",
            ),
        ),
        migrations.AlterField("creditnote", "currency", models.CharField(max_length=3)),
        migrations.AlterModelOptions(
            "creditnote",
            {"ordering": ["-id"], "permissions": [("issue_creditnote", "Can issue credit notes")]},
        ),
        migrations.CreateModel(
            name="CreditNoteLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveIntegerField()),
                ("description", models.CharField(max_length=500)),
                ("amount", models.DecimalField(**AMOUNT)),
                (
                    "credit_note",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="lines",
                        to="invoices.creditnote",
                    ),
                ),
                (
                    "invoice_line",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_note_lines",
                        to="invoices.invoiceline",
                    ),
                ),
            ],
            options={"ordering": ["credit_note", "position"]},
        ),
        migrations.AddConstraint(
            "creditnoteline",
            models.UniqueConstraint(
                fields=("credit_note", "position"), name="credit_note_line_position"
            ),
        ),
        migrations.CreateModel(
            name="CreditBalanceEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("credit_note", "Credit note on a paid invoice"),
                            ("applied", "Applied to an invoice"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "amount",
                    models.DecimalField(help_text="Positive: added; negative: spent.", **AMOUNT),
                ),
                ("currency", models.CharField(max_length=3)),
                ("created_at", models.DateTimeField()),
                (
                    "credit_note",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="balance_entry",
                        to="invoices.creditnote",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="credit_balance_entries",
                        to="customers.customer",
                    ),
                ),
                (
                    "invoice",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="balance_entry",
                        to="invoices.invoice",
                    ),
                ),
            ],
            options={"ordering": ["-id"], "verbose_name_plural": "credit balance entries"},
        ),
    ]

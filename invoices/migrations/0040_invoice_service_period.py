"""Invoices keep the span their lines bill (service_start/service_end) beside
the period they bill as of, the close's unique key (issue 91): what a document
says as its period, and its e-invoice as its invoice period (BG-14), so that no
line's period lies outside it. Drafts written before get the span of their
lines (the earliest start, the latest end of the lines that name a period);
an issued document keeps null and goes on saying the period it was issued with
(its PDF, re-rendered, stays the document that was sent), as does an invoice
none of whose lines names a period. Drafts are few: the fill is quick."""

from django.db import migrations, models
from django.db.models import Max, Min, OuterRef, Subquery


def service_period_fill(apps, schema_editor):
    Invoice = apps.get_model("invoices", "Invoice")
    InvoiceLine = apps.get_model("invoices", "InvoiceLine")
    dated = (
        InvoiceLine.objects.filter(
            invoice=OuterRef("pk"), period_start__isnull=False, period_end__isnull=False
        )
        .order_by()
        .values("invoice")
    )
    Invoice.objects.filter(status="draft", service_start__isnull=True).update(
        service_start=Subquery(dated.annotate(first=Min("period_start")).values("first")[:1]),
        service_end=Subquery(dated.annotate(last=Max("period_end")).values("last")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0039_e_invoice_refused_for"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="service_start",
            field=models.DateTimeField(blank=True, null=True, verbose_name="service start"),
        ),
        migrations.AddField(
            model_name="invoice",
            name="service_end",
            field=models.DateTimeField(blank=True, null=True, verbose_name="service end"),
        ),
        migrations.RunPython(service_period_fill, migrations.RunPython.noop, elidable=True),
    ]

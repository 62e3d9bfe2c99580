"""Webhooks go only to public https:// URLs (common.webhook_targets), and a failed
delivery keeps its status code and a short fixed text. The errors recorded before
quoted the receiver's answer (an internal service's reply, possibly): they are
replaced here by the fixed text that the status code calls for."""

from django.db import migrations, models

KEPT = ["", "the endpoint is disabled"]


def delivery_errors_scrub(apps, schema_editor):
    """Every recorded error that could quote a receiver becomes a fixed text:
    "receiver answered HTTP <code>" when an answer came, else "connection failed"."""
    WebhookDelivery = apps.get_model("billing", "WebhookDelivery")
    quoting = WebhookDelivery.objects.exclude(last_error__in=KEPT)
    answered = quoting.filter(last_status_code__isnull=False)
    codes = answered.order_by().values_list("last_status_code", flat=True).distinct()
    for status_code in codes:
        answered.filter(last_status_code=status_code).update(
            last_error=f"receiver answered HTTP {status_code}"
        )
    quoting.filter(last_status_code__isnull=True).update(last_error="connection failed")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_rollup_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="url",
            field=models.URLField(
                help_text=(
                    "https:// on a public address (http:// only to BILLING_WEBHOOK_ALLOWED_HOSTS)."
                ),
                max_length=2000,
            ),
        ),
        # Not reversed: the texts replaced are not kept anywhere.
        migrations.RunPython(delivery_errors_scrub, migrations.RunPython.noop),
    ]

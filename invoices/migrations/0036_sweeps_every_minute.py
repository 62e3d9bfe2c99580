"""The sweeps of due payments and emails every minute instead of every five: a retry
is a row the sweep sends when due, no longer a task waiting in the broker. Only the
entries setup_periodic_tasks made and nobody changed (still every 5 minutes) are
moved; a schedule edited in the admin stays as it is."""

from django.db import migrations
from django.utils import timezone

SWEEPS = ("invoices.tasks.collect_due_payments", "invoices.tasks.send_due_document_emails")


def every_minute(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    left = task_model.objects.filter(task__in=SWEEPS, interval__every=5, interval__period="minutes")
    if not left.exists():
        return
    minute, _ = interval_model.objects.get_or_create(every=1, period="minutes")
    left.update(interval=minute)
    # What a save in the admin does (PeriodicTasks.changed): a running beat reloads.
    apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0035_invoice_written_at_always"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(every_minute, migrations.RunPython.noop)]

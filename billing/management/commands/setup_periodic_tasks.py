from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask

# name -> (task, every N minutes). Editable afterwards in the admin (Periodic tasks).
# The sweeps of what is due (payments, webhook deliveries, emails) run every minute:
# a retry is a row with its due time that they send, never a task in the broker
# (common.task_sending.COUNTDOWN_LIMIT_SECONDS); invoices 0036 moved existing ones from 5.
SCHEDULES = {
    "Close billing periods and finalize invoices": ("billing.tasks.close_periods", 5),
    "Send overdue webhook deliveries": ("billing.tasks.retry_due_webhooks", 1),
    # The customers' own channels (Slack, Teams, Discord, e-mail): alerts of their
    # budgets and the e-mails of their limits' changes.
    "Send overdue messages to customers' channels": (
        "billing.tasks.retry_due_channel_messages",
        1,
    ),
    # An alert whose email task the broker lost (down at the alert's commit).
    "Send alert emails left unsent": ("billing.tasks.send_unsent_alert_emails", 1),
    # The folder (every second) or the batches (every two) fold while ingestion
    # runs; this folds what is left.
    "Fold the usage rollup tail into the rollups": ("billing.tasks.fold_usage", 1),
    # Next months' event partitions; the migration made the first ones.
    "Create the usage events' monthly partitions ahead": (
        "billing.tasks.ensure_event_partitions",
        60,
    ),
    # Old months of the events table, which no period needs any more; kept as plain
    # tables. A no-op with BILLING_EVENT_MONTHS_ATTACHED=off.
    "Detach the usage events' old monthly partitions": (
        "billing.tasks.detach_event_months",
        60,
    ),
    # A hold past its expiry counts for nothing already; this marks it expired and
    # sends its webhook (hold.expired) within the minute.
    "Expire holds past their expiry": ("billing.tasks.expire_holds", 1),
    # Refused gateway records are kept BILLING_REFUSED_RECORD_DAYS, to be replayed.
    "Delete refused gateway records past their keeping": (
        "billing.tasks.purge_refused_records",
        60,
    ),
    # Margins are computed per hour; a no-op without BILLING_MARGIN_ALERT_PERCENT.
    "Raise low-margin alerts to the team": ("billing.tasks.check_margin_alerts", 60),
    # Earned revenue over many subscriptions reads what accrues from these rows.
    "Store what the open periods bill so far": ("billing.tasks.refresh_accruals", 10),
    # Fees billed in advance recognized as earned, per seller and day or month
    # (BILLING_RECOGNITION_PERIOD); safe to run any number of times.
    "Recognize deferred revenue in the journal": ("billing.tasks.recognize_revenue", 60),
    "Expire credits past their expiry time": ("wallets.tasks.expire_credits", 5),
    # A no-op without STRIPE_API_KEY.
    "Send overdue Stripe payment attempts": ("invoices.tasks.collect_due_payments", 1),
    "Ask Stripe about payments no webhook settled": ("invoices.tasks.reconcile_payments", 30),
    "Send credit note refunds left pending to Stripe": (
        "invoices.tasks.refund_due_credit_notes",
        10,
    ),
    # Steps run on the hour they fall due (policies count days from the due date).
    "Run dunning steps on unpaid invoices": ("invoices.tasks.run_dunning", 15),
    "Send invoice and credit note emails left pending": (
        "invoices.tasks.send_due_document_emails",
        1,
    ),
    # E-invoices the Peppol access point did not take; a no-op without one.
    "Send e-invoices left unsent to the Peppol access point": (
        "invoices.tasks.send_unsent_e_invoices",
        10,
    ),
}


class Command(BaseCommand):
    help = "Create the periodic tasks that Celery beat runs (idempotent; edits in the admin stay)."

    def handle(self, *args, **options):
        for name, (task, minutes) in SCHEDULES.items():
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=minutes, period=IntervalSchedule.MINUTES
            )
            _, created = PeriodicTask.objects.get_or_create(
                name=name, defaults={"task": task, "interval": interval}
            )
            self.stdout.write(f"{'created' if created else 'kept'}: {name} ({task})")

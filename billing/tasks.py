"""Celery tasks: thin, take ids, safe to run twice."""

from datetime import UTC, datetime, timedelta

from celery import shared_task

from billing.integrations import refused_records, replay
from billing.invoicing import close, progressive
from billing.margins import alerts as margin_alerts
from billing.models import Alert, ChannelMessage, WebhookDelivery
from billing.notifications import alerts, channels, webhooks
from billing.revenue import accruals, recognition
from billing.subscriptions import bulk_migration
from billing.usage import alerts as usage_alerts
from billing.usage import detaching, folding, holds, partitions, rebuild
from common.periods import parse_instant
from common.task_sending import time_limits
from customers.models import CustomerLimitChange


@shared_task(acks_late=True, **time_limits("bulk"))
def rebuild_meter_usage(meter_id: int) -> int:
    return rebuild.meter_usage_rebuild(meter_id=meter_id)


@shared_task(acks_late=True, **time_limits("beat"))
def fold_usage() -> int:
    """The beat's safety net for when ingestion stops: fold the events left
    unfolded (the folder folds every second while ingestion runs, and without it the
    batches every two seconds)."""
    return folding.usage_fold()


@shared_task(acks_late=True, **time_limits("beat"))
def ensure_event_partitions() -> list[str]:
    """Hourly: the events table's monthly partitions made ahead of the clock, and any
    events the default partition took for want of one moved into theirs (billing.
    usage.partitions). The names of the partitions created."""
    return partitions.event_partitions_ensure()


@shared_task(acks_late=True, **time_limits("beat"))
def detach_event_months() -> list[str]:
    """Hourly: the events table's months no period may still need detached, each
    kept as a plain table (billing.usage.detaching); nothing when
    BILLING_EVENT_MONTHS_ATTACHED is off. The names of the months detached."""
    return detaching.event_months_detach(now=datetime.now(UTC)).detached


@shared_task(acks_late=True, **time_limits("beat"))
def refresh_accruals() -> int:
    """What the open periods bill and no invoice has yet, stored for earned
    revenue over many subscriptions (billing.revenue.accruals)."""
    return accruals.accruals_refresh(now=datetime.now(UTC))


@shared_task(acks_late=True, **time_limits("beat"))
def recognize_revenue() -> int:
    """Hourly: the journal's recognition entries of the periods (days or months)
    that have ended, idempotent (billing.revenue.recognition). The documents
    written."""
    return recognition.revenue_recognize_closed(now=datetime.now(UTC))


@shared_task(acks_late=True, **time_limits("beat"))
def expire_holds() -> int:
    """Every minute: open holds past their expiry marked expired and announced
    (webhook hold.expired; billing.usage.holds). A hold past its expiry counts for
    nothing before the sweep too. The holds expired."""
    return holds.holds_expire(now=datetime.now(UTC))


@shared_task(acks_late=True, **time_limits("beat"))
def purge_refused_records() -> int:
    """Hourly: the refused gateway records kept past BILLING_REFUSED_RECORD_DAYS
    deleted, in batches (billing.integrations.refused_records). The rows deleted."""
    return refused_records.refused_records_purge(now=datetime.now(UTC))


@shared_task(acks_late=True, **time_limits("bulk"))
def replay_refused_records(record_ids: list[int]) -> dict[str, int]:
    """The admin's replay of more rows than it replays while the page waits
    (billing.integrations.replay). Safe twice: a replayed call is a duplicate."""
    return replay.refused_records_replay(record_ids=record_ids, now=datetime.now(UTC))


CLOSE_CHUNK = 500


@shared_task(acks_late=True, **time_limits("beat"))
def close_periods() -> dict:
    """The beat task: share what has ended by now out to the workers, in chunks,
    and finalize the drafts past their grace. Idempotent."""
    as_of = datetime.now(UTC)
    ids = close.due_subscription_ids(as_of=as_of)
    for start in range(0, len(ids), CLOSE_CHUNK):
        close_subscriptions.delay(ids[start : start + CLOSE_CHUNK], as_of.isoformat())
    return {"due": len(ids), "finalized": close.drafts_finalize(as_of=as_of)}


@shared_task(acks_late=True, **time_limits("beat"))
def close_subscriptions(subscription_ids: list[int], as_of: str) -> dict:
    """Close these subscriptions' ended periods, then finalize what is due: the
    drafts they wrote are finalized without waiting for the next beat."""
    moment = parse_instant(as_of)
    closed = close.subscriptions_close(subscription_ids=subscription_ids, as_of=moment)
    return {"closed": closed, "finalized": close.drafts_finalize(as_of=moment)}


@shared_task(acks_late=True)
def check_usage_alerts(customer_ids: list[int]) -> int:
    """After an ingest: raise the usage alerts these customers reached, and write
    the threshold invoices their usage reached (progressive billing). Idempotent."""
    now = datetime.now(UTC)
    raised = usage_alerts.usage_alerts_check(customer_ids=customer_ids, now=now)
    progressive.threshold_invoices_write(customer_ids=customer_ids, now=now)
    return len(raised)


@shared_task(acks_late=True, **time_limits("beat"))
def check_margin_alerts() -> int:
    """The beat task: raise `margin_low` for the customers whose margin in their
    current period so far is below BILLING_MARGIN_ALERT_PERCENT (nothing when it
    is unset). Idempotent. How many were raised."""
    return len(margin_alerts.margin_alerts_check(now=datetime.now(UTC)))


# SMTPException is an OSError: a mail server that is down is tried again later.
@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def send_alert_email(alert_id: int) -> bool:
    alert = Alert.objects.select_related("customer").filter(pk=alert_id).first()
    return alert is not None and alerts.alert_email_send(alert=alert, now=datetime.now(UTC))


@shared_task(acks_late=True, **time_limits("beat"))
def send_unsent_alert_emails(grace_seconds: int | None = None) -> int:
    """The beat task: queue the emails of the alerts whose email task was lost (the
    broker out of reach or restarted empty), those `grace_seconds` old at least
    (default alerts.UNSENT_EMAIL_GRACE). How many were queued."""
    grace = alerts.UNSENT_EMAIL_GRACE if grace_seconds is None else timedelta(seconds=grace_seconds)
    return alerts.unsent_alert_emails_enqueue(now=datetime.now(UTC), grace=grace)


def _webhook_attempt(delivery_id: int) -> str | None:
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None:
        return None
    attempted = webhooks.webhook_deliver(delivery=delivery, now=datetime.now(UTC))
    return attempted.status if attempted is not None else None


@shared_task(acks_late=True)
def deliver_webhook(delivery_id: int) -> str | None:
    """Make a delivery's attempt if one is due (after a failure, its next_attempt_at
    says when the next is: retry_due_webhooks sends it then). Safe to run twice: a
    run that finds nothing due does nothing."""
    return _webhook_attempt(delivery_id)


@shared_task(acks_late=True)
def deliver_alert_webhook(delivery_id: int) -> str | None:
    """deliver_webhook for an alert's deliveries: on the urgent queue (config.celery),
    it and its retries, so that an alert never waits behind the invoices' events."""
    return _webhook_attempt(delivery_id)


@shared_task(acks_late=True)
def retry_due_webhooks() -> int:
    """The beat's sweep, every minute: send the pending deliveries whose attempt is
    due (a retry, an enqueue the broker lost, a worker that died while sending), an
    alert's on the urgent queue. Safe to run twice and at once: each attempt is
    claimed under its row's lock, so a delivery sent twice is attempted once."""
    due = webhooks.webhook_deliveries_due(now=datetime.now(UTC))
    for delivery_id, is_alert in due:
        (deliver_alert_webhook if is_alert else deliver_webhook).delay(delivery_id)
    return len(due)


@shared_task(acks_late=True)
def deliver_channel_message(message_id: int) -> str | None:
    """Make a message's attempt to one of the customer's channels if one is due (on
    the urgent queue; a failure's next attempt is the sweep's). Safe to run twice."""
    message = ChannelMessage.objects.filter(pk=message_id).first()
    if message is None:
        return None
    attempted = channels.channel_message_send(message=message, now=datetime.now(UTC))
    return attempted.status if attempted is not None else None


@shared_task(acks_late=True)
def email_limit_change(change_id: int) -> int | None:
    """After a change of a customer's limits commits (customers.limits.limits_set):
    write its e-mail to the billing contact and send it. Idempotent."""
    change = CustomerLimitChange.objects.select_related("customer").filter(pk=change_id).first()
    if change is None:
        return None
    return channels.limit_change_message_create(change=change, now=datetime.now(UTC))


@shared_task(acks_late=True, **time_limits("beat"))
def retry_due_channel_messages() -> int:
    """The beat's sweep, every minute: send the channel messages whose attempt is
    due (a retry, a task the broker lost, a worker that died while sending), and
    write the e-mails of the limit changes whose task was lost. Safe to run twice
    and at once: each attempt is claimed under its row's lock. How many were sent."""
    now = datetime.now(UTC)
    for change_id in channels.limit_changes_unsent(now=now):
        email_limit_change.delay(change_id)
    due = channels.channel_messages_due(now=now)
    for message_id in due:
        deliver_channel_message.delay(message_id)
    return len(due)


@shared_task(acks_late=True, **time_limits("bulk"))
def run_plan_migration(migration_id: int) -> str | None:
    """Apply a confirmed plan migration's items. Safe to run twice (each item is
    applied at most once: see services.plan_migration_run)."""
    migration = bulk_migration.plan_migration_run(migration_id=migration_id, now=datetime.now(UTC))
    return migration.status if migration else None

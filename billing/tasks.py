"""Celery tasks: thin, take ids, safe to run twice."""

from datetime import UTC, datetime

from celery import shared_task

from billing import cycle, services
from billing.periods import parse_instant


@shared_task(acks_late=True)
def rebuild_meter_usage(meter_id: int) -> int:
    return services.meter_usage_rebuild(meter_id=meter_id)


CLOSE_CHUNK = 500


@shared_task(acks_late=True)
def close_periods() -> dict:
    """The beat task: share what has ended by now out to the workers, in chunks,
    and finalize the drafts past their grace. Idempotent."""
    as_of = datetime.now(UTC)
    ids = cycle.due_subscription_ids(as_of=as_of)
    for start in range(0, len(ids), CLOSE_CHUNK):
        close_subscriptions.delay(ids[start : start + CLOSE_CHUNK], as_of.isoformat())
    return {"due": len(ids), "finalized": cycle.drafts_finalize(as_of=as_of)}


@shared_task(acks_late=True)
def close_subscriptions(subscription_ids: list[int], as_of: str) -> dict:
    """Close these subscriptions' ended periods, then finalize what is due: the
    drafts they wrote are finalized without waiting for the next beat."""
    moment = parse_instant(as_of)
    closed = cycle.subscriptions_close(subscription_ids=subscription_ids, as_of=moment)
    return {"closed": closed, "finalized": cycle.drafts_finalize(as_of=moment)}

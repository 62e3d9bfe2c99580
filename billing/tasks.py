"""Celery tasks: thin, take ids, safe to run twice."""

from datetime import UTC, datetime

from celery import shared_task

from billing import cycle, services


@shared_task(acks_late=True)
def rebuild_meter_usage(meter_id: int) -> int:
    return services.meter_usage_rebuild(meter_id=meter_id)


@shared_task(acks_late=True)
def close_periods() -> dict:
    """The beat task: close what has ended by now. Idempotent."""
    result = cycle.periods_close(as_of=datetime.now(UTC))
    return {"closed": result.periods_closed, "finalized": result.invoices_finalized}

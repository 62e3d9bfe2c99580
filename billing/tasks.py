"""Celery tasks: thin, take ids, safe to run twice."""

from celery import shared_task

from billing import services


@shared_task(acks_late=True)
def rebuild_meter_usage(meter_id: int) -> int:
    return services.meter_usage_rebuild(meter_id=meter_id)

"""Celery tasks of the catalog: thin, take ids, safe to run twice."""

from datetime import UTC, datetime

from celery import shared_task

from billing.simulation import engine
from common.task_sending import time_limits


@shared_task(acks_late=True, **time_limits("bulk"))
def run_price_simulation(simulation_id: int) -> str:
    """Rate a price simulation's customers (billing.simulation.engine.simulation_run). A
    delivery twice, or a run resumed after a lost worker, rates each customer once."""
    done = engine.simulation_run(simulation_id=simulation_id, now=datetime.now(UTC))
    return done.status

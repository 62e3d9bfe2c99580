"""Celery tasks for wallets: thin, safe to run twice."""

from datetime import UTC, datetime

from celery import shared_task

from common.task_sending import time_limits
from wallets import ledger


@shared_task(acks_late=True, **time_limits("beat"))
def expire_credits() -> int:
    """The beat task: expire every block whose time has come (idempotent)."""
    return ledger.credits_expire(now=datetime.now(UTC))

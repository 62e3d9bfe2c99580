"""Celery tasks counted in the metrics (common.metrics.TASKS) by task and
outcome, from Celery's own signals, which the worker sends for every task of
every app: instrumentation, not domain logic (no rule of the project hangs on
them). Connected once, by billing's AppConfig.ready, after the settings have
chosen where the counts go (prometheus-client must not load before them)."""

from celery import signals

from common.metrics import TASKS


def _counted(outcome: str):
    def count(sender=None, **_) -> None:
        TASKS.labels(getattr(sender, "name", None) or "unknown", outcome).inc()

    return count


# A retry that gives up (no retry left) raises, and is counted failed.
HANDLERS = {
    signals.task_success: _counted("succeeded"),
    signals.task_retry: _counted("retried"),
    signals.task_failure: _counted("failed"),
}


def task_metrics_connect() -> None:
    for signal, handler in HANDLERS.items():
        signal.connect(handler, weak=False, dispatch_uid=f"config.task_metrics.{signal.name}")

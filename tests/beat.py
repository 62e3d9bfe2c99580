"""The Celery beat schedule as `setup_periodic_tasks` makes it, for the tests of the
periodic tasks."""

from io import StringIO

from django.core.management import call_command
from django_celery_beat.models import PeriodicTask


def scheduled(name: str) -> tuple[str, int, str]:
    """After `setup_periodic_tasks`, the task the schedule entry `name` runs, and every
    how many of which period."""
    call_command("setup_periodic_tasks", stdout=StringIO())
    task = PeriodicTask.objects.get(name=name)
    return task.task, task.interval.every, task.interval.period

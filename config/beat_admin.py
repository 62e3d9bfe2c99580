"""django-celery-beat's admin pages with the words its package leaves in English
for a French or German user: the column and filter named after the task field
("Task Name", a verbose_name the package does not mark for translation) and the
"Scheduler" column (a property's name). Our own labels replace them; the pages
are otherwise the package's. The task names `setup_periodic_tasks` stores
("close periods", ...) are data and stay as stored."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)


class TaskNameFilter(admin.AllValuesFieldListFilter):
    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = _("task name")


class PeriodicTaskInline(beat_admin.PeriodicTaskInline):
    fields = ("name", "task_name", "args", "kwargs")
    readonly_fields = fields

    @admin.display(description=_("Task name"))
    def task_name(self, task: PeriodicTask) -> str:
        return task.task


class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    list_display = tuple(
        "schedule_shown" if name == "scheduler" else name
        for name in beat_admin.PeriodicTaskAdmin.list_display
    )
    list_filter = [
        (name, TaskNameFilter) if name == "task" else name
        for name in beat_admin.PeriodicTaskAdmin.list_filter
    ]

    @admin.display(description=_("Schedule"))
    def schedule_shown(self, task: PeriodicTask):
        return task.scheduler


def register() -> None:
    """Put ours in place of the package's registrations (its admin module imported
    first: config comes before django_celery_beat in INSTALLED_APPS)."""
    admin.site.unregister(PeriodicTask)
    admin.site.register(PeriodicTask, PeriodicTaskAdmin)
    schedules = {
        ClockedSchedule: beat_admin.ClockedScheduleAdmin,
        CrontabSchedule: beat_admin.CrontabScheduleAdmin,
        SolarSchedule: beat_admin.SolarScheduleAdmin,
        IntervalSchedule: beat_admin.IntervalScheduleAdmin,
    }
    for model, package_admin in schedules.items():
        admin.site.unregister(model)
        admin.site.register(
            model, type(package_admin.__name__, (package_admin,), {"inlines": [PeriodicTaskInline]})
        )

"""Audit history (django-simple-history) for the models people change: who, when,
what. Changes made through the admin carry the admin user; changes made through
the API (an API key, not a user) or by tasks carry none.

Rows written inside `one_change()` (by nested calls too) carry one change id in
`history_change_reason`, so a reader can tell which rows one save wrote, however
close in time two saves are and whoever made them. After it the reason may carry
`name=value` tags (`history_tags`): who wrote the rows when no person did, where a
version was copied from."""

from contextlib import contextmanager
from contextvars import ContextVar
from uuid import uuid4

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy
from simple_history.manager import HistoryDescriptor
from simple_history.models import HistoricalRecords
from simple_history.utils import get_change_reason_from_object

from common import rawsql

CHANGE_ID_PREFIX = "change:"

_change_in_progress: ContextVar[str | None] = ContextVar("audit_change_id", default=None)
_tags_in_progress: ContextVar[tuple[str, ...]] = ContextVar("audit_tags", default=())


def _admin_user(instance=None, request=None, **kwargs):
    user = getattr(request, "user", None) if request is not None else None
    return user if isinstance(user, AbstractBaseUser) and user.is_authenticated else None


@contextmanager
def one_change():
    """Every audit row written inside, in this thread or task, is stamped with one
    change id; an inner `one_change()` keeps the outer one's (a service calling
    another, the admin saving a form then its inlines, is still one change). Usable
    as a decorator."""
    if _change_in_progress.get() is not None:
        yield
        return
    token = _change_in_progress.set(f"{CHANGE_ID_PREFIX}{uuid4().hex}")
    try:
        yield
    finally:
        _change_in_progress.reset(token)


@contextmanager
def history_tags(**tags: object):
    """Every audit row written inside also carries these tags in its change reason,
    after the change id: `by="load_demo"` (the rows no person wrote),
    `copied_from=1`. Values are single words; nested tags add up."""
    words = tuple(f"{name}={value}" for name, value in tags.items())
    if any(len(word.split()) != 1 for word in words):
        raise ValueError(f"history tags are single words: {words!r}")
    token = _tags_in_progress.set(_tags_in_progress.get() + words)
    try:
        yield
    finally:
        _tags_in_progress.reset(token)


def change_in_progress() -> str | None:
    """The change reason rows written now are stamped with: the change id (none
    outside `one_change()`) and the tags; None when neither. For history written
    in bulk too (bulk_history_create's default_change_reason)."""
    words = [word for word in (_change_in_progress.get(), *_tags_in_progress.get()) if word]
    return " ".join(words) or None


def change_id(row) -> str | None:
    """The change id an audit row was stamped with; None for a row written outside
    `one_change()` (or before change ids existed)."""
    first = (row.history_change_reason or "").split(" ", 1)[0]
    return first if first.startswith(CHANGE_ID_PREFIX) else None


def change_tags(row) -> dict[str, str]:
    """The tags an audit row was stamped with (history_tags): {"by": "load_demo"}."""
    words = (row.history_change_reason or "").split()
    return dict(word.split("=", 1) for word in words if "=" in word)


# The commands that write rows no person made (history_tags(by=...)), as pages name them.
WRITERS = {"load_demo": gettext_lazy("load_demo (demo data)")}
NO_PERSON = gettext_lazy("No person (the API or a task)")


def writer_text(user, by: str = "") -> str:
    """Who wrote an audit row, as the History pages say it: the person, else the
    command its tags name, else no person."""
    if user is not None:
        return user.get_full_name() or user.get_username()
    if by:
        return str(WRITERS.get(by, by))
    return str(NO_PERSON)


class _HistoryDescriptor(HistoryDescriptor):
    """simple_history's `Model.history`, its manager class built once: the stock
    descriptor builds it (Manager.from_queryset, which inspects every queryset
    method) on every access, and every save of a tracked row accesses it (about
    a tenth of the CPU of a period close, which saves the subscription)."""

    @cached_property
    def _manager_class(self):
        return self.manager_class.from_queryset(self.queryset_class)

    def __get__(self, instance, owner):
        return self._manager_class(self.model, instance)


class _AuditRecords(HistoricalRecords):
    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        stock = sender.__dict__.get(self.manager_name)
        if type(stock) is HistoryDescriptor:
            setattr(
                sender,
                self.manager_name,
                _HistoryDescriptor(stock.model, stock.manager_class, stock.queryset_class),
            )

    def get_change_reason_for_object(self, instance, history_type, using):
        # Saves and deletes alike (deleted rows are loaded by Django, not by us).
        return get_change_reason_from_object(instance) or change_in_progress()


class _HistoryRow(models.Model):
    """The base of every audit history model. A history row is only ever written
    once, as a new row: simple_history saves it with `save()`, which compiles an
    INSERT each time (a period close saves a subscription, so writes a history
    row, per period). Here that plain first save is one fixed INSERT of the same
    values (common.rawsql.insert, prepared on PostgreSQL). Any other save
    (an update, an id given, another database or a router to ask), or one that a
    save receiver listens to, goes through the ORM."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        plain = not args and kwargs.keys() <= {"using"} and self._state.adding
        if (
            plain
            and self.pk is None
            and kwargs.get("using") in (None, DEFAULT_DB_ALIAS)
            and not settings.DATABASE_ROUTERS
            and not rawsql.has_save_receivers(type(self))
        ):
            # As Model.save: a failed write inside an atomic block rolls it back.
            with transaction.mark_for_rollback_on_error(DEFAULT_DB_ALIAS):
                rawsql.insert([self])
            return
        super().save(*args, **kwargs)

    @property
    def history_writer(self) -> str:
        """Who wrote the row, in words (writer_text): the History pages' "Who"."""
        return writer_text(self.history_user, change_tags(self).get("by", ""))


def audit_history(**options) -> HistoricalRecords:
    return _AuditRecords(get_user=_admin_user, bases=[_HistoryRow], **options)

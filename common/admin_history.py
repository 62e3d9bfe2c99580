"""The admin of every model with an audit history (common.history): django-simple-
history's History pages, with an object id or a history id that no row can have
answered 404 rather than 500.

simple_history's history_view and history_form_view filter by the ids as typed in
the URL, so 'abc' for an integer key raised ValueError or ValidationError out of
the query. A well-formed id that names nothing is already a 404 there (or, for a
deleted object, its history); an id no row can have is answered the same."""

from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404
from simple_history.admin import SimpleHistoryAdmin
from simple_history.utils import get_history_model_for_model


def _refuse_impossible_id(pk: models.Field, text: str, what: str) -> None:
    """Http404 unless `text` converts to a value of the key field `pk`. Only the
    form is checked: whether a row has it is left to simple_history's query (a
    number beyond the column's range, like 10**30, finds no row there)."""
    try:
        pk.to_python(text)
    except (ValidationError, ValueError, TypeError):
        raise Http404(f"No {what} with ID {text!r}.") from None


class AuditHistoryAdmin(SimpleHistoryAdmin):
    """Use instead of SimpleHistoryAdmin. The ids are only checked; the views still
    receive them as typed, so simple_history answers every well-formed id as before.
    Its list says who wrote each state in words (a person, a command, or no person)."""

    object_history_list_template = "admin/audit_history_list.html"
    object_history_form_template = "admin/audit_history_form.html"

    def history_view(self, request, object_id, extra_context=None):
        opts = self.model._meta
        _refuse_impossible_id(opts.pk, unquote(object_id), opts.verbose_name)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # simple_history queries this view's object id without unquoting it.
        opts = self.model._meta
        _refuse_impossible_id(opts.pk, object_id, opts.verbose_name)
        history_opts = get_history_model_for_model(self.model)._meta
        _refuse_impossible_id(history_opts.pk, version_id, history_opts.verbose_name)
        return super().history_form_view(request, object_id, version_id, extra_context)

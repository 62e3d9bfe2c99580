"""Refused gateway records in the admin (billing.integration_models.RefusedRecord):
the records a usage source sent that could not be billed, by source and reason,
each as received; "Replay" takes the selected ones again once the mapping or the
customer is fixed (billing.integrations.replay), at once for a page of them, in a
task for more."""

import json

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.integration_models import RefusedRecord
from billing.integrations.refused_records import record_value
from billing.integrations.replay import (
    REPLAY_AT_ONCE,
    refused_records_replay,
    refused_records_replay_enqueue,
)
from common.admin_forms import RecordAdmin, short_text

REPLAY_PERMISSION = "billing.replay_refusedrecord"


def outcome_words() -> dict[str, str]:
    """What a replay became, in the admin's words."""
    return {
        "accepted": gettext("billed"),
        "duplicate": gettext("already billed"),
        "skipped": gettext("not billed (a failed call)"),
        "refused": gettext("refused again"),
        "not_replayable": gettext("kept cut, not replayable"),
    }


@admin.register(RefusedRecord)
class RefusedRecordAdmin(RecordAdmin):
    list_display = [
        "received_at",
        "source",
        "reason",
        "call_id",
        "message_short",
        "replayable",
        "replayed_at",
        "replay_outcome",
    ]
    list_filter = ["source", "reason", "replay_outcome", "replayable"]
    search_fields = ["call_id"]
    date_hierarchy = "received_at"
    fields = [
        "source",
        "received_at",
        "reason",
        "message",
        "call_id",
        "replayable",
        "replayed_at",
        "replay_outcome",
        "record_shown",
    ]
    readonly_fields = fields
    actions = ["replay"]

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm(REPLAY_PERMISSION)

    @admin.display(description=_("message"))
    def message_short(self, obj):
        return short_text(obj.message)

    @admin.display(description=_("record"))
    def record_shown(self, obj):
        value = record_value(obj)
        if value is None:
            return gettext("Nothing kept: the line was not JSON.")
        text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
        return format_html('<pre class="refused-record">{}</pre>', text)

    @admin.action(description=_("Replay the selected records"), permissions=["replay"])
    def replay(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        if len(ids) > REPLAY_AT_ONCE:
            refused_records_replay_enqueue(record_ids=ids)
            self.message_user(
                request,
                gettext(
                    "%(count)s records are being replayed; reload this list to see what each "
                    "became."
                )
                % {"count": len(ids)},
            )
            return
        outcomes = refused_records_replay(record_ids=ids, now=timezone.now())
        replayed = sum(outcomes.values())
        words = outcome_words()
        self.message_user(
            request,
            ngettext(
                "%(count)s record replayed: %(outcomes)s.",
                "%(count)s records replayed: %(outcomes)s.",
                replayed,
            )
            % {
                "count": replayed,
                "outcomes": ", ".join(
                    f"{words[outcome]} {count}" for outcome, count in sorted(outcomes.items())
                ),
            },
        )

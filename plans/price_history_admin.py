"""A plan version's History page as its price history (plans.price_history):
each save of the version, its charges, tiers and features as one change, when
(in the admin's time zone, named), by whom, and what changed in words."""

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext

from config.history import writer_text
from plans.price_history import price_history
from plans.version_page_admin import VersionPageMixin


def when_text(moment) -> str:
    """'22 Nov 2026, 21:15:04 UTC': in the admin's time zone, which it names."""
    local = timezone.localtime(moment)
    return f"{date_format(local, 'j M Y, H:i:s')} {timezone.get_current_timezone_name()}"


class PriceHistoryMixin(VersionPageMixin):
    """Put before AuditHistoryAdmin in the bases: its history_view is replaced."""

    def history_view(self, request, object_id, extra_context=None):
        version = self.viewable_version(request, object_id)
        changes = [
            {
                "when": when_text(change.at),
                "who": writer_text(change.user, change.by),
                "lines": change.lines,
            }
            for change in price_history(version=version)
        ]
        return self.render_version_page(
            request,
            version,
            "price_history.html",
            gettext("Price history of {version}").format(version=version),
            changes=changes,
            zone=timezone.get_current_timezone_name(),
        )

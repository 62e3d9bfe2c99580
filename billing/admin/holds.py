"""Holds in the admin (billing.hold_models.Hold): what each customer reserved
before its runs and how each ended (settled with the quantity billed, released as
failed or cancelled, expired), to answer "why was this run not charged?". Written
by the API only (billing.usage.holds): viewed here, never changed."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from billing.hold_models import Hold
from common.admin_forms import RecordAdmin, money_column, quantity_column, quantity_text


@admin.register(Hold)
class HoldAdmin(RecordAdmin):
    list_display = [
        "public_id",
        "customer",
        "meter",
        "quantity_text",
        "amount_text",
        "outcome",
    ]
    list_filter = ["status", "reason", "meter"]
    search_fields = ["public_id", "key", "customer__external_id", "customer__name"]
    date_hierarchy = "created_at"
    list_select_related = ["customer"]
    fields = [
        "public_id",
        "customer",
        "key",
        "meter",
        "quantity",
        "properties",
        "amount",
        "currency",
        "held_credits",
        "held_money",
        "status",
        "reason",
        "settled_quantity",
        "created_at",
        "expires_at",
        "closed_at",
    ]
    readonly_fields = fields

    quantity_text = quantity_column("quantity", _("quantity"))
    amount_text = money_column("amount", _("amount"))

    @admin.display(description=_("outcome"), ordering="status")
    def outcome(self, obj):
        """How the hold ended: settled with the quantity billed, released with why,
        expired; or open."""
        status = obj.get_status_display()
        if obj.status == Hold.SETTLED:
            return f"{status}: {quantity_text(obj.settled_quantity)}"
        if obj.status == Hold.RELEASED:
            return f"{status}: {obj.get_reason_display()}"
        return status

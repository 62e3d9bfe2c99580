"""Holds in the admin (billing.hold_models.Hold): what each customer reserved
before its runs and how each ended (settled with the quantity billed, released as
failed or cancelled, expired), to answer "why was this run not charged?". Written
by the API only (billing.usage.holds): viewed here, never changed."""

from django.contrib import admin

from billing.hold_models import Hold
from common.admin_forms import RecordAdmin


@admin.register(Hold)
class HoldAdmin(RecordAdmin):
    list_display = [
        "public_id",
        "customer",
        "meter",
        "quantity",
        "amount",
        "currency",
        "status",
        "reason",
        "settled_quantity",
        "created_at",
        "expires_at",
        "closed_at",
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

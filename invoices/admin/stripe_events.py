"""The Stripe events in the admin, as received (read-only)."""

from django.contrib import admin

from common.admin_forms import RecordAdmin
from invoices.models import StripeEvent


@admin.register(StripeEvent)
class StripeEventAdmin(RecordAdmin):
    list_display = [
        "id",
        "type",
        "created",
        "received_at",
        "deliveries",
        "processed_at",
        "outcome",
        "last_error",
    ]
    list_filter = ["type", ("processed_at", admin.EmptyFieldListFilter), "received_at"]
    search_fields = ["id", "type", "outcome"]
    date_hierarchy = "received_at"
    fields = [
        "id",
        "type",
        "created",
        "livemode",
        "received_at",
        "deliveries",
        "processed_at",
        "outcome",
        "last_error",
        "payload",
    ]
    readonly_fields = fields

"""Alerts, webhook deliveries and the messages to customers' own channels in the
admin (read-only records, with a "retry now"); webhook endpoints are edited here."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.models import (
    WEBHOOK_EVENT_TYPES,
    Alert,
    AlertTeamRecipient,
    ChannelMessage,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.notifications import channels, webhooks
from common.admin_forms import ActionsRecordAdmin, short_text


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        help_text=_("https:// on a public address; checked again before every send."),
        label=_("Url"),
    )
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in WEBHOOK_EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every event type, including ones added later."),
        label=_("Event types"),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "enabled", "event_types"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "enabled", "event_types_display", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]

    @admin.display(description=_("event types"))
    def event_types_display(self, obj):
        return ", ".join(obj.event_types) or "all"

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "enabled", "event_types"]
        # The secret exists once the endpoint is saved; the receiver needs it to verify.
        return [*fields, "secret", "created_at"] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        return ["secret", "created_at"] if obj else []


class AlertTeamRecipientForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=Alert.KINDS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("The customers' alerts this address gets a copy of."),
        label=_("Kinds"),
    )

    class Meta:
        model = AlertTeamRecipient
        fields = ["email", "kinds", "active"]


@admin.register(AlertTeamRecipient)
class AlertTeamRecipientAdmin(admin.ModelAdmin):
    """The seller's own people who get a copy of customers' alerts, per kind."""

    form = AlertTeamRecipientForm
    list_display = ["email", "kinds_display", "active"]
    list_filter = ["active"]
    search_fields = ["email"]

    @admin.display(description=_("alert kinds"))
    def kinds_display(self, obj):
        labels = dict(Alert.KINDS)
        return ", ".join(labels.get(kind, kind) for kind in obj.kinds) or gettext("none")


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["endpoint", "status", "attempts", "last_status_code", "last_error", "delivered_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class ChannelMessageInline(admin.TabularInline):
    model = ChannelMessage
    fk_name = "alert"
    fields = [
        "kind",
        "name",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "delivered_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ActionsRecordAdmin):
    list_display = ["created_at", "customer", "kind", "key", "period_start", "emailed_at"]
    list_filter = ["kind", ("customer", admin.RelatedOnlyFieldListFilter), "period_start"]
    search_fields = ["customer__external_id", "customer__name", "key"]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    fields = ["customer", "kind", "key", "period_start", "payload", "created_at", "emailed_at"]
    readonly_fields = fields
    inlines = [WebhookDeliveryInline, ChannelMessageInline]


class RetriedRecordAdmin(ActionsRecordAdmin):
    """The admin of rows sent with retries (webhook deliveries, channel messages):
    the last error shortened, and "Retry now" (each subclass's retry_one, and its
    words for what was sent again)."""

    actions = ["retry_now"]

    def retry_one(self, obj, now) -> bool:
        raise NotImplementedError

    def sent_again_words(self, retried: int) -> str:
        raise NotImplementedError

    @admin.display(description=_("last error"))
    def last_error_short(self, obj):
        return short_text(obj.last_error)

    @admin.action(description=_("Retry now"), permissions=["change"])
    def retry_now(self, request, queryset):
        now = timezone.now()
        retried = sum(self.retry_one(obj, now) for obj in queryset)
        skipped = len(queryset) - retried
        self.message_user(
            request,
            self.sent_again_words(retried)
            + (
                gettext("; %(skipped)s already succeeded, left alone") % {"skipped": skipped}
                if skipped
                else ""
            ),
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RetriedRecordAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error_short",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["event_id", "alert__customer__external_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    fields = [
        "endpoint",
        "alert",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "body",
    ]
    readonly_fields = fields

    def retry_one(self, obj, now) -> bool:
        return webhooks.webhook_delivery_retry(delivery=obj, now=now)

    def sent_again_words(self, retried: int) -> str:
        return gettext("%(retried)s delivery(ies) sent again") % {"retried": retried}


@admin.register(ChannelMessage)
class ChannelMessageAdmin(RetriedRecordAdmin):
    """What was sent to the channels customers chose for their budgets' alerts, and
    the e-mails of their limits' changes. Webhook URLs are secrets of the customer's:
    listed by the channel's name only, shown on the record."""

    list_display = [
        "id",
        "customer",
        "source",
        "kind",
        "name",
        "status",
        "attempts",
        "last_status_code",
        "last_error_short",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["customer__external_id", "customer__name", "name"]
    list_select_related = ["customer", "alert"]
    date_hierarchy = "created_at"
    fields = [
        "customer",
        "alert",
        "limit_change",
        "kind",
        "name",
        "target",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "subject",
        "body",
    ]
    readonly_fields = fields

    @admin.display(description=_("sent for"))
    def source(self, obj):
        if obj.alert_id:
            return obj.alert.key
        return gettext("limit change")

    def retry_one(self, obj, now) -> bool:
        return channels.channel_message_retry(message=obj, now=now)

    def sent_again_words(self, retried: int) -> str:
        return gettext("%(retried)s message(s) sent again") % {"retried": retried}

"""Subscriptions in the admin: created through billing.subscriptions.lifecycle
and changed from their page or by the actions, so every change leaves a history
row; the forms validate with the check-only functions and the save runs the
service once. The bulk migration action: billing.admin.plan_migrations."""

from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.admin.deals import DealFields, deal_text
from billing.admin.discounts import DiscountFields, discount_summary
from billing.admin.entitlements import entitlements_text
from billing.admin.plan_migrations import MigrationActions
from billing.admin.subscription_cancel import CancelActions
from billing.admin.subscription_forms import (
    SubscriptionChangeForm,
    SubscriptionCreateForm,
    version_choice_text,
)
from billing.models import (
    Subscription,
    SubscriptionChange,
)
from billing.subscriptions import lifecycle
from common import customer_text
from common.admin_fields import moment_text, period_cell, period_text
from common.admin_forms import quantity_text
from common.admin_history import AuditHistoryAdmin
from common.errors import BillingError
from invoices.models import CreditNote, Invoice

# Finance's permission for a subscription's deal and discount (ops change the
# plan and seats with change_subscription).
DEAL_PERMISSION = "billing.set_deal_subscription"
OPS_CHANGES = ["new_version", "effective", "new_seats", "at"]


def change_details_text(change: SubscriptionChange) -> str:
    """What a history row's details say, in the admin user's language: '1 seat,
    billing anchor: Anniversary of the start', 'from 3 to 5 seats'. The anchor's
    label is quoted as it is (a German noun keeps its capital)."""
    details = change.details or {}
    if change.kind == SubscriptionChange.SEATS and {"from", "to"} <= set(details):
        return ngettext(
            "from {before} to {after} seat", "from {before} to {after} seats", details["to"]
        ).format(before=quantity_text(details["from"]), after=quantity_text(details["to"]))
    parts = []
    if "seats" in details:
        seats = details["seats"]
        parts.append(
            ngettext("{count} seat", "{count} seats", seats).format(count=quantity_text(seats))
        )
    if details.get("billing_anchor") in dict(Subscription.ANCHORS):
        anchor = Subscription._meta.get_field("billing_anchor").verbose_name
        label = dict(Subscription.ANCHORS)[details["billing_anchor"]]
        parts.append(f"{anchor}: {label}")
    # An immediate change's documents (billing.subscriptions.lifecycle._change_documents).
    documents = (
        (_("invoice {number}"), Invoice, details.get("invoice")),
        (_("credit note {number}"), CreditNote, details.get("credit_note")),
    )
    for words, model, pk in documents:
        if pk:
            document = model.objects.filter(pk=pk).first()
            if document is not None:
                parts.append(str(words).format(number=document))
    return ", ".join(parts) or "—"


# How a change applies, in the admin user's words (SubscriptionChange.how).
HOW = {"immediate": _("immediately"), "period_end": _("at the period's end")}


class SubscriptionChangeInline(admin.TabularInline):
    model = SubscriptionChange
    fields = ["kind", "from_name", "to_name", "effective", "how_text", "details_text", "created"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("history")

    def get_queryset(self, request):
        versions = ("from_version__plan", "to_version__plan")
        return super().get_queryset(request).select_related(*versions, "subscription__customer")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("from"))
    def from_name(self, change: SubscriptionChange) -> str:
        return str(change.from_version) if change.from_version else "—"

    @admin.display(description=_("to"))
    def to_name(self, change: SubscriptionChange) -> str:
        return str(change.to_version) if change.to_version else "—"

    @admin.display(description=_("effective"))
    def effective(self, change: SubscriptionChange) -> str:
        return moment_text(change.effective_at, _zone(change.subscription))

    @admin.display(description=_("how"))
    def how_text(self, change: SubscriptionChange) -> str:
        return str(HOW.get(change.how, change.how or "—"))

    @admin.display(description=_("details"))
    def details_text(self, change: SubscriptionChange) -> str:
        return change_details_text(change)

    @admin.display(description=_("recorded"))
    def created(self, change: SubscriptionChange) -> str:
        return moment_text(change.created_at, _zone(change.subscription))


def _zone(subscription: Subscription):
    """The customer's time zone: a subscription's moments are typed and read in it."""
    return customer_text.customer_zone(subscription.customer)


def _moment(field: str, description: str):
    """A read-only moment of the subscription in the customer's zone, which it
    names: '1 Nov 2026, 00:00 (Asia/Tokyo)'."""

    def show(admin_self, subscription: Subscription) -> str:
        return moment_text(getattr(subscription, field), _zone(subscription))

    show.short_description = description
    show.admin_order_field = field
    return show


@admin.register(Subscription)
class SubscriptionAdmin(CancelActions, MigrationActions, AuditHistoryAdmin):
    list_display = [
        "id",
        "customer",
        "plan_version",
        "deal_badge",
        "status",
        "seats",
        "period_list",
    ]
    list_filter = ["status", "billing_anchor", "version__plan"]
    search_fields = ["customer__external_id", "customer__name", "version__plan__code"]
    list_select_related = ["customer", "version__plan"]
    # The add form's customer is found by typing part of its name or ID (the
    # customer list's search): a list of every customer is no choice at 10,000.
    autocomplete_fields = ["customer"]
    inlines = [SubscriptionChangeInline]
    change_form_template = "admin/billing/subscription/change_form.html"
    actions = ["cancel_at_period_end", "migrate_to_version"]
    readonly_fields = [
        "customer",
        "plan_version",
        "status",
        "billing_anchor",
        "started",
        "anchor",
        "trial_ends",
        "period",
        "seats",
        "discount",
        "usage_since",
        "next_version",
        "deal",
        "features",
        "deal_next_period",
        "cancel_at_period_end",
        "canceled",
        "ended",
    ]

    started = _moment("started_at", _("Started"))
    anchor = _moment("anchor_at", _("Periods counted from"))
    trial_ends = _moment("trial_end", _("Trial ends"))
    usage_since = _moment("usage_from", _("Usage billed on this version since"))
    canceled = _moment("canceled_at", _("Canceled"))
    ended = _moment("ended_at", _("Ended"))

    def get_queryset(self, request):
        # Every label names the customer and the plan: one query, not one per row.
        return (
            super()
            .get_queryset(request)
            .select_related("customer", "version__plan", "scheduled_version__plan")
        )

    @admin.display(description=_("Current period"), ordering="current_period_start")
    def period_list(self, obj: Subscription) -> str:
        """Its days, as the customer's invoices print them, the zone under them."""
        return period_cell(obj.current_period_start, obj.current_period_end, _zone(obj))

    @admin.display(description=_("Current period"))
    def period(self, obj: Subscription) -> str:
        return period_text(obj.current_period_start, obj.current_period_end, _zone(obj))

    @admin.display(description=_("plan version"), ordering="version__plan__name")
    def plan_version(self, obj: Subscription) -> str:
        return version_choice_text(obj.version)

    @admin.display(description=_("Next period's version"))
    def next_version(self, obj: Subscription) -> str:
        if obj.scheduled_version is None:
            return gettext("unchanged")
        return version_choice_text(obj.scheduled_version)

    @admin.display(description=_("deal"))
    def deal_badge(self, obj: Subscription) -> str:
        return gettext("deal") if obj.overrides else ""

    @admin.display(description=_("Deal (overrides of the plan)"))
    def deal(self, obj: Subscription) -> str:
        return deal_text(obj.overrides, obj.version) or "-"

    @admin.display(description=_("Features"))
    def features(self, obj: Subscription) -> str:
        """What the subscription is entitled to now, the deal's part marked."""
        return entitlements_text(obj) or gettext("none")

    @admin.display(description=_("Deal from the next period"))
    def deal_next_period(self, obj: Subscription) -> str:
        if obj.next_overrides is None:
            return gettext("unchanged")
        version = obj.scheduled_version or obj.version
        return deal_text(obj.next_overrides, version) or gettext("none")

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = SubscriptionCreateForm if obj is None else SubscriptionChangeForm
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.shown = frozenset(self.get_fields(request, obj))
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "version", "start", "seats", "billing_anchor"]
        if obj.status not in Subscription.LIVE:
            return self.readonly_fields
        changes = []
        if super().has_change_permission(request, obj):
            changes += OPS_CHANGES
        if request.user.has_perm(DEAL_PERMISSION):
            changes += [*DealFields.FIELDS, *DiscountFields.FIELDS]
        return [*self.readonly_fields, *changes]

    def has_change_permission(self, request, obj=None):
        """Ops change the plan and seats; finance the deal and discount."""
        if super().has_change_permission(request, obj):
            return True
        return request.user.has_perm(DEAL_PERMISSION) and self.has_view_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "live_statuses": Subscription.LIVE,
            "has_cancel_permission": self.has_cancel_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            try:
                with transaction.atomic():
                    form.apply(form.cleaned_data)
            except BillingError as error:
                # Something moved on between the form's check and the save (the
                # close used up a discount, another user changed the plan): the
                # page says so, and nothing of this save is kept.
                request.billing_refused = error.words
                return
            obj.refresh_from_db()
        else:
            obj.__dict__.update(form.create(form.cleaned_data).__dict__)

    def get_changeform_initial_data(self, request):
        """?customer=<pk> (the customer page's Add subscription button) picks
        the customer; anything else in the address is ignored."""
        initial = {}
        customer = request.GET.get("customer", "")
        if customer.isdigit():
            initial["customer"] = int(customer)
        return initial

    def response_add(self, request, obj, post_url_continue=None):
        if "_popup" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        # The admin's own "was added successfully" is replaced by the name in words.
        self.message_user(
            request, gettext("%(subscription)s created") % {"subscription": obj}, messages.SUCCESS
        )
        return redirect(reverse("admin:billing_subscription_change", args=[obj.pk]))

    def log_change(self, request, obj, message):
        if getattr(request, "billing_refused", None) is None:  # nothing changed otherwise
            super().log_change(request, obj, message)

    def response_change(self, request, obj):
        refused = getattr(request, "billing_refused", None)
        if refused is not None:
            messages.error(
                request, gettext("Nothing was changed: %(reason)s") % {"reason": refused}
            )
            return redirect(reverse("admin:billing_subscription_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def save_related(self, request, form, formsets, change):
        # The history inline is read-only: its rows come from the services.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("discount (coupon)"))
    def discount(self, subscription: Subscription) -> str:
        return discount_summary(subscription)

    def has_cancel_permission(self, request) -> bool:
        return super().has_change_permission(request)

    @admin.action(description=_("Cancel at the end of the current period"), permissions=["cancel"])
    def cancel_at_period_end(self, request, queryset):
        for subscription in queryset:
            try:
                lifecycle.subscription_cancel(
                    subscription=subscription, effective="period_end", at=timezone.now()
                )
            except BillingError as error:
                self.message_user(request, f"{subscription}: {error.words}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("%(subscription)s ends with its current period")
                    % {"subscription": subscription},
                )

"""Plans in the admin: a plan with its versions, each a link to its page.
A plan is sold through its versions (plans.admin.plan_versions)."""

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timezone import get_current_timezone
from django.utils.translation import gettext_lazy as _

from billing.subscriptions.selectors import with_live_subscription_count
from common.admin_deletion import RefusedDeletionMixin
from common.admin_forms import ServiceValidatedForm, money_column
from common.admin_history import AuditHistoryAdmin
from common.customer_text import day
from plans.admin.deletion_refusals import plan_deletion_refusal
from plans.models import Plan, PlanVersion
from plans.validation import FieldErrors, check_code


class PlanForm(ServiceValidatedForm):
    class Meta:
        model = Plan
        fields = ["code", "name", "description"]

    def validate_domain(self, cleaned):
        errors = FieldErrors()
        check_code(errors, "code", cleaned.get("code"))
        errors.raise_if_any("invalid plan")


def add_version_url(plan: Plan) -> str:
    return reverse("admin:plans_planversion_add") + f"?plan={plan.pk}"


class VersionLinkInline(admin.TabularInline):
    """The plan's versions, each a link to its page, with its customers."""

    model = PlanVersion
    fields = [
        "version",
        "status",
        "currency",
        "interval",
        "base_fee_text",
        "subscribers",
        "published_on",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("versions")

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        versions = super().get_queryset(request).select_related("plan").order_by("number")
        return with_live_subscription_count(versions)

    @admin.display(description=_("version"))
    def version(self, version: PlanVersion):
        url = reverse("admin:plans_planversion_change", args=[version.pk])
        return format_html('<a href="{}">v{}</a>', url, version.number)

    base_fee_text = money_column("base_fee", _("base fee"))

    @admin.display(description=_("customers"))
    def subscribers(self, version: PlanVersion) -> int:
        return version.live_subscription_count

    @admin.display(description=_("published"))
    def published_on(self, version: PlanVersion) -> str:
        if version.published_at is None:
            return "—"
        return day(version.published_at, get_current_timezone())


@admin.register(Plan)
class PlanAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    form = PlanForm
    list_display = ["code", "name", "version_count", "latest_published", "add_version_link"]
    search_fields = ["code", "name"]
    inlines = [VersionLinkInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(version_total=Count("versions"))

    @admin.display(description=_("versions"), ordering="version_total")
    def version_count(self, plan):
        return plan.version_total

    @admin.display(description=_("latest published"))
    def latest_published(self, plan):
        version = plan.versions.filter(status=PlanVersion.PUBLISHED).order_by("-number").first()
        return f"v{version.number}" if version else "—"

    @admin.display(description="")
    def add_version_link(self, plan):
        return format_html('<a href="{}">{}</a>', add_version_url(plan), _("Add a draft version"))

    def deletion_refusal(self, obj):
        return plan_deletion_refusal(obj)

    def get_readonly_fields(self, request, obj=None):
        # Subscriptions and invoices name plans by code: it never changes.
        return ["code"] if obj else []

    def get_inlines(self, request, obj):
        # A new plan has no versions yet: its first is added once it is saved.
        return self.inlines if obj else []

    def response_add(self, request, obj, post_url_continue=None):
        # A plan is sold through its versions: its page offers to add the first one.
        if any(name in request.POST for name in ("_addanother", "_continue", IS_POPUP_VAR)):
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            format_html(
                '{} created. It has no version yet: <a href="{}">add a draft version</a> '
                "to set its currency and prices.",
                obj.name,
                add_version_url(obj),
            ),
            messages.SUCCESS,
        )
        return redirect(reverse("admin:plans_plan_change", args=[obj.pk]))

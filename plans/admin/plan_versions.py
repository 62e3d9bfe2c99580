"""Plan versions in the admin. The form validates with plans.validation (the
same rules as the API); saves and actions go through plans.services. A version
that is not a draft is read-only here: its change page is a view page.

Its page has the version's charges and tiers (plans.admin.charges) and features
(plans.admin.version_features) inline, and the buttons Publish, Archive (each
after a confirmation page that says what will happen, to how many customers,
in words from plans.admin.plan_version_words) and New draft; the list's publish
and archive actions show the same confirmation for the versions selected. It
also has pages besides its change page, all read-only (viewing plan versions is
enough): its History page is its price history (plans.price_history), Compare
with published (plans.admin.version_compare) and Try prices (an invoice for
quantities typed in, billing.simulation.sandbox)."""

from decimal import Decimal
from types import SimpleNamespace

import nested_admin
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.admin.simulations import RUN_SIMULATIONS
from billing.simulation.sandbox import sandbox_invoice, start_of_day
from billing.subscriptions.selectors import live_subscription_counts, with_live_subscription_count
from billing.usage.statement import meter_names
from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_deletion import RefusedDeletionMixin
from common.admin_fields import currency_choices
from common.admin_forms import (
    EXACT_DECIMALS,
    ServiceValidatedForm,
    adopt,
    amounts_in_currency,
    money_column,
    percent_text,
    quantity_column,
)
from common.admin_history import AuditHistoryAdmin
from common.errors import BillingError
from common.history import one_change, writer_text
from plans import selectors, services
from plans.admin.charge_fields import field_table
from plans.admin.charges import ChargeInline, version_spec
from plans.admin.deletion_refusals import version_deletion_refusal
from plans.admin.plan_version_words import (
    archive_consequences,
    publish_consequences,
    refusal_text,
    selected_words,
    when_text,
)
from plans.admin.price_sandbox import INVOICED_MODELS, PriceSandboxForm, invoice_rows
from plans.admin.version_compare import compare_sections
from plans.admin.version_features import FeatureInline, version_grants
from plans.admin.version_inline_rules import is_frozen
from plans.credits_rollover import ADMIN_FIELDS as ROLLOVER_ADMIN_FIELDS
from plans.models import Charge, Plan, PlanVersion
from plans.price_history import price_history
from plans.selectors import versions_by_plan_name
from plans.validation import VERSION_TERMS, validate_version, version_terms_spec


def rollover_words(percent: Decimal | None, periods: int | None) -> str:
    """'50% of the unused credits roll over, for 2 periods', in the admin user's
    language; 'None: all expire at the period's end'."""
    if percent is None or periods is None:
        return gettext("None: all expire at the period's end")
    return ngettext(
        "{percent} of the unused credits roll over, for {periods} period",
        "{percent} of the unused credits roll over, for {periods} periods",
        periods,
    ).format(percent=percent_text(percent), periods=periods)


class CurrencyField(forms.ChoiceField):
    """A select of currencies, "USD — US Dollar"; a stored currency the list
    lacks is offered too, so an old version still shows its own."""

    def __init__(self, **kwargs):
        super().__init__(choices=currency_choices(), label=_("Currency"), **kwargs)

    def offer(self, code: str | None) -> None:
        self.choices = currency_choices(current=code or "")


# The version's terms that are amounts in its currency.
VERSION_AMOUNTS = ["base_fee", "seat_price", "minimum_commitment", "progressive_billing_threshold"]


class PlanVersionForm(ServiceValidatedForm):
    currency = CurrencyField()
    # The rollover's refusals name the API's object (plans.credits_rollover).
    field_map = ROLLOVER_ADMIN_FIELDS

    class Meta:
        model = PlanVersion
        fields = ["plan", *VERSION_TERMS]

    def clean_fee_unit_code(self):
        return self.cleaned_data.get("fee_unit_code") or self.instance.fee_unit_code

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "plan" in self.fields:
            self.fields["plan"].label_from_instance = lambda plan: f"{plan.name} ({plan.code})"
        if "fee_unit_code" in self.fields:  # left out of a post: it stays as it is (C62)
            self.fields["fee_unit_code"].required = False
        currency = self.instance.currency or self.initial.get("currency")
        if "currency" in self.fields:  # not on a published version's view page
            self.fields["currency"].offer(currency)
        amounts_in_currency(self, currency, VERSION_AMOUNTS)

    def validate_domain(self, cleaned):
        terms = version_terms_spec(SimpleNamespace(**cleaned))
        validate_version(terms, known_meters=())
        plan = cleaned.get("plan") or self.instance.plan
        services.plan_version_check_currency(
            plan=plan,
            currency=terms.currency,
            excluding=self.instance if self.instance.pk else None,
        )


@admin.register(PlanVersion)
class PlanVersionAdmin(RefusedDeletionMixin, AuditHistoryAdmin, nested_admin.NestedModelAdmin):
    formfield_overrides = EXACT_DECIMALS
    form = PlanVersionForm
    inlines = [ChargeInline, FeatureInline]
    list_display = [
        "plan",
        "number",
        "status",
        "currency",
        "interval",
        "base_fee_display",
        "seat_price_display",
        "minimum_commitment_display",
        "charge_count",
        "subscribers",
        "published_at",
    ]
    list_filter = ["status", "currency", "interval", "plan"]
    search_fields = ["plan__code", "plan__name"]
    list_select_related = ["plan"]
    actions = ["publish", "copy_as_draft", "archive", "simulate"]
    readonly_fields = ["number", "status", "published_at", "archived_at"]

    # A published or archived version is shown, not edited: its amounts as finance reads them.
    frozen_fields = [
        "plan",
        "number",
        "status",
        "currency",
        "interval",
        "base_fee_display",
        "seat_price_display",
        "minimum_commitment_display",
        "trial_days",
        "credits_per_period_text",
        "credits_rollover_text",
        "progressive_billing_threshold_display",
        "published_at",
        "archived_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is not None and is_frozen(obj):
            return self.frozen_fields
        fields = super().get_fields(request, obj)
        # Number and status come from the service once the version exists.
        return fields if obj else [f for f in fields if f not in self.readonly_fields]

    base_fee_display = money_column("base_fee", _("base fee"))
    seat_price_display = money_column("seat_price", _("seat price"))
    minimum_commitment_display = money_column("minimum_commitment", _("minimum commitment"))
    progressive_billing_threshold_display = money_column(
        "progressive_billing_threshold", _("progressive billing threshold")
    )

    credits_per_period_text = quantity_column("credits_per_period", _("credits per period"))

    @admin.display(description=_("credits rollover"))
    def credits_rollover_text(self, version):
        return rollover_words(version.credits_rollover_percent, version.credits_rollover_periods)

    def get_queryset(self, request):
        versions = (
            super().get_queryset(request).annotate(charge_total=Count("charges", distinct=True))
        )
        return with_live_subscription_count(versions)

    def get_changeform_initial_data(self, request):
        # A new version of a plan is in the plan's currency.
        initial = super().get_changeform_initial_data(request)
        plan = Plan.objects.filter(pk=initial.get("plan")).first() if initial.get("plan") else None
        latest = plan.versions.order_by("-number").first() if plan else None
        if latest is not None:
            initial.setdefault("currency", latest.currency)
            initial.setdefault("interval", latest.interval)
        return initial

    @admin.display(description=_("charges"), ordering="charge_total")
    def charge_count(self, version):
        return version.charge_total

    @admin.display(description=_("customers"), ordering="live_subscription_count")
    def subscribers(self, version):
        return version.live_subscription_count

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and is_frozen(obj):
            return [*self.frozen_fields, *VERSION_TERMS]
        return ["plan", *self.readonly_fields] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # Published and archived versions are view-only, for everyone.
        return super().has_change_permission(request, obj) and not is_frozen(obj)

    def deletion_refusal(self, obj):
        # A published or archived version stays (is_frozen): its page says why.
        return version_deletion_refusal(obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The version's form, then its charges and features (save_model, save_related):
        # one save, one change in its price history.
        # The charge forms' script shows each charge's fields as plans.admin.charge_fields says.
        extra_context = {**(extra_context or {}), "charge_fields": field_table()}
        with one_change():
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        # Charges and features arrive in save_related; a new version is numbered now.
        if not change:
            terms = version_terms_spec(obj)
            adopt(obj, services.plan_version_create(plan=obj.plan, version=terms))

    def save_related(self, request, form, formsets, change):
        charge_formset = next(f for f in formsets if f.model is Charge)
        grants = version_grants(form.instance, formsets)
        spec = version_spec(form.instance, charge_formset, grants)
        services.plan_version_update(version=form.instance, spec=spec)
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def has_simulate_permission(self, request):
        return request.user.has_perm(RUN_SIMULATIONS)

    @admin.action(description=_("Simulate prices on past usage"), permissions=["simulate"])
    def simulate(self, request, queryset):
        versions = list(queryset[:2])
        if len(versions) != 1:
            self.message_user(request, gettext("Choose one version to simulate."), messages.ERROR)
            return None
        url = reverse("admin:plans_pricesimulation_simulate")
        return redirect(f"{url}?version={versions[0].pk}")

    # The pages besides the change page: the version, read only by whoever may view
    # plan versions, and the page's context.
    def viewable_version(self, request, object_id) -> PlanVersion:
        version = self.get_object(request, object_id)
        if version is None:
            raise Http404("No such plan version.")
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        return version

    def render_version_page(
        self, request, version: PlanVersion, template: str, title: str, **values
    ):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": version,
            "title": title,
            **values,
        }
        return TemplateResponse(request, f"admin/plans/planversion/{template}", context)

    # History is the price history (AuditHistoryAdmin's History page replaced).
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

    def compare_view(self, request, object_id):
        version = self.viewable_version(request, object_id)
        published = selectors.plan_version_latest_published(plan=version.plan)
        sections = []
        if published is not None:
            sections = compare_sections(
                selectors.version_spec(version=published), selectors.version_spec(version=version)
            )
        return self.render_version_page(
            request,
            version,
            "compare.html",
            gettext("{version} compared with the published version").format(version=version),
            published=published,
            sections=sections,
            differences=sum(section.changed for section in sections),
            same_version=published is not None and published.pk == version.pk,
            draft_status=PlanVersion.DRAFT,
        )

    def try_prices_view(self, request, object_id):
        version = self.viewable_version(request, object_id)
        spec = selectors.version_spec(version=version)
        names = meter_names(c.meter for c in spec.charges)
        submitted = request.GET if "period_start" in request.GET else None
        form = PriceSandboxForm(submitted, spec=spec, names=names, today=timezone.localdate())
        result = None
        if submitted is not None and form.is_valid():
            data = form.cleaned_data
            invoice = sandbox_invoice(
                version,
                spec,
                quantities=form.quantities(),
                seats=data["seats"],
                start=start_of_day(data["period_start"]),
                end=start_of_day(data["period_end"]),
                tax_rate=data["tax_rate"],
                combinations=form.combinations(),
            )
            result = invoice_rows(invoice, spec.currency)
        drawn = [
            names.get(c.meter, c.meter) for c in spec.charges if c.model not in INVOICED_MODELS
        ]
        # Their tiers' "up to" counts past the allowance, which readers used to other
        # tools take for a count from zero: said beside the invoice.
        tiered = [
            names.get(c.meter, c.meter)
            for c in spec.charges
            if c.model == "overage" and c.included_units and c.pricing and c.pricing.tiers
        ]
        simulate_url = None
        if request.user.has_perm(RUN_SIMULATIONS):
            simulate_url = reverse("admin:plans_pricesimulation_simulate")
            simulate_url += f"?version={version.pk}"
        return self.render_version_page(
            request,
            version,
            "try_prices.html",
            gettext("Try the prices of {version}").format(version=version),
            form=form,
            result=result,
            wallet_charges=drawn,
            tiered_charges=tiered,
            simulate_url=simulate_url,
        )

    # Publish, Archive and New draft: buttons on the version's page, and the list's actions.
    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/compare/", view(self.compare_view), name=f"{name}_compare"),
            path(
                "<path:object_id>/try-prices/",
                view(self.try_prices_view),
                name=f"{name}_try_prices",
            ),
            path("<path:object_id>/publish/", view(self.publish_view), name=f"{name}_publish"),
            path("<path:object_id>/archive/", view(self.archive_view), name=f"{name}_archive"),
            path(
                "<path:object_id>/new-draft/", view(self.new_draft_view), name=f"{name}_new_draft"
            ),
            *super().get_urls(),
        ]

    # Publishing and archiving are permissions of their own (roles: setup_roles).
    def has_publish_permission(self, request):
        return request.user.has_perm("plans.publish_planversion")

    def has_archive_permission(self, request):
        return request.user.has_perm("plans.archive_planversion")

    def lifecycle_buttons(self, request, version: PlanVersion) -> list[dict]:
        """The buttons the version's status and the user's permissions allow."""
        buttons = []
        if version.status == PlanVersion.DRAFT and self.has_publish_permission(request):
            buttons.append({"id": "publish-version", "label": gettext("Publish"), "url": "publish"})
        if version.status != PlanVersion.ARCHIVED and self.has_archive_permission(request):
            buttons.append({"id": "archive-version", "label": gettext("Archive"), "url": "archive"})
        if self.has_add_permission(request):
            buttons.append(
                {"id": "new-draft", "label": gettext("New draft"), "url": "new_draft", "post": True}
            )
        for button in buttons:
            button["url"] = reverse(f"admin:plans_planversion_{button['url']}", args=[version.pk])
        return buttons

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        if version is not None:
            extra_context = {
                **(extra_context or {}),
                "lifecycle_buttons": self.lifecycle_buttons(request, version),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _version_or_404(self, request, object_id) -> PlanVersion:
        version = self.get_object(request, unquote(object_id))
        if version is None:
            raise Http404("No such plan version.")
        return version

    def _page(self, version: PlanVersion):
        return redirect(reverse("admin:plans_planversion_change", args=[version.pk]))

    def publish_view(self, request, object_id):
        version = self._version_or_404(request, object_id)
        if not self.has_publish_permission(request):
            raise PermissionDenied
        if version.status != PlanVersion.DRAFT:
            self.message_user(
                request,
                gettext("{version} is not a draft: only a draft can be published.").format(
                    version=version
                ),
                messages.ERROR,
            )
            return self._page(version)
        if is_confirmed(request):
            self._publish(request, version)
            return self._page(version)
        versions_of_plan = version.plan.versions.values_list("pk", flat=True)
        counts = live_subscription_counts(version_ids=versions_of_plan)
        return confirmation_page(
            request,
            self,
            Confirmation(
                title=gettext("Publish {version}?").format(version=version),
                consequences=publish_consequences(version, counts),
                confirm_label=gettext("Publish {version}").format(version=version),
                cancel_url=reverse("admin:plans_planversion_change", args=[version.pk]),
            ),
            obj=version,
        )

    def archive_view(self, request, object_id):
        version = self._version_or_404(request, object_id)
        if not self.has_archive_permission(request):
            raise PermissionDenied
        if version.status == PlanVersion.ARCHIVED:
            self.message_user(
                request,
                gettext("{version} is archived already.").format(version=version),
                messages.ERROR,
            )
            return self._page(version)
        if is_confirmed(request):
            self._archive(request, version)
            return self._page(version)
        counts = live_subscription_counts(version_ids=[version.pk])
        return confirmation_page(
            request,
            self,
            Confirmation(
                title=gettext("Archive {version}?").format(version=version),
                consequences=archive_consequences(version, counts),
                confirm_label=gettext("Archive {version}").format(version=version),
                cancel_url=reverse("admin:plans_planversion_change", args=[version.pk]),
            ),
            obj=version,
        )

    def new_draft_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        version = self._version_or_404(request, object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        try:
            draft = services.plan_version_copy_as_draft(version=version)
        except BillingError as error:
            self.message_user(request, refusal_text(version, "copied", error), messages.ERROR)
            return self._page(version)
        self.message_user(
            request,
            gettext("{draft} created as a draft from v{number}").format(
                draft=draft, number=version.number
            ),
            messages.SUCCESS,
        )
        return self._page(draft)

    def _publish(self, request, version: PlanVersion) -> None:
        if version.status != PlanVersion.DRAFT:
            self.message_user(
                request,
                gettext("{version} was not published: it is not a draft.").format(version=version),
                messages.ERROR,
            )
            return
        try:
            published = services.plan_version_publish(version=version)
        except BillingError as error:
            self.message_user(request, refusal_text(version, "published", error), messages.ERROR)
        else:
            self.message_user(
                request, gettext("{version} published").format(version=published), messages.SUCCESS
            )

    def _archive(self, request, version: PlanVersion) -> None:
        try:
            archived = services.plan_version_archive(version=version)
        except BillingError as error:
            self.message_user(request, refusal_text(version, "archived", error), messages.ERROR)
        else:
            self.message_user(
                request, gettext("{version} archived").format(version=archived), messages.SUCCESS
            )

    def _confirm_selected(self, request, queryset, action: str, consequences) -> object:
        """The confirmation page for a list action on the versions selected."""
        versions = list(versions_by_plan_name(queryset.select_related("plan")))
        counts = live_subscription_counts(
            version_ids=PlanVersion.objects.filter(
                plan__in={v.plan_id for v in versions}
            ).values_list("pk", flat=True)
        )
        title, confirm = selected_words(action, versions)
        return confirmation_page(
            request,
            self,
            Confirmation(
                title=title,
                consequences=[s for v in versions for s in consequences(v, counts)],
                confirm_label=confirm,
                cancel_url=reverse("admin:plans_planversion_changelist"),
                hidden={
                    "action": action,
                    ACTION_CHECKBOX_NAME: [str(v.pk) for v in versions],
                },
            ),
        )

    @admin.action(description=_("Publish the selected versions…"), permissions=["publish"])
    def publish(self, request, queryset):
        if not is_confirmed(request):
            return self._confirm_selected(request, queryset, "publish", publish_consequences)
        for version in queryset.select_related("plan"):
            self._publish(request, version)
        return None

    @admin.action(description=_("Archive the selected versions…"), permissions=["archive"])
    def archive(self, request, queryset):
        if not is_confirmed(request):
            return self._confirm_selected(request, queryset, "archive", archive_consequences)
        for version in queryset.select_related("plan"):
            if version.status == PlanVersion.ARCHIVED:
                self.message_user(
                    request,
                    gettext("{version} is archived already.").format(version=version),
                    messages.ERROR,
                )
            else:
                self._archive(request, version)
        return None

    @admin.action(description=_("New draft from each selected version"), permissions=["add"])
    def copy_as_draft(self, request, queryset):
        for version in queryset.select_related("plan"):
            try:
                draft = services.plan_version_copy_as_draft(version=version)
            except BillingError as error:
                self.message_user(request, refusal_text(version, "copied", error), messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("{draft} created as a draft from v{number}").format(
                        draft=draft, number=version.number
                    ),
                )

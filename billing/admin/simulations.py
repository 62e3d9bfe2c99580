"""Price simulations in the admin: the form that asks for a draft version and a
past period, and the simulation's page with its rows, totals and CSV. Running
one needs plans.run_pricesimulation."""

from datetime import UTC, datetime
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path as url_path
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.simulation import engine, period_subscriptions, report
from common.admin_forms import (
    add_billing_error,
    amount_text,
)
from common.customer_text import day_time
from common.errors import BillingError
from common.periods import month_start
from common.stored_words import in_readers_language
from customers.models import Customer
from plans.models import (
    Plan,
    PlanVersion,
    PriceSimulation,
    PriceSimulationRow,
)
from plans.selectors import plans_by_name, versions_by_plan_name

RUN_SIMULATIONS = "plans.run_pricesimulation"


# What an <input type="datetime-local"> sends and shows.
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def last_month(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) before the one `now` is in, as [start, end)."""
    start = month_start(now.astimezone(UTC), months=-1)
    return start, month_start(start, months=1)


def signed_money(amount: Decimal, currency: str) -> str:
    return ("+" if amount > 0 else "") + amount_text(amount, currency)


class SimulationForm(forms.Form):
    version = forms.ModelChoiceField(
        queryset=versions_by_plan_name(PlanVersion.objects.select_related("plan")),
        help_text=_("The prices to rate the usage at: usually a draft."),
        label=_("Version"),
    )
    month = forms.CharField(
        required=False,
        label=_("Month (UTC)"),
        widget=forms.TextInput(attrs={"type": "month"}),
        help_text=_("Sets the start and end to this calendar month."),
    )
    period_start = forms.DateTimeField(
        required=False,
        label=_("Start (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text=_("Included. With the end, it wins over the month."),
    )
    period_end = forms.DateTimeField(
        required=False,
        label=_("End (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text=_("Excluded."),
    )
    customers = forms.ModelMultipleChoiceField(
        queryset=Customer.objects.order_by("external_id"), required=False, label=_("Customers")
    )
    plan = forms.ModelChoiceField(
        queryset=plans_by_name(Plan.objects.all()),
        required=False,
        label=_("or all subscribers of"),
        help_text=_("Every customer on a version of this plan when the period started."),
    )

    def __init__(self, *args, admin_site, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now
        # Searched as the customer list is (its search fields), not listed whole.
        customers = self.fields["customers"]
        customers.widget = AutocompleteSelectMultiple(
            PriceSimulationRow._meta.get_field("customer"), admin_site
        )
        customers.widget.choices = customers.choices

    def clean_month(self):
        text = (self.cleaned_data.get("month") or "").strip()
        if not text:
            return None
        try:
            first = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise forms.ValidationError(gettext("Enter a month as YYYY-MM.")) from None
        return first

    def _period(self, cleaned) -> tuple[datetime, datetime] | None:
        start, end, month = (cleaned.get(f) for f in ("period_start", "period_end", "month"))
        if any(f in self.errors for f in ("period_start", "period_end", "month")):
            return None
        if start is None and end is None:
            if month is None:
                self.add_error("month", gettext("Choose a month, or a start and an end."))
                return None
            return month, month_start(month, months=1)
        if start is None or end is None:
            missing = "period_start" if start is None else "period_end"
            self.add_error(
                missing, gettext("Give both a start and an end, or neither and a month.")
            )
            return None
        return start, end

    def _customers(self, cleaned) -> tuple[list[Customer], str] | None:
        chosen, plan = list(cleaned.get("customers") or []), cleaned.get("plan")
        if chosen and plan is not None:
            self.add_error(None, gettext("Choose customers or a plan, not both."))
            return None
        if plan is not None:
            period = cleaned.get("period")
            if period is None:
                return None
            ids = period_subscriptions.plan_subscriber_ids(
                plan=plan, period_start=period[0], period_end=period[1]
            )
            if not ids:
                self.add_error(
                    "plan",
                    gettext(
                        "{plan} had no subscribers in the period: choose another period or "
                        "pick customers instead."
                    ).format(plan=plan.name or plan.code),
                )
                return None
            return (
                list(Customer.objects.filter(pk__in=ids).order_by("external_id")),
                f"subscribers of {plan.name or plan.code} ({len(ids)})",
            )
        if not chosen:
            self.add_error(
                "customers", gettext("Choose customers, or a plan for all its subscribers.")
            )
            return None
        names = ", ".join(c.name or c.external_id for c in chosen[:5])
        more = f" and {len(chosen) - 5} more" if len(chosen) > 5 else ""
        plural = "s" if len(chosen) != 1 else ""
        return chosen, f"{len(chosen)} customer{plural}: {names}{more}"

    def clean(self):
        cleaned = super().clean()
        cleaned["period"] = self._period(cleaned)
        selection = self._customers(cleaned)
        version, period = cleaned.get("version"), cleaned["period"]
        if selection is None or version is None or period is None:
            return cleaned
        cleaned["customers"], cleaned["selection"] = selection
        try:
            engine.simulation_check(
                version=version,
                period_start=period[0],
                period_end=period[1],
                customers=selection[0],
                now=self.now,
            )
        except BillingError as error:
            self.show(error)
        return cleaned

    def show(self, error: BillingError) -> None:
        selection_field = "plan" if self.cleaned_data.get("plan") else "customers"
        add_billing_error(self, error, {"customers": selection_field})


@admin.register(PriceSimulation)
class PriceSimulationAdmin(admin.ModelAdmin):
    """Simulations are asked for on the Simulate page and read on their result
    page; the list is their history. Running one needs plans.run_pricesimulation."""

    list_display = [
        "id",
        "version",
        "period",
        "selection",
        "status",
        "progress",
        "difference_sum_display",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    list_select_related = ["version__plan", "created_by"]

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm(RUN_SIMULATIONS)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self.has_run_permission(request)

    def has_add_permission(self, request):
        return False  # the Simulate page asks for one

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("period"))
    def period(self, obj):
        return f"{day_time(obj.period_start, UTC)} to {day_time(obj.period_end, UTC)}"

    @admin.display(description=_("customers"))
    def progress(self, obj):
        return f"{obj.done_count} of {obj.total_customers}"

    @admin.display(description=_("difference"), ordering="difference_sum")
    def difference_sum_display(self, obj):
        if obj.status != PriceSimulation.DONE:
            return "—"
        return f"{signed_money(obj.difference_sum, obj.currency)} {obj.currency}"

    def get_urls(self):
        own = [
            url_path(
                "simulate/",
                self.admin_site.admin_view(self.simulate_view),
                name="plans_pricesimulation_simulate",
            ),
            url_path(
                "<int:simulation_id>/result/",
                self.admin_site.admin_view(self.result_view),
                name="plans_pricesimulation_result",
            ),
            url_path(
                "<int:simulation_id>/csv/",
                self.admin_site.admin_view(self.csv_view),
                name="plans_pricesimulation_csv",
            ),
            url_path(
                "<int:simulation_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="plans_pricesimulation_progress",
            ),
        ]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect(reverse("admin:plans_pricesimulation_result", args=[object_id]))

    def _context(self, request, title: str, **values) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            **values,
        }

    def simulate_view(self, request):
        if not self.has_run_permission(request):
            raise PermissionDenied
        now = datetime.now(UTC)
        start, end = last_month(now)
        initial = {
            "month": f"{start:%Y-%m}",
            "period_start": start,
            "period_end": end,
            "version": request.GET.get("version"),
        }
        form = SimulationForm(
            request.POST or None, initial=initial, admin_site=self.admin_site, now=now
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                done = engine.simulation_request(
                    version=data["version"],
                    period_start=data["period"][0],
                    period_end=data["period"][1],
                    customers=data["customers"],
                    selection=data["selection"],
                    user=request.user,
                    now=now,
                )
            except BillingError as error:
                form.show(error)
            else:
                return redirect(reverse("admin:plans_pricesimulation_result", args=[done.pk]))
        context = self._context(
            request,
            gettext("Simulate prices on past usage"),
            form=form,
            media=self.media + form.media,
            inline_limit=engine.INLINE_LIMIT,
        )
        return TemplateResponse(request, "admin/plans/pricesimulation/simulate.html", context)

    def _simulation(self, request, simulation_id: int) -> PriceSimulation:
        found = get_object_or_404(
            PriceSimulation.objects.select_related("version__plan", "created_by"),
            pk=simulation_id,
        )
        if not self.has_view_permission(request, found):
            raise PermissionDenied
        return found

    def result_view(self, request, simulation_id: int):
        found = self._simulation(request, simulation_id)
        currency = found.currency
        rows = []
        if found.status == PriceSimulation.DONE:
            rows = [
                {
                    "customer": row.customer,
                    "version": row.current_version_label,
                    "current": amount_text(row.current_total, currency),
                    "simulated": amount_text(row.simulated_total, currency),
                    "difference": signed_money(row.difference, currency),
                }
                for row in report.simulation_rows(simulation=found)
            ]
        sums = {
            "current": amount_text(found.current_sum, currency),
            "simulated": amount_text(found.simulated_sum, currency),
            "difference": signed_money(found.difference_sum, currency),
        }
        context = self._context(
            request,
            gettext("Price simulation #{number}: {version}").format(
                number=found.pk, version=found.version
            ),
            simulation=found,
            error=in_readers_language(found.error, found.error_words),
            version_label=str(found.version),
            # As the list shows them: '1 Nov 2026, 00:00 UTC'.
            period_start=day_time(found.period_start, UTC),
            period_end=day_time(found.period_end, UTC),
            asked_at=day_time(found.created_at, UTC),
            running=found.status in (PriceSimulation.PENDING, PriceSimulation.RUNNING),
            rows=rows,
            sums=sums,
        )
        return TemplateResponse(request, "admin/plans/pricesimulation/result.html", context)

    def csv_view(self, request, simulation_id: int):
        found = self._simulation(request, simulation_id)
        if found.status != PriceSimulation.DONE:
            messages.error(request, gettext("The simulation has not finished: no CSV yet."))
            return redirect(reverse("admin:plans_pricesimulation_result", args=[found.pk]))
        response = HttpResponse(
            report.simulation_csv(simulation=found), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="price-simulation-{found.pk}.csv"'
        return response

    def progress_view(self, request, simulation_id: int):
        found = self._simulation(request, simulation_id)
        return JsonResponse(
            {"status": found.status, "done": found.done_count, "total": found.total_customers}
        )

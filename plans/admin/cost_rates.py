"""Cost rates in the admin (Catalog): what usage costs the seller, by meter and
property values, from an hour on. Rows are never edited or deleted (a later row
takes over from its own hour, plans.cost_rules), so the list is read-only; they
are added by importing a provider's price list: a meter, a currency, an hour,
and lines pasted as CSV (plans.admin.cost_rate_import), shown as a table before they
are saved, all in one transaction through plans.cost_rules.cost_rate_create. A
refused row is marked on its row and nothing is saved. A wrong row is corrected
for the hours it covered by "Supersede…" on its line (a form of its unit cost
and per, through plans.cost_rules.cost_rate_supersede): the wrong row stays,
marked superseded."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path as url_path
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from common.admin_fields import currency_choices
from common.admin_forms import (
    ExactDecimalField,
    admin_language,
    path_words,
    unit_price_text,
)
from common.errors import BillingError, Conflict
from plans.admin.cost_rate_import import read_price_list
from plans.admin.rate_card_grid import GRID_STYLE, Grid, grid_table
from plans.cost_rules import cost_rate_create, cost_rate_supersede
from plans.models import CostRate, Meter
from plans.rate_cards import when_words

PER_1M = Decimal(1000000)
# A refusal of these is about the whole list (the same for every row): shown on
# the form's field, once.
FORM_FIELDS = ("meter", "currency", "effective_from")

LINES_HELP = _(
    "One line per rate: the value of each of the meter's properties in order "
    "(empty: any value), then the cost and optionally per. Paste from a "
    "spreadsheet, or type values separated by commas (semicolons where a decimal "
    "comma is used). A first line naming the columns (model,token_type,cost,per) "
    "is allowed."
)


class PriceListForm(forms.Form):
    meter = forms.ModelChoiceField(
        queryset=Meter.objects.order_by("code"), to_field_name="code", label=_("Meter")
    )
    currency = forms.ChoiceField(label=_("Currency"))
    effective_from = forms.DateTimeField(
        label=_("Effective from (UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("On the hour: costs are computed from the hourly usage."),
    )
    default_per = ExactDecimalField(
        label=_("Default per"),
        initial=PER_1M,
        min_value=Decimal("0.0000000001"),
        help_text=_(
            "How many units a cost is for when a line gives no per: 1000000 for a "
            "price per 1M tokens."
        ),
    )
    lines = forms.CharField(
        label=_("Price list"),
        help_text=LINES_HELP,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 10, "class": "rate-card-text", "spellcheck": "false"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].choices = currency_choices()
        self.grid: Grid | None = None

    def clean(self):
        data = super().clean()
        meter, per = data.get("meter"), data.get("default_per")
        if meter is None or per is None or "lines" not in data:
            return data
        self.grid = read_price_list(
            data["lines"],
            tuple(meter.group_by or ()),
            default_per=per,
            language=admin_language(),
        )
        if self.grid.refused:
            self.add_error("lines", refused_words(self.grid))
        return data

    def save(self, *, commit: bool = True) -> list[CostRate]:
        """Every row through the cost rules, in one transaction: all, or none
        and each refusal on its row or its field (then the form is invalid).
        Not committed (the preview): the rows are checked as a save would, and
        rolled back."""
        data, grid = self.cleaned_data, self.grid
        added, on_fields = [], {}
        with transaction.atomic():
            for index, row in enumerate(grid.rows):
                try:
                    added.append(
                        cost_rate_create(
                            meter=data["meter"].code,
                            when=dict(sorted(row.values.items())),
                            unit_cost=row.price,
                            per=row.per,
                            currency=data["currency"],
                            effective_from=data["effective_from"],
                        )
                    )
                except BillingError as error:
                    self._place(error, index, on_fields)
            if grid.refused or on_fields or not commit:
                transaction.set_rollback(True)
        for name, texts in on_fields.items():
            for text in texts:
                self.add_error(name, text)
        if grid.refused:
            self.add_error("lines", refused_words(grid))
        return [] if self.errors else added

    def _place(self, error: BillingError, index: int, on_fields: dict) -> None:
        if not any(error.fields.values()):
            self.grid.mark(index, error.words)
            return
        for path, texts in error.admin_fields.items():
            for text in texts:
                if path in FORM_FIELDS and not isinstance(error, Conflict):
                    known = on_fields.setdefault(path, [])
                    if text not in known:
                        known.append(text)
                else:
                    self.grid.mark(index, f"{path_words(path)}: {text}")


class CorrectionForm(forms.Form):
    """The right figures of a wrong cost rate; its meter, usage, currency and hour
    stay. Checked by the cost rules, whose refusals land on the fields."""

    unit_cost = ExactDecimalField(label=_("Unit cost"), min_value=Decimal(0))
    per = ExactDecimalField(
        label=_("Per"),
        min_value=Decimal("0.0000000001"),
        help_text=_("How many units the cost is for: 1000000 for a cost per 1M tokens."),
    )

    def __init__(self, *args, rate: CostRate, **kwargs):
        super().__init__(*args, **kwargs)
        self.rate = rate
        self.correction: CostRate | None = None

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            with transaction.atomic():
                self.correction = cost_rate_supersede(
                    rate_id=self.rate.pk, unit_cost=data["unit_cost"], per=data["per"]
                )
        except BillingError as error:
            placed = False
            for path, texts in error.admin_fields.items():
                if path in self.fields:
                    for text in texts:
                        self.add_error(path, text)
                    placed = True
            if not placed:
                self.add_error(None, error.words)
        return data


def refused_words(grid: Grid) -> str:
    numbers = [str(i + 1) for i, row in enumerate(grid.rows) if row.problems]
    words = list(grid.problems)
    if numbers:
        words.append(
            gettext("Refused rows: {rows}. Each is marked in red in the table, with why.").format(
                rows=", ".join(numbers)
            )
        )
    return " ".join(words)


@admin.register(CostRate)
class CostRateAdmin(admin.ModelAdmin):
    """Read-only rows; added by importing a price list (Finance)."""

    list_display = [
        "id",
        "meter_code",
        "when_display",
        "unit_cost_display",
        "currency",
        "effective_from",
        "correction",
    ]
    list_filter = ["meter"]
    list_select_related = ["meter", "superseded_by"]
    ordering = ["meter__code", "-effective_from", "id"]
    change_list_template = "admin/plans/costrate/change_list.html"

    @admin.display(description=_("meter"), ordering="meter__code")
    def meter_code(self, rate: CostRate) -> str:
        return rate.meter.code

    @admin.display(description=_("usage"))
    def when_display(self, rate: CostRate) -> str:
        pairs = sorted(rate.when.items())
        return when_words(pairs) if pairs else gettext("any (the default rate)")

    @admin.display(description=_("unit cost"), ordering="unit_cost")
    def unit_cost_display(self, rate: CostRate) -> str:
        return unit_price_text(rate.unit_cost, rate.per, rate.currency)

    @admin.display(description=_("correction"))
    def correction(self, rate: CostRate) -> str:
        """Superseded: by which row; else the link that corrects it."""
        try:
            return gettext("superseded by rate {id}").format(id=rate.superseded_by.pk)
        except CostRate.superseded_by.RelatedObjectDoesNotExist:
            pass
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:plans_costrate_supersede", args=[rate.pk]),
            gettext("Supersede…"),
        )

    def has_change_permission(self, request, obj=None):
        return False  # never edited: a later rate takes over from its hour

    def has_delete_permission(self, request, obj=None):
        return False  # the history stays

    def get_urls(self):
        own = [
            url_path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="plans_costrate_import",
            ),
            url_path(
                "<int:rate_id>/supersede/",
                self.admin_site.admin_view(self.supersede_view),
                name="plans_costrate_supersede",
            ),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect(reverse("admin:plans_costrate_import"))

    def supersede_view(self, request, rate_id: int):
        if not self.has_add_permission(request):
            raise PermissionDenied
        rate = get_object_or_404(CostRate.objects.select_related("meter"), pk=rate_id)
        form = CorrectionForm(request.POST or None, rate=rate)
        if request.method == "POST" and form.is_valid():
            self.message_user(
                request,
                gettext("Rate {id} is superseded by rate {new} from its start.").format(
                    id=rate.pk, new=form.correction.pk
                ),
                messages.SUCCESS,
            )
            return redirect(reverse("admin:plans_costrate_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Supersede a cost rate"),
            "opts": self.model._meta,
            "form": form,
            "rate": rate,
            "rate_words": gettext("{meter}, {usage}: {cost} from {hour} UTC").format(
                meter=rate.meter.code,
                usage=self.when_display(rate),
                cost=self.unit_cost_display(rate),
                hour=f"{rate.effective_from:%Y-%m-%d %H:%M}",
            ),
        }
        return TemplateResponse(request, "admin/plans/costrate/supersede.html", context)

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PriceListForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            added = form.save(commit="_save" in request.POST)
            if added and "_save" in request.POST:
                count = len(added)
                self.message_user(
                    request,
                    ngettext("{count} cost rate added.", "{count} cost rates added.", count).format(
                        count=count
                    ),
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:plans_costrate_changelist"))
        preview = ""
        if form.grid is not None:
            preview = grid_table(
                form.grid,
                credits=False,
                language=admin_language(),
                price_heading=gettext("Unit cost"),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import a price list"),
            "opts": self.model._meta,
            "form": form,
            "preview": preview,
            "grid_style": GRID_STYLE,
            "can_save": form.is_bound and not form.errors and form.grid is not None,
        }
        return TemplateResponse(request, "admin/plans/costrate/import.html", context)

"""Exchange rates in the admin (Catalog): what one unit of a currency is worth
in another, from a moment until the pair's next rate. Rows are never edited or
deleted (a later rate of the pair supersedes, plans.exchange_rate_rules), so the
list is read-only; a rate is added on a form of its own, or many by pasting them
as CSV (plans.admin.exchange_rate_paste): all or none, a refused row named by its
number and field, nothing written. Both go through plans.exchange_rate_rules."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path as url_path
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from common.admin_fields import currency_choices
from common.admin_forms import ExactDecimalField, add_billing_error, admin_language
from common.errors import BillingError
from common.money import format_decimal
from plans.admin.exchange_rate_paste import read_rates
from plans.exchange_rate_rules import exchange_rate_create, exchange_rates_create
from plans.models import ExchangeRate

LABELS = {
    "base": _("Base currency"),
    "quote": _("Quote currency"),
    "rate": _("Rate"),
    "effective_from": _("Effective from (UTC)"),
    "source": _("Source"),
}
PASTE_HELP = _(
    "One line per rate: base,quote,rate,effective_from,source, e.g. "
    "USD,EUR,0.9210,2026-11-01,ECB reference. The moment is a date (its midnight "
    "UTC), a UTC time (2026-11-01 00:00) or ISO 8601 with an offset. Paste from a "
    "spreadsheet, or type values separated by commas (semicolons where a decimal "
    "comma is used). A first line naming the columns is allowed, in any order."
)


def who(request) -> str:
    """Who entered a rate, as its created_by says it."""
    return gettext("admin {user}").format(user=request.user.get_username())


class ExchangeRateForm(forms.Form):
    """One rate; checked and added by plans.exchange_rate_rules, whose refusals
    land on the fields."""

    base = forms.ChoiceField(label=LABELS["base"])
    quote = forms.ChoiceField(label=LABELS["quote"])
    rate = ExactDecimalField(label=LABELS["rate"], help_text=_("1 base = rate quote, e.g. 0.9210."))
    effective_from = forms.DateTimeField(
        label=LABELS["effective_from"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("The rate applies from this moment until the pair's next rate."),
    )
    source = forms.CharField(
        label=LABELS["source"],
        max_length=200,
        help_text=_("Where the rate comes from, e.g. ECB reference."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base"].choices = self.fields["quote"].choices = currency_choices()

    def save(self, *, created_by: str) -> ExchangeRate | None:
        """The rate added, or None with the refusals on the form."""
        try:
            return exchange_rate_create(**self.cleaned_data, created_by=created_by)
        except BillingError as error:
            add_billing_error(self, error)
            return None


class PasteForm(forms.Form):
    lines = forms.CharField(
        label=_("Rates"),
        help_text=PASTE_HELP,
        max_length=200_000,
        widget=forms.Textarea(attrs={"rows": 12, "class": "rate-card-text", "spellcheck": "false"}),
    )

    def save(self, *, created_by: str) -> list[ExchangeRate]:
        """Every row added, or none and each refusal on the form naming its row
        and field."""
        pasted = read_rates(self.cleaned_data["lines"], language=admin_language())
        for text in pasted.refused:
            self.add_error("lines", text)
        for number, problems in pasted.problems.items():
            for name, text in problems:
                self.add_error("lines", row_words(number, pasted.cells[number - 1], name, text))
        if self.errors:
            return []
        try:
            return exchange_rates_create(rows=pasted.rows, created_by=created_by)
        except BillingError as error:
            for path, texts in error.admin_fields.items():
                number, _dot, name = path.partition(".")
                cells = pasted.cells[int(number) - 1] if number.isdigit() else []
                for text in texts:
                    self.add_error("lines", row_words(int(number or 0), cells, name, text))
            if not error.fields:
                self.add_error("lines", error.words)
            return []


def row_words(number: int, cells: list[str], name: str, text: str) -> str:
    """'Row 3 (USD, EUR, 0, 2026-11-01, ECB), rate: Must be more than zero'."""
    where = gettext("Row {number} ({cells})").format(number=number, cells=", ".join(cells))
    if name in LABELS:
        label = str(LABELS[name])
        where = f"{where}, {label[:1].lower()}{label[1:]}"
    return f"{where}: {text}"


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    """Read-only rows; added one at a time or pasted (Finance)."""

    list_display = [
        "id",
        "base",
        "quote",
        "rate_display",
        "effective_from",
        "source",
        "created_by",
        "created_at",
    ]
    list_filter = ["base", "quote"]
    ordering = ["base", "quote", "-effective_from"]
    date_hierarchy = "effective_from"
    change_list_template = "admin/plans/exchangerate/change_list.html"

    @admin.display(description=_("rate"), ordering="rate")
    def rate_display(self, rate: ExchangeRate) -> str:
        return format_decimal(rate.rate)

    def has_change_permission(self, request, obj=None):
        return False  # never edited: a later rate of the pair supersedes

    def has_delete_permission(self, request, obj=None):
        return False  # the history stays

    def get_urls(self):
        own = [
            url_path(
                "paste/",
                self.admin_site.admin_view(self.paste_view),
                name="plans_exchangerate_paste",
            ),
        ]
        return own + super().get_urls()

    def _page(self, request, template: str, title: str, form: forms.Form):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, f"admin/plans/exchangerate/{template}", context)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ExchangeRateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            rate = form.save(created_by=who(request))
            if rate is not None:
                self.message_user(
                    request, gettext("Exchange rate added: {rate}.").format(rate=rate)
                )
                return redirect(reverse("admin:plans_exchangerate_changelist"))
        return self._page(request, "add.html", gettext("Add an exchange rate"), form)

    def paste_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PasteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            added = form.save(created_by=who(request))
            if added:
                count = len(added)
                self.message_user(
                    request,
                    ngettext(
                        "{count} exchange rate added.", "{count} exchange rates added.", count
                    ).format(count=count),
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:plans_exchangerate_changelist"))
        return self._page(request, "paste.html", gettext("Paste rates as CSV"), form)

"""The journal in the admin: finance's accounts (the mapping of our account
kinds, and of meters, plans and tax rates, to its chart), the entries (read
only: never edited), the locked months (locked through the service, never
unlocked here) and the trial balance per account and month, with its CSV."""

from datetime import UTC, date, datetime

from django import forms
from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.core.admin_forms import RecordAdmin, amount_text
from billing.core.errors import BillingError
from billing.journal.export import trial_balance, trial_balance_lines
from billing.journal.models import JournalAccount, JournalEntry, JournalPeriodLock, TrialBalance
from billing.journal.periods import journal_month_lock
from billing.journal.writer import month_start, next_month

VIEW_JOURNAL = "billing.view_journalentry"


class AccountingAdmin:
    """The journal's pages are listed under Accounting (config.admin_site), not
    Billing, whose tables they stay in; their breadcrumbs say so."""

    admin_section = "accounting"
    change_list_template = "admin/accounting/change_list.html"
    change_form_template = "admin/accounting/change_form.html"
    delete_confirmation_template = "admin/accounting/delete_confirmation.html"
    object_history_template = "admin/accounting/object_history.html"


@admin.register(JournalAccount)
class JournalAccountAdmin(AccountingAdmin, admin.ModelAdmin):
    """Finance's chart: a change applies to entries written after it (each entry
    keeps the account it was written to)."""

    list_display = ("kind", "meter", "plan", "tax_rate", "code", "name", "updated_at")
    list_filter = ("kind",)
    search_fields = ("code", "name", "meter", "plan", "tax_rate")
    fields = ("kind", "meter", "plan", "tax_rate", "code", "name")


@admin.register(JournalEntry)
class JournalEntryAdmin(AccountingAdmin, RecordAdmin):
    list_display = (
        "date",
        "document_type",
        "document",
        "customer",
        "account",
        "account_name",
        "debit",
        "credit",
        "currency",
        "memo",
    )
    list_filter = ("document_type", "kind", "currency", "date")
    search_fields = ("document", "customer__external_id", "account")
    list_select_related = ("customer",)
    date_hierarchy = "date"
    show_full_result_count = False


class LockForm(forms.ModelForm):
    class Meta:
        model = JournalPeriodLock
        fields = ("month",)
        help_texts = {"month": _("Any day of the month to lock: a month that has ended.")}

    def clean(self):
        # The service's refusals (a month not ended, locked already) on the field;
        # it wrote the lock when it accepted (as the purchase form does).
        cleaned = super().clean()
        if cleaned.get("month") is not None:
            try:
                cleaned["lock"] = journal_month_lock(month=cleaned["month"], now=datetime.now(UTC))
            except BillingError as error:
                self.add_error("month", error.words)
        return cleaned


@admin.register(JournalPeriodLock)
class JournalPeriodLockAdmin(AccountingAdmin, admin.ModelAdmin):
    """Locked months: added through journal_month_lock, never changed or removed."""

    form = LockForm
    list_display = ("__str__", "locked_at")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        lock = form.cleaned_data["lock"]
        obj.pk, obj.month, obj.locked_at = lock.pk, lock.month, lock.locked_at


class TrialBalanceForm(forms.Form):
    start = forms.DateField(
        label=_("First month"),
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
    )
    end = forms.DateField(
        label=_("Last month"),
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise forms.ValidationError(gettext("The first month is after the last."))
        return cleaned


@admin.register(TrialBalance)
class TrialBalanceAdmin(AccountingAdmin, RecordAdmin):
    """No records: the list page is the trial balance."""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(VIEW_JOURNAL)

    def get_urls(self):
        return [
            path(
                "",
                self.admin_site.admin_view(self.trial_balance_view),
                name="billing_trialbalance_changelist",
            )
        ]

    def trial_balance_view(self, request):
        if not self.has_view_permission(request):
            messages.error(request, gettext("You may not view the journal."))
            return redirect(reverse("admin:index"))
        this_month = month_start(datetime.now(UTC).date()).strftime("%Y-%m")
        data = request.GET.copy()
        data.setdefault("start", this_month)
        data.setdefault("end", this_month)
        form = TrialBalanceForm(data)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Trial balance"),
            "form": form,
            "opts": self.model._meta,
        }
        if not form.is_valid():
            messages.error(request, gettext("Please correct the errors below."))
            return TemplateResponse(request, "admin/billing/trial_balance.html", context)
        first = month_start(form.cleaned_data["start"])
        after: date = next_month(month_start(form.cleaned_data["end"]))
        rows = trial_balance(first, after)
        if request.GET.get("format") == "csv":
            response = StreamingHttpResponse(
                trial_balance_lines(rows), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = (
                f'attachment; filename="trial-balance-{first:%Y-%m}-{after:%Y-%m}.csv"'
            )
            return response
        context |= {
            "rows": [
                {
                    "month": row.month.strftime("%Y-%m"),
                    "account": row.account,
                    "account_name": row.account_name,
                    "currency": row.currency,
                    "debit": amount_text(row.debit, row.currency),
                    "credit": amount_text(row.credit, row.currency),
                    "balance": amount_text(row.balance, row.currency),
                }
                for row in rows
            ],
            "csv_query": data.urlencode(),
            "shown": True,
        }
        return TemplateResponse(request, "admin/billing/trial_balance.html", context)

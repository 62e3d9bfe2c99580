"""The journal in the admin: finance's accounts (the mapping of our account
kinds, and of meters, plans and tax rates, to its chart), the entries (read
only: never edited; exported as CSV or for Xero per seller and date range, and
their functional amounts filled once a missing rate is entered), the locked
months (locked and lifted, with a reason, through the services) and a seller's
trial balance for a date range (opening, debit, credit, closing), with its CSV."""

from datetime import UTC, date, datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.journal import export
from billing.journal.entities import books_entities
from billing.journal.functional import functional_missing, journal_functional_fill
from billing.journal.models import JournalAccount, JournalEntry, JournalPeriodLock, TrialBalance
from billing.journal.periods import REASON_MAX, journal_month_lock, journal_month_unlock
from billing.journal.trial_balance import entity_trial_balance, trial_balance_lines
from billing.journal.writer import month_start, next_month
from common.admin_forms import RecordAdmin, amount_text
from common.errors import BillingError

VIEW_JOURNAL = "billing.view_journalentry"
LIFT_LOCK = "billing.lift_journalperiodlock"


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


class BooksRangeForm(forms.Form):
    """A seller and a range of days (the last one included), for an export or the
    trial balance."""

    billing_entity = forms.ChoiceField(label=_("Billing entity"), choices=[])
    start = forms.DateField(label=_("First day"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("Last day"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["billing_entity"].choices = [(code, code) for code in books_entities()]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise forms.ValidationError(gettext("The first day is after the last."))
        return cleaned

    def range(self) -> tuple[str, date, date]:
        """(seller, first day, the day after the last)."""
        data = self.cleaned_data
        return data["billing_entity"], data["start"], data["end"] + timedelta(days=1)


def this_month_range(request) -> dict:
    """The form's defaults: the month or year the entries' list shows (its date
    filter), else this month (UTC); the seller it is filtered on, else the first."""
    first = month_start(datetime.now(UTC).date())
    after = next_month(first)
    try:
        year = int(request.GET.get("date__year", ""))
        month = int(request.GET.get("date__month", "0"))
        first = date(year, month or 1, 1)
        after = next_month(first) if month else date(year + 1, 1, 1)
    except ValueError:
        pass
    data = {
        "start": first.isoformat(),
        "end": (after - timedelta(days=1)).isoformat(),
        "billing_entity": request.GET.get("billing_entity")
        or request.GET.get("billing_entity__exact", ""),
    }
    if not data["billing_entity"]:
        entities = books_entities()
        data["billing_entity"] = entities[0] if entities else ""
    return data


@admin.register(JournalEntry)
class JournalEntryAdmin(AccountingAdmin, RecordAdmin):
    change_list_template = "admin/accounting/journalentry_change_list.html"
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
        "billing_entity",
        "functional_debit",
        "functional_credit",
        "functional_currency",
        "rate",
    )
    list_filter = ("billing_entity", "document_type", "kind", "currency", "date")
    search_fields = ("document", "customer__external_id", "account")
    list_select_related = ("customer",)
    date_hierarchy = "date"
    show_full_result_count = False

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="billing_journalentry_export",
            ),
            path(
                "fill-rates/",
                self.admin_site.admin_view(self.fill_view),
                name="billing_journalentry_fill",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        waiting = functional_missing(JournalEntry.objects.all())
        if waiting:
            pairs = "; ".join(
                f"{pair} ({', '.join(day.isoformat() for day in days[:5])})"
                for pair, days in waiting.items()
            )
            messages.warning(
                request,
                gettext(
                    "Some entries wait for an exchange rate: {pairs}. Enter the rates, then "
                    "fill their functional amounts."
                ).format(pairs=pairs),
            )
        extra = {
            "export_form": BooksRangeForm(initial=this_month_range(request)),
            "rates_missing": bool(waiting),
        }
        return super().changelist_view(request, extra_context={**(extra_context or {}), **extra})

    def export_view(self, request):
        """The entries of a seller and range, as CSV or Xero's CSV (the API's files)."""
        if not self.has_view_permission(request):
            messages.error(request, gettext("You may not view the journal."))
            return redirect(reverse("admin:index"))
        back = redirect(reverse("admin:billing_journalentry_changelist"))
        form = BooksRangeForm(request.GET)
        if not form.is_valid():
            for errors in form.errors.values():
                messages.error(request, " ".join(errors))
            return back
        code, start, end = form.range()
        xero = request.GET.get("format") == "xero"
        wanted = export.JournalFilter(billing_entity=code)
        try:
            lines = (export.xero_lines if xero else export.csv_lines)(start, end, wanted)
        except BillingError as error:
            messages.error(request, error.words)
            return back
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        suffix = "-xero" if xero else ""
        response["Content-Disposition"] = (
            f'attachment; filename="journal-{code}-{start}-{end}{suffix}.csv"'
        )
        return response

    def fill_view(self, request):
        """Fill the functional amounts of entries whose missing rate was entered
        since (journal_functional_fill); a POST, from the list's button."""
        if request.method != "POST" or not self.has_view_permission(request):
            return redirect(reverse("admin:billing_journalentry_changelist"))
        filled = journal_functional_fill()
        messages.info(
            request,
            gettext("Functional amounts filled for {count} document(s).").format(count=filled),
        )
        return redirect(reverse("admin:billing_journalentry_changelist"))


class LockForm(forms.ModelForm):
    # Who locks, in words: set on the form's class by JournalPeriodLockAdmin.get_form.
    locked_by = ""

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
                cleaned["lock"] = journal_month_lock(
                    month=cleaned["month"], now=datetime.now(UTC), by=self.locked_by
                )
            except BillingError as error:
                self.add_error("month", error.words)
        return cleaned


class LiftForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Reason"),
        help_text=_("Why the lock is lifted: kept with the lock, with who lifted it and when."),
    )


@admin.action(description=_("Lift the lock, with a reason…"), permissions=["lift"])
def lift_with_reason(modeladmin, request, queryset):
    """Asks for the reason on a page of its own, then lifts each lock in force
    selected (journal_month_unlock); a lifted one is said, not lifted again."""
    form = LiftForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        now, who = datetime.now(UTC), request.user.get_username()
        for lock in queryset:
            if lock.lifted_at is not None:
                modeladmin.message_user(
                    request,
                    gettext("{month}: this lock was lifted already").format(month=lock),
                    messages.WARNING,
                )
                continue
            try:
                journal_month_unlock(
                    month=lock.month, reason=form.cleaned_data["reason"], by=who, now=now
                )
            except BillingError as error:
                modeladmin.message_user(request, f"{lock}: {error.words}", messages.ERROR)
            else:
                modeladmin.message_user(request, gettext("{month}: lock lifted").format(month=lock))
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext("Lift the lock, with a reason"),
        "opts": modeladmin.model._meta,
        "locks": list(queryset),
        "form": form,
        "action_name": "lift_with_reason",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/billing/journalperiodlock/lift.html", context)


@admin.register(JournalPeriodLock)
class JournalPeriodLockAdmin(AccountingAdmin, admin.ModelAdmin):
    """Locked months: added through journal_month_lock, lifted (Finance, with a
    reason) through journal_month_unlock, never changed otherwise nor removed: a
    month's rows are its history."""

    form = LockForm
    list_display = ("__str__", "locked_at", "locked_by", "lifted_at", "lifted_by", "lift_reason")
    list_filter = (("lifted_at", admin.EmptyFieldListFilter),)
    actions = [lift_with_reason]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        # A lock's own page (read only) shows its history; the add page asks the month.
        if obj is None:
            return ("month",)
        return ("month", "locked_at", "locked_by", "lifted_at", "lifted_by", "lift_reason")

    def has_lift_permission(self, request):
        return request.user.has_perm(LIFT_LOCK)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.locked_by = request.user.get_username()  # a class made for this request
        return form

    def save_model(self, request, obj, form, change):
        lock = form.cleaned_data["lock"]
        obj.pk, obj.month, obj.locked_at = lock.pk, lock.month, lock.locked_at
        obj.locked_by = lock.locked_by


@admin.register(TrialBalance)
class TrialBalanceAdmin(AccountingAdmin, RecordAdmin):
    """No records: the list page is a seller's trial balance for a range of days."""

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
        data = request.GET.copy()
        for name, value in this_month_range(request).items():
            data.setdefault(name, value)
        form = BooksRangeForm(data)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Trial balance"),
            "form": form,
            "opts": self.model._meta,
        }
        if not form.is_valid():
            messages.error(request, gettext("Please correct the errors below."))
            return TemplateResponse(request, "admin/billing/trial_balance.html", context)
        code, first, after = form.range()
        try:
            balance = entity_trial_balance(billing_entity=code, start=first, end=after)
        except BillingError as error:
            messages.error(request, error.words)
            return TemplateResponse(request, "admin/billing/trial_balance.html", context)
        if request.GET.get("format") == "csv":
            response = StreamingHttpResponse(
                trial_balance_lines(balance), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = (
                f'attachment; filename="trial-balance-{code}-{first}-{after}.csv"'
            )
            return response
        money = balance.currency
        context |= {
            "billing_entity": code,
            "currency": money,
            "first": first,
            "last": after - timedelta(days=1),
            "rows": [
                {
                    "account": line.account,
                    "account_name": line.account_name,
                    "opening": amount_text(line.opening, money),
                    "debit": amount_text(line.debit, money),
                    "credit": amount_text(line.credit, money),
                    "closing": amount_text(line.closing, money),
                }
                for line in balance.lines
            ],
            "csv_query": data.urlencode(),
            "shown": True,
        }
        return TemplateResponse(request, "admin/billing/trial_balance.html", context)

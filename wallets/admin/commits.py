"""Commits in the admin (imported by wallets.admin): the list and a commit's page,
read-only (a commit changes only at a close or a cancel: wallets.commits), with
its access blocks (each period's, the rollover blocks, with what is left and
when it expires in the customer's zone) and its ledger; and signing one for a
customer: a form, then the shared confirmation page (common.admin_confirm)
stating the invoice and the schedule, whose button calls commit_sign. A refusal
comes back on the form in words; nothing is written."""

from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.models import Subscription
from billing.usage.statement import period_statement
from common import customer_text
from common.admin_confirm import Confirmation, confirmation_page, is_confirmed
from common.admin_fields import moment_text
from common.admin_forms import (
    RecordAdmin,
    RecordInline,
    add_billing_error,
    money_text,
    percent_text,
)
from common.errors import BillingError
from customers.models import Customer
from wallets.commit_models import Commit, CommitEntry
from wallets.commit_sign_form import FIELD_MAP, CommitSignForm, term_text
from wallets.commits import ENTRY_KINDS, access_kind, commit_ledger, commit_list
from wallets.models import CreditBlock

SIGN_PERMISSION = "wallets.add_commit"


def customer_moment(commit: Commit, moment: datetime | None) -> str:
    return moment_text(moment, customer_text.customer_zone(commit.customer))


def invoice_link(invoice) -> str:
    if invoice is None:
        return "—"
    url = reverse("admin:invoices_invoice_change", args=[invoice.pk])
    return format_html('<a href="{}">{}</a>', url, invoice.number or f"#{invoice.pk}")


def available_now(commit: Commit) -> str:
    """What the commit has to draw from in its subscription's current period."""
    if not commit.prepaid or commit.status != Commit.ACTIVE:
        return "—"
    subscription = commit.subscription
    # What /usage and the portal show: the period statement's, the usage not
    # invoiced yet drawn.
    statement = period_statement(
        subscription, start=subscription.current_period_start, end=subscription.current_period_end
    )
    if statement.commit is None or statement.commit.terms.id != commit.pk:
        return "—"
    return money_text(statement.commit.available, commit.currency)


ACCESS_LABELS = {
    "period": _("Period access"),
    "upfront": _("Up-front access"),
    "rollover": _("Rollover"),
}
ENTRY_LABELS = {
    "drawdown": _("Drawdown"),
    "rollover": _("Rollover"),
    "expiry": _("Expiry"),
    "credited": _("Credited at cancel"),
    CommitEntry.COUNTED: _("Usage counted"),
    CommitEntry.TRUE_UP: _("True-up"),
}


class AccessInline(RecordInline, admin.TabularInline):
    model = CreditBlock
    fk_name = "commit"
    fields = ["kind_text", "amount_text", "remaining_text", "available", "expires", "expired"]
    readonly_fields = fields
    ordering = ["effective_at", "id"]
    verbose_name_plural = _("access: each period's and the rollover blocks")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("commit__customer")

    @admin.display(description=_("kind"))
    def kind_text(self, block: CreditBlock) -> str:
        return ACCESS_LABELS[access_kind(block, block.commit)]

    @admin.display(description=_("amount"))
    def amount_text(self, block: CreditBlock) -> str:
        return money_text(block.amount, block.currency)

    @admin.display(description=_("remaining"))
    def remaining_text(self, block: CreditBlock) -> str:
        return money_text(block.remaining, block.currency)

    @admin.display(description=_("available for"))
    def available(self, block: CreditBlock) -> str:
        return term_text(block.commit.customer, block.effective_at, block.expires_at)

    @admin.display(description=_("expires at (customer's zone)"))
    def expires(self, block: CreditBlock) -> str:
        return customer_moment(block.commit, block.expires_at)

    @admin.display(description=_("expired at"))
    def expired(self, block: CreditBlock) -> str:
        return customer_moment(block.commit, block.expired_at)


def ledger_table(commit: Commit) -> str:
    """The commit's ledger, newest first (commit_ledger)."""
    rows = [
        (
            customer_moment(commit, entry.occurred_at),
            ENTRY_LABELS[ENTRY_KINDS.get(entry.kind, entry.kind)],
            money_text(entry.amount, commit.currency),
            term_text(commit.customer, entry.period_start, entry.period_end)
            if entry.period_start and entry.period_end
            else "—",
            invoice_link(entry.invoice),
            getattr(entry, "block_id", None) or "—",
        )
        for entry in reversed(commit_ledger(commit))
    ]
    heads = [_("occurred at"), _("kind"), _("amount"), _("usage period"), _("invoice"), _("access")]
    head = format_html_join("", "<th>{}</th>", ((h,) for h in heads))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in r)),) for r in rows)
    )
    return format_html("<table><tr>{}</tr>{}</table>", head, body)


class CommitAdmin(RecordAdmin):
    list_display = [
        "customer",
        "billing",
        "amount_text",
        "term",
        "access",
        "status",
        "available_text",
    ]
    list_filter = ["billing", "status"]
    search_fields = ["customer__external_id", "customer__name"]
    list_select_related = ["customer", "subscription"]
    fields = [
        "customer",
        "subscription",
        "billing",
        "amount_text",
        "term",
        "periods",
        "access",
        "meters",
        "overage_multiplier_text",
        "rollover",
        "counted_text",
        "invoice_link",
        "true_up_link",
        "status",
        "ended",
        "available_text",
        "ledger",
    ]
    readonly_fields = fields
    inlines = [AccessInline]
    change_list_template = "admin/wallets/commit/change_list.html"
    change_form_template = "admin/wallets/commit/change_form.html"

    @admin.display(description=_("ledger (newest first)"))
    def ledger(self, commit: Commit) -> str:
        return ledger_table(commit)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_text(self, commit: Commit) -> str:
        return money_text(commit.amount, commit.currency)

    @admin.display(description=_("term"), ordering="starts_at")
    def term(self, commit: Commit) -> str:
        return term_text(commit.customer, commit.starts_at, commit.ends_at)

    @admin.display(description=_("available now"))
    def available_text(self, commit: Commit) -> str:
        return available_now(commit)

    @admin.display(description=_("meters"))
    def meters(self, commit: Commit) -> str:
        return ", ".join(commit.applies_to) or gettext("all usage")

    @admin.display(description=_("overage multiplier"))
    def overage_multiplier_text(self, commit: Commit) -> str:
        return customer_text.typed_number(commit.overage_multiplier.normalize())

    @admin.display(description=_("rollover"))
    def rollover(self, commit: Commit) -> str:
        if not commit.rollover_percent:
            return gettext("none")
        return ngettext(
            "{percent} of unused access, expiring after {periods} more period",
            "{percent} of unused access, expiring after {periods} more periods",
            commit.rollover_periods,
        ).format(percent=percent_text(commit.rollover_percent), periods=commit.rollover_periods)

    @admin.display(description=_("counted (postpaid)"))
    def counted_text(self, commit: Commit) -> str:
        return "—" if commit.prepaid else money_text(commit.counted, commit.currency)

    @admin.display(description=_("invoice"))
    def invoice_link(self, commit: Commit) -> str:
        return invoice_link(commit.invoice)

    @admin.display(description=_("true-up invoice"))
    def true_up_link(self, commit: Commit) -> str:
        return invoice_link(commit.true_up_invoice)

    @admin.display(description=_("ended at"))
    def ended(self, commit: Commit) -> str:
        return customer_moment(commit, commit.ended_at)

    def changelist_view(self, request, extra_context=None):
        extra = {"may_sign": request.user.has_perm(SIGN_PERMISSION), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def get_urls(self):
        sign = path(
            "sign/",
            self.admin_site.admin_view(self.sign_view),
            name="wallets_commit_sign",
        )
        return [sign, *super().get_urls()]

    def sign_view(self, request):
        if not request.user.has_perm(SIGN_PERMISSION):
            raise PermissionDenied
        customer_id = request.GET.get("customer", "")
        if not customer_id.isdigit():
            return self._customer_pick(request)
        customer = get_object_or_404(Customer, pk=int(customer_id))
        subscription = (
            Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE)
            .select_related("customer")
            .first()
        )
        cancel_url = reverse("admin:customers_customer_change", args=[customer.pk])
        if subscription is None:
            messages.error(
                request,
                gettext(
                    "{customer} has no live subscription: a commit runs over a "
                    "subscription's periods. Subscribe the customer first."
                ).format(customer=customer),
            )
            return redirect(cancel_url)
        form = CommitSignForm(
            request.POST if request.method == "POST" else None, subscription=subscription
        )
        if request.method == "POST" and form.is_valid():
            if not is_confirmed(request):
                return self._confirmation(request, form, cancel_url)
            try:
                commit = form.sign(now=timezone.now())
            except BillingError as error:
                add_billing_error(form, error, FIELD_MAP)
            else:
                messages.success(request, signed_text(commit))
                return redirect(reverse("admin:wallets_commit_change", args=[commit.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Sign a commit for {customer}").format(customer=customer),
            "customer": customer,
            "form": form,
            "cancel_url": cancel_url,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/wallets/commit/sign.html", context)

    def _customer_pick(self, request):
        """Without a customer: which one, by its external id."""
        external_id = request.GET.get("external_id", "").strip()
        error = ""
        if external_id:
            customer = Customer.objects.filter(external_id=external_id).first()
            if customer is not None:
                url = reverse("admin:wallets_commit_sign")
                return redirect(f"{url}?{urlencode({'customer': customer.pk})}")
            error = gettext("No customer has the id {id}.").format(id=external_id)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Sign a commit"),
            "external_id": external_id,
            "error": error,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/wallets/commit/sign_customer.html", context)

    def _confirmation(self, request, form: CommitSignForm, cancel_url: str):
        hidden = {name: request.POST.getlist(name) for name in form.fields}
        confirmation = Confirmation(
            title=gettext("Sign this commit for {customer}?").format(
                customer=form.subscription.customer
            ),
            consequences=form.consequences(),
            confirm_label=gettext("Sign the commit"),
            cancel_url=cancel_url,
            hidden=hidden,
        )
        response = confirmation_page(request, self, confirmation)
        response.template_name = "admin/wallets/commit/sign_confirm.html"
        response.context_data["schedule"] = form.schedule_rows()
        return response


admin.site.register(Commit, CommitAdmin)


def signed_text(commit: Commit) -> str:
    text = gettext("Signed: {commit} for {customer}, {term}.").format(
        commit=commit,
        customer=commit.customer,
        term=term_text(commit.customer, commit.starts_at, commit.ends_at),
    )
    if commit.invoice is not None:
        text += " " + gettext("Invoiced on {invoice}.").format(invoice=commit.invoice.number)
    return text


def customer_commits(*, customer: Customer, user) -> dict | None:
    """The customer's page's commits section: each with a link, and one to sign
    another; None to a user who may not view commits."""
    if not user.has_perm("wallets.view_commit"):
        return None
    rows = [
        {
            "url": reverse("admin:wallets_commit_change", args=[c.pk]),
            "name": str(c),
            "term": term_text(c.customer, c.starts_at, c.ends_at),
            "status": c.get_status_display(),
            "available": available_now(c),
        }
        for c in commit_list(customer_id=customer.pk).select_related("customer", "subscription")
    ]
    sign_url = None
    if user.has_perm(SIGN_PERMISSION):
        sign_url = reverse("admin:wallets_commit_sign") + "?" + urlencode({"customer": customer.pk})
    return {"rows": rows, "sign_url": sign_url}

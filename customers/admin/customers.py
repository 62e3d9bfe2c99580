"""Customers in the admin; saves go through customers.services (the
form: customers.admin.customer_form). A customer's page also shows its
subscriptions with a button to add one, the current period's usage priced so far
and projected, its wallets, and makes a fresh signed portal link. To Finance
(billing.view_margins), the list and the page show the month so far's margin
(billing.admin.margins_so_far), the list's from one report call for its page."""

from dataclasses import replace

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin.margins_so_far import (
    customer_margin,
    customers_margin_texts,
    may_view_margins,
)
from billing.invoicing.discounts import usage_discounted
from billing.usage.breakdowns import meter_breakdown
from billing.usage.metering import meter_cache
from billing.usage.reads import subscription_live
from billing.usage.summary import period_usage
from common.admin_deletion import RefusedDeletionMixin
from common.admin_fields import currency_name, moment_text, zone_name
from common.admin_forms import adopt, money_text, quantity_text
from common.admin_history import AuditHistoryAdmin
from common.customer_text import CustomerText
from common.vocabulary import ConsumptionModel
from customers import services
from customers.admin.customer_form import ADDRESS_FIELDS, CustomerForm
from customers.admin.customer_limits import customer_limits_view
from customers.admin.customer_list import SPEND_LIMIT_MODE_WORDS, breakable_after
from customers.admin.portal_links import (
    portal_link_issue_view,
    portal_link_revoke_view,
    portal_link_rows,
)
from customers.admin.vat_checks import may_check_vat, vat_check_html, vat_check_view
from customers.billing_entities import vat_number_waited_for
from customers.e_invoice_details import E_INVOICE_DETAILS
from customers.models import CUSTOMER_DETAILS, Customer
from customers.portal import portal_session_create
from invoices.admin.dunning import (
    dunning_fields,
    dunning_settings_save,
    dunning_text,
    standing_text,
)
from wallets.admin.commits import customer_commits
from wallets.selectors import wallet_list

CUSTOMER_FIELDS = list(CUSTOMER_DETAILS)

# Subscriptions listed on a customer's page; the subscription list has them all.
SUBSCRIPTIONS_SHOWN = 20
# Wallet-drawn charges have no amount on the invoice: the wallet paid as usage happened.
DRAWN_FROM_WALLET = {"credits": _("drawn from credits"), "balance": _("drawn from balance")}


def _may_view(user, model: str) -> bool:
    app_label, model_name = model.split(".")
    return user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(
        f"{app_label}.change_{model_name}"
    )


def _model_words(model: str | None) -> str:
    """'Soft cap' for overage: the first words of the consumption model's label."""
    if not model:
        return "—"
    return ConsumptionModel(model).label.split(":")[0]


def _period(customer: Customer, start, end) -> str:
    """A period as the customer reads it (portal, invoices): its days in the
    customer's zone, named; in the admin user's language."""
    write = replace(CustomerText.of_customer(customer), locale=translation.get_language() or "en")
    return write.named(write.dates(start, end))


def _usage_context(customer: Customer, live, now) -> dict:
    """The live subscription's current period priced so far and projected, as
    display text: quantities grouped, amounts with their currency."""
    usage = usage_discounted(
        period_usage(
            customer=customer,
            subscription=live,
            start=live.current_period_start,
            end=live.current_period_end,
            now=now,
        )
    )
    currency, summary = customer.currency, usage.summary
    statement = summary.statement
    lines = []
    meters = meter_cache.by_codes(row.line.meter for row in usage.lines)
    for row in usage.lines:
        line = row.line
        meter = meters.get(line.meter)
        shown = {
            "meter": meter.name if meter is not None else line.meter,
            "model": _model_words(line.model),
            "quantity": quantity_text(line.quantity),
            "included": quantity_text(line.included),
            "billable": quantity_text(line.billable),
            "amount": money_text(row.amount, currency),
        }
        prop, parts = meter_breakdown(
            customer_id=customer.pk,
            meter_code=line.meter,
            start=live.usage_from or live.current_period_start,
            end=live.current_period_end,
        )
        if parts:
            shown["breakdown"] = gettext("By {property}: {parts}").format(
                property=prop,
                parts="; ".join(f"{label} {quantity_text(q)}" for _n, label, q in parts),
            )
        if line.model in DRAWN_FROM_WALLET:
            drawn = DRAWN_FROM_WALLET[line.model]
            # A charge that bills when its wallet runs dry bills the uncovered units.
            shown["amount"] = (
                gettext("{drawn}; {amount} for {quantity} uncovered").format(
                    drawn=drawn,
                    amount=money_text(row.amount, currency),
                    quantity=quantity_text(row.uncovered),
                )
                if row.amount
                else str(drawn)
            )
        lines.append(shown)
    return {
        "subscription": live,
        "period": _period(customer, live.current_period_start, live.current_period_end),
        "lines": lines,
        "base_fee": money_text(statement.part.spec.base_fee, currency),
        "subtotal": money_text(statement.subtotal, currency),
        "invoiced": money_text(statement.usage_invoiced, currency)
        if statement.usage_invoiced
        else None,
        "projected_total": money_text(summary.projected.total, currency),
        "projected_discount": money_text(usage.projected_discount, currency)
        if usage.projected_discount > 0
        else None,
    }


def customer_billing(*, customer: Customer, user, now) -> dict:
    """What the customer's admin page shows besides its fields, as display values:
    subscriptions (newest first) and a link to add one, the live one's current
    period priced so far and projected (billing.usage.summary, as the API's usage
    endpoint reads it), and wallets. Each part only to a user who may view that
    model."""
    context: dict = {
        "invoices_url": reverse("admin:invoices_invoice_changelist")
        + "?"
        + urlencode({"customer": customer.external_id}),
        "may_view_invoices": _may_view(user, "invoices.invoice"),
    }
    if _may_view(user, "billing.subscription"):
        rows = customer.subscriptions.select_related("customer", "version__plan").order_by("-id")
        context["subscriptions"] = [
            {
                "url": reverse("admin:billing_subscription_change", args=[s.pk]),
                "name": str(s),
                "plan": f"{s.version.plan.name} v{s.version.number}",
                "status": s.get_status_display(),
                "period": _period(customer, s.current_period_start, s.current_period_end),
            }
            for s in rows[:SUBSCRIPTIONS_SHOWN]
        ]
        context["subscriptions_more"] = max(0, rows.count() - SUBSCRIPTIONS_SHOWN)
        context["subscriptions_url"] = (
            reverse("admin:billing_subscription_changelist")
            + "?"
            + urlencode({"q": customer.external_id})
        )
        if user.has_perm("billing.add_subscription"):
            context["add_subscription_url"] = (
                reverse("admin:billing_subscription_add")
                + "?"
                + urlencode({"customer": customer.pk})
            )
        live = subscription_live(customer_id=customer.pk)
        if live is not None:
            context["usage"] = _usage_context(customer, live, now)
    if _may_view(user, "wallets.wallet"):
        context["wallets"] = [
            {
                "url": reverse("admin:wallets_wallet_change", args=[w.pk]),
                "kind": w.get_kind_display(),
                "balance": money_text(w.balance, w.currency)
                if w.kind == "money"
                else gettext("{credits} credits").format(credits=quantity_text(w.balance)),
            }
            for w in wallet_list(customer_id=customer.pk)
        ]
    context["commits"] = customer_commits(customer=customer, user=user)
    return context


ADDRESS_NAMES = [name for name, _ in ADDRESS_FIELDS.values()]
MARGIN_COLUMN = "month_margin"


class CustomerChangeList(ChangeList):
    """The customer list; with the margin column, the month so far's margins of
    the page's customers, read together (billing.admin.margins_so_far)."""

    def get_results(self, request):
        super().get_results(request)
        if MARGIN_COLUMN in self.list_display:
            # The page's rows, fetched once: the columns show these same objects.
            page = list(self.result_list)
            texts = customers_margin_texts(page, now=timezone.now())
            for customer in page:
                customer.month_margin_text = texts[customer.pk]


@admin.register(Customer)
class CustomerAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    form = CustomerForm
    change_form_template = "admin/customers/customer/change_form.html"
    list_display = [
        "external_id",
        "name",
        "email_display",
        "currency",
        "timezone_display",
        "spend_limit_display",
        "standing_display",
        "dunning_display",
    ]
    list_filter = ["standing", "currency", "spend_limit_mode"]
    search_fields = ["external_id", "name", "email"]
    date_hierarchy = "created_at"

    def get_changelist(self, request, **kwargs):
        return CustomerChangeList

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        if may_view_margins(request.user):
            shown.append(MARGIN_COLUMN)
        return shown

    @admin.display(description=_("Margin (month so far)"))
    def month_margin(self, customer: Customer) -> str:
        return getattr(customer, "month_margin_text", "—")

    @admin.display(description=_("Margin (month so far)"))
    def month_margin_display(self, customer: Customer) -> str:
        margin = customer_margin(customer, now=timezone.now())
        return format_html(
            '{} <a href="{}" id="customer-margins-link">{}</a>',
            margin["text"],
            margin["url"],
            gettext("Margins page"),
        )

    def deletion_refusal(self, obj):
        """A customer who was subscribed or invoiced stays, for those records."""
        if obj.pk is None:
            return None
        counts = {
            "invoice": obj.invoices.count(),
            "subscription": obj.subscriptions.count(),
            "wallet": obj.wallets.count(),
        }
        kept = [f"{n} {what}{'' if n == 1 else 's'}" for what, n in counts.items() if n]
        if not kept:
            return None
        return (
            f"{obj.name or obj.external_id} has {' and '.join(kept)}: it stays, for them; "
            "cancel its subscription to stop billing it."
        )

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, customer: Customer) -> str:
        return moment_text(customer.created_at)

    @admin.display(description=_("Currency"))
    def currency_display(self, customer: Customer) -> str:
        return f"{customer.currency} — {currency_name(customer.currency)}"

    @admin.display(description=_("Created"))
    def created_display(self, customer: Customer) -> str:
        return moment_text(customer.created_at)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            who = ["external_id", "name", "email", "currency", "timezone"]
        else:
            who = ["external_id", "name", "email", "currency_display", "timezone"]
            who.append("created_display")
            if may_view_margins(request.user):
                who.append("month_margin_display")
        return [
            (None, {"fields": who}),
            (_("Address"), {"fields": ADDRESS_NAMES}),
            (
                _("Spending"),
                {"fields": ["spend_limit", "spend_limit_mode", "alert_thresholds"]},
            ),
            (
                _("Invoicing"),
                {
                    "fields": [
                        "tax_id",
                        *(["vat_check_display"] if obj is not None else []),
                        "tax_exempt",
                        "tax_rates",
                        "payment_terms_days",
                        "locale",
                        "invoice_emails",
                        "billing_entity",
                    ]
                },
            ),
            (
                _("E-invoicing"),
                {
                    "fields": list(E_INVOICE_DETAILS),
                    "description": _(
                        "What its EN 16931 e-invoices carry of it; its VAT number is the "
                        "Tax ID above."
                    ),
                },
            ),
            (_("Dunning"), {"fields": dunning_fields(obj)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        # The API addresses a customer by external_id, and its money is in its currency.
        if obj is None:
            return []
        return [
            "external_id",
            "currency_display",
            "created_display",
            "month_margin_display",
            "standing_display",
            "dunning_paused_by",
            "vat_check_display",
        ]

    @admin.display(description=_("VAT number check"))
    def vat_check_display(self, customer: Customer) -> str:
        return vat_check_html(customer)

    @admin.display(description=_("Standing"), ordering="standing")
    def standing_display(self, customer: Customer) -> str:
        return standing_text(customer)

    @admin.display(description=_("Dunning"), ordering="dunning_paused_until")
    def dunning_display(self, customer: Customer) -> str:
        return dunning_text(customer)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            # Read-only on a saved customer: shown by currency_display.
            form.base_fields.pop("currency", None)
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        entity = vat_number_waited_for(obj) if obj is not None and request.method == "GET" else None
        if entity is not None:
            messages.warning(
                request,
                gettext(
                    "{customer} is an EU business in another country than its billing "
                    "entity, {entity}, which has no VAT number: its invoices wait for it "
                    "(drafts are not finalized and threshold invoices are not written). Add "
                    "the VAT number on the billing entity's page."
                ).format(customer=obj.name or obj.external_id, entity=entity.legal_name),
            )
        if obj is not None:
            obj.may_check_vat = may_check_vat(request.user)
            context["billing"] = customer_billing(
                customer=obj, user=request.user, now=timezone.now()
            )
            context["portal_links"] = portal_link_rows(obj, now=timezone.now())
            context["may_revoke_links"] = self.has_change_permission(request, obj)
        context["zone"] = zone_name()
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        portal_link = path(
            "<path:object_id>/portal-link/",
            self.admin_site.admin_view(self.portal_link_view),
            name="customers_customer_portal_link",
        )
        issue = path(
            "<path:object_id>/portal-link/issue/",
            self.admin_site.admin_view(
                lambda r, object_id: portal_link_issue_view(self, r, object_id)
            ),
            name="customers_customer_portal_link_issue",
        )
        revoke = path(
            "<path:object_id>/portal-link/<int:link_id>/revoke/",
            self.admin_site.admin_view(
                lambda r, object_id, link_id: portal_link_revoke_view(self, r, object_id, link_id)
            ),
            name="customers_customer_portal_link_revoke",
        )
        limits = path(
            "<path:object_id>/limits/",
            self.admin_site.admin_view(
                lambda r, object_id: customer_limits_view(self, r, object_id)
            ),
            name="customers_customer_limits",
        )
        vat_check = path(
            "<path:object_id>/vat-check/",
            self.admin_site.admin_view(lambda r, object_id: vat_check_view(self, r, object_id)),
            name="customers_customer_vat_check",
        )
        return [issue, revoke, portal_link, limits, vat_check, *super().get_urls()]

    def portal_link_view(self, request, object_id):
        """A fresh signed link to the customer's portal, shown to copy and hand on
        (it opens without a login until it expires). For whoever may view or change
        customers."""
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404("no such customer")
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        session = portal_session_create(customer=customer, now=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Portal link for {name}").format(name=customer.name),
            "opts": self.opts,
            "original": customer,
            "portal_url": request.build_absolute_uri(reverse("portal", args=[session.token])),
            "expires_at": session.expires_at,
            "expires_text": moment_text(session.expires_at),
        }
        response = TemplateResponse(request, "admin/customers/customer/portal_link.html", context)
        # The page holds a credential: never cached (admin_view), never a referrer.
        response["Referrer-Policy"] = "no-referrer"
        return response

    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data.get(f) for f in CUSTOMER_FIELDS}
        values["address"] = values["address"] or {}
        values["tax_id"] = values["tax_id"] or ""
        values["email"] = values["email"] or ""
        values["alert_thresholds"] = values["alert_thresholds"] or []
        values["invoice_emails"] = values["invoice_emails"] or []
        values["tax_rates"] = [rate.code for rate in form.cleaned_data.get("tax_rates") or []]
        seller = form.cleaned_data.get("billing_entity")
        values["billing_entity"] = seller.code if seller else None
        dunning = (
            form.cleaned_data.get("dunning_policy"),
            bool(form.cleaned_data.get("dunning_off")),
        )
        paused = form.cleaned_data.get("dunning_paused_until")
        if change:
            paused_before = Customer.objects.get(pk=obj.pk).dunning_paused_until
            adopt(obj, services.customer_update(customer=obj, **values))
        else:
            paused_before = None
            values["timezone_name"] = values.pop("timezone")
            adopt(
                obj,
                services.customer_create(
                    external_id=form.cleaned_data["external_id"],
                    currency=form.cleaned_data["currency"],
                    **values,
                ),
            )
        dunning_settings_save(
            obj, choice=dunning, paused=paused, paused_before=paused_before, user=request.user
        )

    # The list's columns of a customer's own fields.
    @admin.display(description=_("email"), ordering="email")
    def email_display(self, customer: Customer) -> str:
        """The address with a line break allowed after its "@" and each ".", so
        that a narrow column wraps it there rather than in the middle of a word."""
        return breakable_after(customer.email, "@.") if customer.email else "—"

    @admin.display(description=_("timezone"), ordering="timezone")
    def timezone_display(self, customer: Customer) -> str:
        """The zone's name with a line break allowed after each "/"
        (America/<wbr>New_York)."""
        return breakable_after(customer.timezone, "/")

    @admin.display(description=_("spend limit"), ordering="spend_limit")
    def spend_limit_display(self, customer: Customer) -> str:
        """The limit and, when there is one, whether it refuses or alerts: one
        column, so that the list keeps its standing and dunning on a 1280 px screen."""
        if customer.spend_limit is None:
            return "—"
        mode = SPEND_LIMIT_MODE_WORDS.get(customer.spend_limit_mode, customer.spend_limit_mode)
        return f"{money_text(customer.spend_limit, customer.currency)} ({mode})"

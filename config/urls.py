from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from billing import dashboard
from billing.api import (
    customer_limits,
    entitlements,
    events,
    holds,
    integrations,
    journal,
    margins,
    plan_migrations,
    rerate,
    revenue,
    revenue_bridge,
    subscriptions,
    usage,
)
from config import home, user_language
from customers import api as customers_api
from customers import views as portal_views
from invoices import api as invoices_api
from invoices import dunning_api, pay_views
from invoices import views as invoices_views
from plans import api as plans_api
from wallets import api as wallets_api
from wallets import commits_api

api_v1 = [
    path("events", events.EventsApi.as_view()),
    path("integrations/litellm", integrations.LiteLLMIngestApi.as_view()),
    path("integrations/openrouter", integrations.OpenRouterIngestApi.as_view()),
    path("integrations/<str:source>", integrations.IntegrationSourceApi.as_view()),
    path("integrations/<str:source>/refused", integrations.RefusedRecordsApi.as_view()),
    path(
        "integrations/<str:source>/refused/<str:record_id>/replay",
        integrations.RefusedRecordReplayApi.as_view(),
    ),
    path("meters", plans_api.MeterListApi.as_view()),
    path("meters/<str:code>", plans_api.MeterDetailApi.as_view()),
    path("plans", plans_api.PlanListApi.as_view()),
    path("plans/<str:code>", plans_api.PlanDetailApi.as_view()),
    path("plans/<str:code>/versions", plans_api.PlanVersionListApi.as_view()),
    path("plans/<str:code>/versions/<int:number>", plans_api.PlanVersionDetailApi.as_view()),
    path(
        "plans/<str:code>/versions/<int:number>/publish",
        plans_api.PlanVersionPublishApi.as_view(),
    ),
    path(
        "plans/<str:code>/versions/<int:number>/archive",
        plans_api.PlanVersionArchiveApi.as_view(),
    ),
    path("credit-packs", plans_api.CreditPackListApi.as_view()),
    path("credit-packs/<str:code>", plans_api.CreditPackDetailApi.as_view()),
    path("tax-rates", plans_api.TaxRateListApi.as_view()),
    path("tax-rates/<str:code>", plans_api.TaxRateDetailApi.as_view()),
    path("cost-rates", plans_api.CostRateListApi.as_view()),
    path("cost-rates/<int:rate_id>/supersede", plans_api.CostRateSupersedeApi.as_view()),
    path("exchange-rates", plans_api.ExchangeRateListApi.as_view()),
    path("margins", margins.MarginsApi.as_view()),
    path("revenue", revenue.RevenueApi.as_view()),
    path("revenue/bridge", revenue_bridge.RevenueBridgeApi.as_view()),
    path("rerate", rerate.RerateApi.as_view()),
    path("journal", journal.JournalListApi.as_view()),
    path("journal.csv", journal.JournalCsvApi.as_view()),
    path("journal/trial-balance", journal.JournalTrialBalanceApi.as_view()),
    path("journal/periods", journal.JournalPeriodsApi.as_view()),
    path("journal/periods/<str:month>/lock", journal.JournalMonthLockApi.as_view()),
    path("journal/periods/<str:month>/unlock", journal.JournalMonthUnlockApi.as_view()),
    path("coupons", plans_api.CouponListApi.as_view()),
    path("coupons/<str:code>", plans_api.CouponDetailApi.as_view()),
    path("features", plans_api.FeatureListApi.as_view()),
    path("features/<str:code>", plans_api.FeatureDetailApi.as_view()),
    path("billing-entities", customers_api.BillingEntityListApi.as_view()),
    path("billing-entities/<str:code>", customers_api.BillingEntityDetailApi.as_view()),
    path("customers", customers_api.CustomerListApi.as_view()),
    path("customers/<str:external_id>", customers_api.CustomerDetailApi.as_view()),
    path("customers/<str:external_id>/usage", usage.UsageApi.as_view()),
    path("customers/<str:external_id>/dunning/pause", dunning_api.DunningPauseApi.as_view()),
    path("dunning-policies", dunning_api.DunningPolicyListApi.as_view()),
    path("dunning-policies/<str:code>", dunning_api.DunningPolicyDetailApi.as_view()),
    path("customers/<str:external_id>/limits", customer_limits.CustomerLimitsApi.as_view()),
    path("customers/<str:external_id>/holds", holds.CustomerHoldsApi.as_view()),
    path("holds/<str:hold_id>/settle", holds.HoldSettleApi.as_view()),
    path("holds/<str:hold_id>/release", holds.HoldReleaseApi.as_view()),
    path("customers/<str:external_id>/vat-check", customers_api.CustomerVatCheckApi.as_view()),
    path(
        "customers/<str:external_id>/portal-session",
        customers_api.PortalSessionApi.as_view(),
    ),
    path("customers/<str:external_id>/portal-link", customers_api.PortalLinkListApi.as_view()),
    path(
        "customers/<str:external_id>/portal-link/<int:link_id>",
        customers_api.PortalLinkDetailApi.as_view(),
    ),
    path("customers/<str:external_id>/wallets", wallets_api.WalletListApi.as_view()),
    path("customers/<str:external_id>/commits", commits_api.CommitListApi.as_view()),
    path(
        "customers/<str:external_id>/commits/<int:commit_id>",
        commits_api.CommitDetailApi.as_view(),
    ),
    path("customers/<str:external_id>/wallets/credits", wallets_api.CreditsAddApi.as_view()),
    path("customers/<str:external_id>/wallets/money", wallets_api.MoneyAddApi.as_view()),
    path(
        "customers/<str:external_id>/wallets/credits/auto-top-up",
        wallets_api.AutoTopUpApi.as_view(),
    ),
    path(
        "customers/<str:external_id>/wallets/<str:kind>/ledger",
        wallets_api.LedgerApi.as_view(),
    ),
    path("subscriptions", subscriptions.SubscriptionListApi.as_view()),
    path("subscriptions/<int:subscription_id>", subscriptions.SubscriptionDetailApi.as_view()),
    path(
        "subscriptions/<int:subscription_id>/change-plan",
        subscriptions.SubscriptionChangePlanApi.as_view(),
    ),
    path(
        "subscriptions/<int:subscription_id>/cancel", subscriptions.SubscriptionCancelApi.as_view()
    ),
    path(
        "subscriptions/<int:subscription_id>/discounts",
        subscriptions.SubscriptionDiscountsApi.as_view(),
    ),
    path("plan-migrations", plan_migrations.PlanMigrationListApi.as_view()),
    path("plan-migrations/preview", plan_migrations.PlanMigrationPreviewApi.as_view()),
    path("plan-migrations/<int:migration_id>", plan_migrations.PlanMigrationDetailApi.as_view()),
    path("invoices", invoices_api.InvoiceListApi.as_view()),
    path("invoices/<int:invoice_id>", invoices_api.InvoiceDetailApi.as_view()),
    path("invoices/<int:invoice_id>/pdf", invoices_api.InvoicePdfApi.as_view(), name="invoice-pdf"),
    path(
        "invoices/<int:invoice_id>/e-invoice",
        invoices_api.InvoiceEInvoiceApi.as_view(),
        name="invoice-e-invoice",
    ),
    path("invoices/<int:invoice_id>/finalize", invoices_api.InvoiceFinalizeApi.as_view()),
    path("invoices/<int:invoice_id>/rebuild", invoices_api.InvoiceRebuildApi.as_view()),
    path("invoices/<int:invoice_id>/discard", invoices_api.InvoiceDiscardApi.as_view()),
    path("invoices/<int:invoice_id>/void", invoices_api.InvoiceVoidApi.as_view()),
    path("invoices/<int:invoice_id>/pay", invoices_api.InvoicePayApi.as_view()),
    path("invoices/<int:invoice_id>/payments", invoices_api.InvoicePaymentsApi.as_view()),
    path("invoices/<int:invoice_id>/credit-notes", invoices_api.InvoiceCreditNotesApi.as_view()),
    path("credit-notes", invoices_api.CreditNoteListApi.as_view()),
    path("credit-notes/<int:credit_note_id>", invoices_api.CreditNoteDetailApi.as_view()),
    path(
        "credit-notes/<int:credit_note_id>/pdf",
        invoices_api.CreditNotePdfApi.as_view(),
        name="credit-note-pdf",
    ),
    path(
        "credit-notes/<int:credit_note_id>/e-invoice",
        invoices_api.CreditNoteEInvoiceApi.as_view(),
        name="credit-note-e-invoice",
    ),
]

# The admin's index shows billing at a glance (billing.dashboard) above the app list.
admin.site.index_template = "admin/billing_index.html"
# The admin is the whole site for its users (the portal is per customer, by signed
# link): no "View site" link leading back to where they are.
admin.site.site_url = None
admin.site.site_header = _("Usage billing")
admin.site.site_title = _("Usage billing")
admin.site.index_title = _("Billing at a glance")

urlpatterns = [
    # First, as Django tries the routes in order, and outside api_v1's include (one
    # resolver fewer to go through): the calls a product makes before and after every
    # action (no other route matches their paths).
    path("api/v1/customers/<str:external_id>/check", usage.CheckApi.as_view()),
    path(
        "api/v1/customers/<str:external_id>/entitlements",
        entitlements.EntitlementsApi.as_view(),
    ),
    # Then the rest of the API's routes, the ones called most after those.
    path("api/v1/", include(api_v1)),
    # OTLP/HTTP's own path, where an OpenTelemetry exporter posts traces: its
    # endpoint is the site's root (billing.api.integrations.OtlpTracesApi).
    path("v1/traces", integrations.OtlpTracesApi.as_view()),
    path("", home.home, name="home"),
    # Ahead of the admin site's own index, which it calls with the dashboard's figures.
    path("admin/", admin.site.admin_view(dashboard.admin_index)),
    path(
        "admin/language/",
        admin.site.admin_view(user_language.language_view),
        name="admin-language",
    ),
    path("admin/", admin.site.urls),
    path("nested_admin/", include("nested_admin.urls")),
    path("webhooks/stripe/", invoices_views.stripe_webhook, name="stripe-webhook"),
    path("pay/<str:token>/", pay_views.pay_page, name="invoice-pay"),
    path("pay/<str:token>/pdf", pay_views.pay_page_pdf, name="invoice-pay-pdf"),
    path("portal/<str:token>/", portal_views.portal_page, name="portal"),
    path("portal/<str:token>/limits", portal_views.portal_limits_save, name="portal-limits"),
    path(
        "portal/<str:token>/invoices/<int:invoice_id>/pdf",
        portal_views.portal_invoice_pdf,
        name="portal-invoice-pdf",
    ),
    path(
        "portal/<str:token>/credit-notes/<int:credit_note_id>/pdf",
        portal_views.portal_credit_note_pdf,
        name="portal-credit-note-pdf",
    ),
    path(
        "portal/<str:token>/invoices/<int:invoice_id>/e-invoice",
        portal_views.portal_invoice_e_invoice,
        name="portal-invoice-e-invoice",
    ),
    path(
        "portal/<str:token>/credit-notes/<int:credit_note_id>/e-invoice",
        portal_views.portal_credit_note_e_invoice,
        name="portal-credit-note-e-invoice",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]


handler404 = "common.rest_api.handler404"
handler500 = "common.rest_api.handler500"

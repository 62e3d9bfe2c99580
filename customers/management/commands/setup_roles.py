"""The admin's roles: groups Finance, Operations and Support with the permissions of
their work. Give a staff user a role by adding it to one of these groups.

Idempotent: each group ends with exactly the permissions listed here (one added by
hand is removed, one missing is restored), so running it again after an upgrade
brings the groups up to date. A permission that does not exist (its model or
migration is not there yet) is reported on stderr and skipped.
"""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction


def perms(model: str, *actions: str) -> list[str]:
    """`perms("plans.meter", "add", "view")` -> ["plans.add_meter", "plans.view_meter"]."""
    app_label, model_name = model.split(".")
    return [f"{app_label}.{action}_{model_name}" for action in actions]


def view(*models: str) -> list[str]:
    return [name for model in models for name in perms(model, "view")]


CATALOG = (
    "plans.meter",
    "plans.plan",
    "plans.planversion",
    "plans.charge",
    "plans.pricetier",
    # Entitlements: the feature catalog, and what each version grants of it.
    "plans.feature",
    "plans.versionfeature",
)
CATALOG_VIEW = view(*CATALOG, "plans.creditpack", "plans.taxrate", "plans.coupon")
# A page's read-only inlines are shown to whoever may view their model.
CUSTOMERS_VIEW = view("customers.customer")
SUBSCRIPTIONS_VIEW = view("billing.subscription", "billing.subscriptionchange", "billing.discount")
INVOICES_VIEW = view(
    "invoices.invoice",
    "invoices.invoiceline",
    "invoices.invoicetaxline",
    "invoices.creditnote",
    "invoices.creditnoteline",
    "invoices.creditbalanceentry",
    "invoices.payment",
    # Dunning: the policies, their steps and what each run did.
    "invoices.dunningpolicy",
    "invoices.dunningstep",
    "invoices.dunningrun",
)
WALLETS_VIEW = view(
    "wallets.wallet",
    "wallets.creditblock",
    "wallets.ledgerentry",
    "wallets.autotopup",
    # Commits (their access is credit blocks and ledger entries), and a postpaid
    # commit's own entries.
    "wallets.commit",
    "wallets.commitentry",
)
ALERTS_VIEW = view("billing.alert", "billing.webhookdelivery")

FINANCE = [
    # The catalog. Deleting a draft's charges, tiers and feature grants is part of
    # editing the draft (published versions are read-only for everyone); nothing
    # else is deleted.
    *[name for model in CATALOG for name in perms(model, "add", "change", "view")],
    *perms("plans.charge", "delete"),
    *perms("plans.pricetier", "delete"),
    *perms("plans.versionfeature", "delete"),
    *perms("plans.creditpack", "add", "change", "view"),
    # Tax rates: archived (changed), never deleted once used (the admin refuses).
    *perms("plans.taxrate", "add", "change", "view", "delete"),
    # Coupons: archived (changed), never deleted once redeemed (the admin refuses).
    *perms("plans.coupon", "add", "change", "view", "delete"),
    "plans.publish_planversion",
    "plans.archive_planversion",
    # What usage costs (plans.CostRate): added by importing a price list, never
    # edited nor deleted (a later rate takes over). Finance's alone, as margins.
    *perms("plans.costrate", "add", "view"),
    # What a currency is worth in another (plans.ExchangeRate): entered or pasted,
    # never edited nor deleted (a later rate of the pair supersedes). Finance's alone.
    *perms("plans.exchangerate", "add", "view"),
    # Price simulations (plans.PriceSimulation).
    "plans.view_pricesimulation",
    "plans.run_pricesimulation",
    # Invoices and what is done to them.
    *INVOICES_VIEW,
    "invoices.finalize_invoice",
    "invoices.void_invoice",
    "invoices.issue_creditnote",
    "invoices.mark_paid_invoice",
    "invoices.mark_uncollectible_invoice",
    "invoices.render_invoice",
    # Re-rating: stored usage priced again at today's mappings, corrected by an
    # invoice for the difference or a credit note.
    "invoices.rerate_invoice",
    # Payments through Stripe: retry or stop collecting; purchases by Checkout link.
    *perms("invoices.payment", "change"),
    *perms("invoices.purchase", "add", "change", "view"),
    *view("invoices.stripeevent"),
    # Wallets: change is granting credits, selling packs and topping up (and the
    # low-balance threshold); add opens a wallet for a customer who has none.
    *perms("wallets.wallet", "add", "change"),
    # Commits: signed (add) through the confirmation page; never edited (a close or a
    # cancel changes them).
    *perms("wallets.commit", "add"),
    *WALLETS_VIEW,
    *view("wallets.uncoveredusage"),
    "wallets.view_credit_revenue",
    # The margins report (billing.admin.margins): revenue against the providers' cost.
    "billing.view_margins",
    # The accounting journal (billing.admin.journal): finance maps the accounts,
    # reads the entries and the trial balance, locks months and lifts a lock (with a
    # reason, kept on it).
    *perms("billing.journalaccount", "add", "change", "view"),
    *view("billing.journalentry"),
    *perms("billing.journalperiodlock", "add", "view", "lift"),
    # API keys: Finance's alone.
    *perms("customers.apikey", "add", "change", "view"),
    # VAT numbers checked with VIES (customers.vat_checks): recorded, never changed.
    *perms("customers.vatcheck", "add", "view"),
    # Webhooks: endpoints edited, deliveries retried; alerts read.
    *perms("billing.webhookendpoint", "add", "change", "view"),
    *perms("billing.alertteamrecipient", "add", "change", "view", "delete"),
    *perms("billing.webhookdelivery", "change"),
    *ALERTS_VIEW,
    *CUSTOMERS_VIEW,
    # The sellers on invoices (billing entities): edited, with their history; one
    # that billed nothing may be deleted.
    *perms("customers.billingentity", "add", "change", "view", "delete"),
    *SUBSCRIPTIONS_VIEW,
    # Deals (overrides of a plan for one subscription) and coupons redeemed on one.
    "billing.set_deal_subscription",
    # Usage sources (LiteLLM, OpenRouter, OpenTelemetry): how their model names
    # map onto the rate card; rows made by the ingestion, never added nor deleted.
    *perms("billing.integrationsource", "change", "view"),
    # The records they sent that were refused: read, and replayed once fixed.
    *perms("billing.refusedrecord", "view", "replay"),
    # Holds (billing.usage.holds): what each run reserved and how it ended.
    *view("billing.hold"),
    # Sending paused after a restore: read the periods billed again, and resume.
    *view("billing.outboundpause"),
    "billing.resume_outbound",
]

OPERATIONS = [
    *perms("customers.customer", "add", "change", "view"),
    # A customer's page picks its billing entity.
    *view("customers.billingentity"),
    # Change is cancelling, changing plan and seats; migrate is the bulk migration.
    *perms("billing.subscription", "add", "change"),
    *SUBSCRIPTIONS_VIEW,
    "billing.migrate_subscription",
    *view("billing.planmigration", "billing.planmigrationitem"),
    # Chasing what is unpaid: the dunning policies (a step removed from a policy is
    # deleted with the policy's change); a customer's pause is on its page.
    *perms("invoices.dunningpolicy", "add", "change"),
    *perms("invoices.dunningstep", "add", "change", "delete"),
    *WALLETS_VIEW,
    *INVOICES_VIEW,
    *CATALOG_VIEW,
    *view("billing.usageevent", "billing.usagerollup", "wallets.uncoveredusage"),
    *view("billing.integrationsource"),
    # The records usage sources sent that were refused: read, and replayed once the
    # customer is created (ingestion is operations' too).
    *perms("billing.refusedrecord", "view", "replay"),
    *view("billing.hold"),
    # Sending paused after a restore: the periods billed again (Finance resumes).
    *view("billing.outboundpause"),
]

SUPPORT = [
    *view("invoices.purchase"),
    *CUSTOMERS_VIEW,
    *SUBSCRIPTIONS_VIEW,
    *INVOICES_VIEW,
    *WALLETS_VIEW,
    *CATALOG_VIEW,
    *ALERTS_VIEW,
    # Why a run was not charged: its hold, released or expired.
    *view("billing.hold"),
    *view("billing.outboundpause"),
]

ROLES: dict[str, list[str]] = {
    "Finance": FINANCE,
    "Operations": OPERATIONS,
    "Support": SUPPORT,
}


def permissions_named(names: list[str]) -> tuple[list[Permission], list[str]]:
    """The permissions of `app_label.codename` names, and the names not found (one
    query for all of them)."""
    wanted = list(dict.fromkeys(names))
    codenames = {name.split(".")[1] for name in wanted}
    by_name: dict[str, Permission] = {}
    # In the permissions' own order, the first of a name kept (as .first() would).
    for permission in Permission.objects.filter(codename__in=codenames).select_related(
        "content_type"
    ):
        by_name.setdefault(f"{permission.content_type.app_label}.{permission.codename}", permission)
    found = [by_name[name] for name in wanted if name in by_name]
    return found, [name for name in wanted if name not in by_name]


class Command(BaseCommand):
    help = (
        "Create or update the groups Finance, Operations and Support with their "
        "permissions (idempotent; unknown permissions are reported and skipped)."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        for role, names in ROLES.items():
            group, created = Group.objects.get_or_create(name=role)
            permissions, missing = permissions_named(names)
            for name in missing:
                self.stderr.write(
                    f"{role}: no permission {name} (not migrated yet?); skipped",
                    style_func=self.style.WARNING,
                )
            group.permissions.set(permissions)
            self.stdout.write(
                f"{role}: {'created' if created else 'updated'}, {len(permissions)} permission(s)"
            )

"""Roles in the admin (`setup_roles`): Finance, Operations and Support each do their
own work through the admin and nothing of the others'. Every refused request is
checked against the exact state of the database before it."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client

from billing.models import Discount, Subscription, SubscriptionChange, WebhookEndpoint
from billing.subscriptions.lifecycle import subscription_create
from common.errors import Conflict
from customers.api_keys import api_key_create
from customers.models import ApiKey, Customer
from invoices.models import CreditNote, Invoice, InvoiceLine
from invoices.services import invoice_finalize
from plans.coupons import coupon_create
from plans.models import (
    Charge,
    Coupon,
    CreditPack,
    Feature,
    Meter,
    Plan,
    PlanVersion,
    PriceTier,
    VersionFeature,
)
from plans.services import plan_version_copy_as_draft
from tests.billing.test_admin import history_inline
from wallets.ledger import credits_grant
from wallets.models import CreditBlock, LedgerEntry, Wallet

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

TRACKED = (
    Customer,
    ApiKey,
    Meter,
    Plan,
    PlanVersion,
    Charge,
    PriceTier,
    CreditPack,
    Subscription,
    SubscriptionChange,
    Invoice,
    InvoiceLine,
    CreditNote,
    Wallet,
    CreditBlock,
    LedgerEntry,
    WebhookEndpoint,
    Discount,
    Coupon,
    Feature,
    VersionFeature,
)


def state() -> dict[str, list[dict]]:
    """Every row of the tables a role could touch, and of their audit history."""
    models = [*TRACKED, *(m.history.model for m in TRACKED if hasattr(m, "history"))]
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in models}


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def login(world):
    """A logged-in admin client for a staff user whose only role is `role` (the
    roles are set up with the world)."""

    def login(role: str) -> Client:
        user = User.objects.create_user(username=role.lower(), is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        return client

    return login


@dataclass
class World:
    draft: PlanVersion  # starter v2, a draft
    subscription: Subscription  # acme on starter
    finalized: Invoice  # acme's start invoice, finalized
    draft_invoice: Invoice  # globex's start invoice, still a draft
    wallet: Wallet  # acme's credit wallet, 10 credits
    api_key: ApiKey


def made_world() -> World:
    with time_machine.travel(NOW, tick=False):
        call_command("setup_roles", stdout=StringIO())
        return _world()


@pytest.fixture(scope="module")
def _world_once(module_transaction):
    return module_transaction.once(made_world, "world")


@pytest.fixture
def world(_world_once, db) -> World:
    """The roles set up, the demo catalog, two subscriptions and their start
    invoices, a wallet and an API key: made once for the module (tests/shared_rows.py),
    every test of which asks for it."""
    return _world_once.for_test()


def _world() -> World:
    call_command("load_demo", "--catalog-only", stdout=StringIO())
    acme = Customer.objects.get(external_id="acme")
    globex = Customer.objects.get(external_id="globex")
    draft = plan_version_copy_as_draft(version=PlanVersion.objects.get(plan__code="starter"))
    subscription = subscription_create(
        customer=acme, plan=Plan.objects.get(code="starter"), start=NOV_1
    )
    finalized = invoice_finalize(invoice=Invoice.objects.get(customer=acme), now=NOV_1)
    subscription_create(customer=globex, plan=Plan.objects.get(code="pro"), start=NOV_1)
    block, _ = credits_grant(customer=acme, credits=D(10), now=NOV_1)
    api_key, _ = api_key_create(name="product")
    return World(
        draft=draft,
        subscription=subscription,
        finalized=finalized,
        draft_invoice=Invoice.objects.get(customer=globex),
        wallet=block.wallet,
        api_key=api_key,
    )


def action(client: Client, changelist: str, name: str, *pks: int):
    """Run an admin action; an action behind a confirmation page (void, publish) is
    confirmed (`confirmed`: the shared page, common.admin_confirm; `confirm`: the
    older ones)."""
    return client.post(
        changelist,
        {"action": name, "_selected_action": list(pks), "confirm": "1", "confirmed": "yes"},
    )


def test_lifecycle_actions_need_their_own_permission_not_change(world):
    # given: someone who may edit versions and invoices, but holds no action permission
    user = User.objects.create_user(username="editor", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_planversion",
                "change_planversion",
                "view_invoice",
                "change_invoice",
            ]
        )
    )
    editor = Client()
    editor.force_login(user)
    before = state()

    # when
    publish = action(editor, "/admin/plans/planversion/", "publish", world.draft.pk)
    archive = action(editor, "/admin/plans/planversion/", "archive", world.draft.pk)
    void = action(editor, "/admin/invoices/invoice/", "void", world.finalized.pk)
    finalize = action(editor, "/admin/invoices/invoice/", "finalize", world.draft_invoice.pk)

    # then: none of these actions is offered (the changelist comes back), nothing changed
    assert [r.status_code for r in (publish, archive, void, finalize)] == [200, 200, 200, 200]
    assert 'value="publish"' not in publish.content.decode()
    assert 'value="void"' not in void.content.decode()
    assert state() == before


# Finance


def test_finance_publishes_voids_creates_an_api_key_and_reads_revenue(login, world):
    finance = login("Finance")

    # publishes the draft
    action(finance, "/admin/plans/planversion/", "publish", world.draft.pk)
    world.draft.refresh_from_db()
    assert world.draft.status == PlanVersion.PUBLISHED

    # voids the finalized invoice, with a credit note
    action(finance, "/admin/invoices/invoice/", "void", world.finalized.pk)
    world.finalized.refresh_from_db()
    assert world.finalized.status == Invoice.VOID
    assert CreditNote.objects.get(invoice=world.finalized).total == D("20.00")

    # creates an API key
    response = finance.post(
        "/admin/customers/apikey/add/", {"name": "finance-key", "scopes": ["read"]}
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(name="finance-key").scopes == ["read"]

    # runs the credit revenue report (and its CSV)
    assert finance.get("/admin/wallets/wallet/revenue/").status_code == 200
    csv_response = finance.get("/admin/wallets/wallet/revenue/?format=csv")
    assert csv_response["Content-Type"] == "text/csv"
    assert "Credit revenue report" in finance.get("/admin/wallets/wallet/").content.decode()


def test_finance_grants_credits_and_finalizes(login, world):
    finance = login("Finance")

    response = finance.post(
        f"/admin/wallets/wallet/{world.wallet.pk}/operation/",
        {"operation": "grant", "credits": "25", "priority": "10", "expires_at": ""},
    )
    action(finance, "/admin/invoices/invoice/", "finalize", world.draft_invoice.pk)

    assert response.status_code == 302
    world.wallet.refresh_from_db()
    assert world.wallet.balance == D(35)
    world.draft_invoice.refresh_from_db()
    assert world.draft_invoice.status == Invoice.FINALIZED


def test_finance_cannot_create_customers_or_subscriptions(login, world):
    finance = login("Finance")
    before = state()

    customer = finance.post("/admin/customers/customer/add/", customer_form("umbrella"))
    subscription = action(
        finance, "/admin/billing/subscription/", "cancel_at_period_end", world.subscription.pk
    )

    assert customer.status_code == 403
    assert 'value="cancel_at_period_end"' not in subscription.content.decode()
    assert state() == before


def test_finance_sets_a_deal_and_a_coupon_but_not_the_plan_or_seats(login, world):
    # given
    finance = login("Finance")
    ops = login("Operations")
    coupon_create(code="LAUNCH20", name="Launch 20%", percent_off=D("20"), duration="forever")
    page = f"/admin/billing/subscription/{world.subscription.pk}/change/"

    # when: finance posts a deal, a coupon and (not on its page) a seat count
    shown = finance.get(page).content.decode()
    response = finance.post(
        page,
        {
            **history_inline(world.subscription),
            "deal_base_fee": "5.00",
            "coupon": "LAUNCH20",
            "new_seats": "7",
            "effective": "x",
        },
    )

    # then: the deal and the discount are set, the seats untouched
    assert 'name="deal_base_fee"' in shown and 'name="coupon"' in shown
    assert 'name="new_seats"' not in shown and 'name="new_version"' not in shown
    assert response.status_code == 302
    world.subscription.refresh_from_db()
    assert world.subscription.next_overrides == {"base_fee": "5.00"}
    assert world.subscription.seats == 1
    assert world.subscription.discounts.get().coupon.code == "LAUNCH20"
    # and ops see the plan and seats, not the deal
    ops_page = ops.get(page).content.decode()
    assert 'name="new_seats"' in ops_page and 'name="deal_base_fee"' not in ops_page


def test_finance_ends_a_discount_and_a_refused_coupon_changes_nothing(login, world):
    # given: a discount running, and a coupon off in another currency
    finance = login("Finance")
    coupon_create(code="A", name="A", percent_off=D("10"), duration="forever")
    coupon_create(code="B", name="B", amount_off=D("5"), currency="EUR", duration="once")
    page = f"/admin/billing/subscription/{world.subscription.pk}/change/"
    inline = history_inline(world.subscription)
    assert finance.post(page, {**inline, "coupon": "A"}).status_code == 302
    before = state()

    # when: ending it while redeeming the spent coupon
    refused = finance.post(page, {**inline, "end_discount": "on", "coupon": "B"})

    # then: the coupon's refusal on its field, nothing changed
    assert refused.status_code == 200
    # in words for the admin: the coupon by its name, and what to do
    assert (
        "B takes EUR off and the subscription bills in USD: choose a coupon in USD or a percentage"
    ) in refused.content.decode()
    assert state() == before

    # when: ending it alone
    assert finance.post(page, {**inline, "end_discount": "on"}).status_code == 302

    # then
    assert world.subscription.discounts.get().ended_at == NOW
    again = finance.post(page, {**inline, "end_discount": "on"})
    assert "The subscription has no discount running." in again.content.decode()


# Operations


def customer_form(external_id: str) -> dict:
    return {
        "external_id": external_id,
        "name": "Umbrella Corp",
        "email": "",
        "currency": "USD",
        "timezone": "UTC",
        "address": "{}",
        "tax_id": "",
        "spend_limit": "",
        "spend_limit_mode": "hard",
    }


def test_operations_creates_a_customer_and_a_subscription_and_cancels(login, world):
    ops = login("Operations")

    # creates a customer
    response = ops.post("/admin/customers/customer/add/", customer_form("umbrella"))
    assert response.status_code == 302
    umbrella = Customer.objects.get(external_id="umbrella")

    # subscribes it
    response = ops.post(
        "/admin/billing/subscription/add/",
        {
            "customer": umbrella.pk,
            "version": Plan.objects.get(code="pro").versions.get(status="published").pk,
            "start_0": "2026-11-15",
            "start_1": "00:00:00",
            "seats": "1",
            "billing_anchor": "anniversary",
        },
    )
    assert response.status_code == 302
    assert Subscription.objects.get(customer=umbrella).version.plan.code == "pro"

    # cancels acme's at the end of the period
    action(ops, "/admin/billing/subscription/", "cancel_at_period_end", world.subscription.pk)
    world.subscription.refresh_from_db()
    assert world.subscription.cancel_at_period_end is True
    assert world.subscription.status in Subscription.LIVE


def test_operations_reads_invoices_wallets_and_the_catalog(login, world):
    ops = login("Operations")

    for url in (
        "/admin/invoices/invoice/",
        f"/admin/invoices/invoice/{world.finalized.pk}/change/",
        "/admin/wallets/wallet/",
        f"/admin/wallets/wallet/{world.wallet.pk}/change/",
        "/admin/wallets/uncoveredusage/",
        "/admin/plans/planversion/",
        "/admin/plans/meter/",
        "/admin/plans/feature/",
    ):
        assert ops.get(url).status_code == 200, url
    wallets_page = ops.get("/admin/wallets/wallet/").content.decode()
    assert "Credit revenue report" not in wallets_page
    wallet_page = ops.get(f"/admin/wallets/wallet/{world.wallet.pk}/change/").content.decode()
    assert "Add credits or money" not in wallet_page


def test_operations_cannot_publish_void_or_see_api_keys_and_nothing_changes(login, world):
    ops = login("Operations")
    before = state()

    versions = ops.get("/admin/plans/planversion/").content.decode()
    publish = action(ops, "/admin/plans/planversion/", "publish", world.draft.pk)
    void = action(ops, "/admin/invoices/invoice/", "void", world.finalized.pk)
    finalize = action(ops, "/admin/invoices/invoice/", "finalize", world.draft_invoice.pk)
    keys = ops.get("/admin/customers/apikey/")
    key_add = ops.post("/admin/customers/apikey/add/", {"name": "ops-key", "scopes": ["read"]})
    key_change = ops.get(f"/admin/customers/apikey/{world.api_key.pk}/change/")
    draft_change = ops.post(f"/admin/plans/planversion/{world.draft.pk}/change/", {})
    revenue = ops.get("/admin/wallets/wallet/revenue/")
    grant = ops.post(
        f"/admin/wallets/wallet/{world.wallet.pk}/operation/",
        {"operation": "grant", "credits": "25", "priority": "10"},
    )

    assert 'value="publish"' not in versions
    # No action of these lists is offered: the POST gets the changelist back.
    assert (publish.status_code, void.status_code, finalize.status_code) == (200, 200, 200)
    assert (keys.status_code, key_add.status_code, key_change.status_code) == (403, 403, 403)
    assert draft_change.status_code == 403
    assert (revenue.status_code, revenue["Location"]) == (302, "/admin/")
    assert (grant.status_code, grant["Location"]) == (302, "/admin/wallets/wallet/")
    assert state() == before
    world.draft.refresh_from_db()
    world.finalized.refresh_from_db()
    assert (world.draft.status, world.finalized.status) == ("draft", "finalized")


# Support


SUPPORT_PAGES = [
    "/admin/",
    "/admin/customers/customer/",
    "/admin/billing/subscription/",
    "/admin/invoices/invoice/",
    "/admin/wallets/wallet/",
    "/admin/wallets/ledgerentry/",
    "/admin/plans/meter/",
    "/admin/plans/plan/",
    "/admin/plans/planversion/",
    "/admin/plans/creditpack/",
    "/admin/plans/feature/",
    "/admin/billing/alert/",
    "/admin/billing/webhookdelivery/",
]


def test_support_sees_the_changelists_and_pages(login, world):
    support = login("Support")

    for url in [
        *SUPPORT_PAGES,
        f"/admin/customers/customer/{world.subscription.customer_id}/change/",
        f"/admin/billing/subscription/{world.subscription.pk}/change/",
        f"/admin/invoices/invoice/{world.finalized.pk}/change/",
        f"/admin/wallets/wallet/{world.wallet.pk}/change/",
        f"/admin/plans/planversion/{world.draft.pk}/change/",
    ]:
        assert support.get(url).status_code == 200, url
    invoices = support.get("/admin/invoices/invoice/").content.decode()
    assert 'value="void"' not in invoices and 'value="finalize"' not in invoices


def test_support_downloads_an_invoice_pdf_that_a_user_without_a_role_cannot(login, world):
    support = login("Support")
    nobody = Client()
    nobody.force_login(User.objects.create_user(username="nobody", is_staff=True))
    url = f"/admin/invoices/invoice/{world.finalized.pk}/pdf/"

    assert nobody.get(url).status_code == 403
    response = support.get(url)
    assert (response.status_code, response["Content-Type"]) == (200, "application/pdf")


def support_posts(world: World) -> list[tuple[str, dict, int]]:
    """Every kind of change the admin offers, as Support might try it, and the answer:
    403 from a form, 200 (the changelist, nothing run) for an action not offered to
    the user, a redirect with an error from the wallet operation."""
    customer = world.subscription.customer
    invoice_actions = [
        ("finalize", world.draft_invoice.pk),
        ("void", world.finalized.pk),
        ("mark_paid", world.finalized.pk),
        ("mark_uncollectible", world.finalized.pk),
        ("rerender_pdf", world.finalized.pk),
    ]
    version_actions = ["publish", "copy_as_draft", "archive"]
    return [
        ("/admin/customers/customer/add/", customer_form("umbrella"), 403),
        (
            f"/admin/customers/customer/{customer.pk}/change/",
            {**customer_form("acme"), "name": "Renamed"},
            403,
        ),
        (
            "/admin/billing/subscription/add/",
            {"customer": customer.pk, "plan": world.draft.plan_id, "start": "2026-11-15"},
            403,
        ),
        (
            f"/admin/billing/subscription/{world.subscription.pk}/change/",
            {"new_version": "", "effective": "period_end", "new_seats": "3"},
            403,
        ),
        (
            "/admin/billing/subscription/",
            {"action": "cancel_at_period_end", "_selected_action": [world.subscription.pk]},
            200,
        ),
        *[
            ("/admin/invoices/invoice/", {"action": name, "_selected_action": [pk]}, 200)
            for name, pk in invoice_actions
        ],
        *[
            (
                "/admin/plans/planversion/",
                {"action": name, "_selected_action": [world.draft.pk]},
                200,
            )
            for name in version_actions
        ],
        (f"/admin/plans/planversion/{world.draft.pk}/change/", {"base_fee": "1.00"}, 403),
        (f"/admin/plans/planversion/{world.draft.pk}/delete/", {"post": "yes"}, 403),
        (
            "/admin/plans/meter/add/",
            {"code": "x", "name": "X", "event_name": "x", "aggregation": "count"},
            403,
        ),
        ("/admin/plans/feature/add/", {"code": "sso", "name": "SSO", "kind": "boolean"}, 403),
        (
            f"/admin/wallets/wallet/{world.wallet.pk}/operation/",
            {"operation": "grant", "credits": "25", "priority": "10"},
            302,
        ),
        (
            f"/admin/wallets/wallet/{world.wallet.pk}/change/",
            {"low_balance_threshold": "5"},
            403,
        ),
        ("/admin/customers/apikey/add/", {"name": "support-key", "scopes": ["read"]}, 403),
        (
            "/admin/customers/apikey/",
            {"action": "revoke", "_selected_action": [world.api_key.pk]},
            403,
        ),
        ("/admin/billing/webhookendpoint/add/", {"url": "https://example.com/hook"}, 403),
    ]


def test_support_changes_nothing(login, world):
    support = login("Support")
    attempts = support_posts(world)
    before = state()

    answers = [(url, data, support.post(url, data).status_code) for url, data, _ in attempts]

    assert answers == attempts
    assert state() == before


def test_support_cannot_see_api_keys_or_webhook_endpoints(login, world):
    support = login("Support")

    for url in (
        "/admin/customers/apikey/",
        f"/admin/customers/apikey/{world.api_key.pk}/change/",
        "/admin/billing/webhookendpoint/",
        "/admin/wallets/wallet/revenue/",
    ):
        response = support.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert response["Location"] == "/admin/", url
    assert "/admin/customers/apikey/" not in support.get("/admin/").content.decode()


def test_a_change_refused_at_the_save_says_so_and_changes_nothing(login, world, monkeypatch):
    # given: a discount running, which the close ends between the form's check
    # and the save (simulated: ending it is refused at the save)
    finance = login("Finance")
    coupon_create(code="A", name="A", percent_off=D("10"), duration="forever")
    page = f"/admin/billing/subscription/{world.subscription.pk}/change/"
    inline = history_inline(world.subscription)
    assert finance.post(page, {**inline, "coupon": "A"}).status_code == 302
    before = state()

    def ended_meanwhile(**_):
        raise Conflict("subscription has no discount running")

    monkeypatch.setattr("billing.subscriptions.discounts.discount_end", ended_meanwhile)

    # when: ending it, and giving a deal in the same save
    response = finance.post(page, {**inline, "end_discount": "on", "deal_base_fee": "5.00"})

    # then: back to the page with the reason, nothing of the save kept
    assert response.status_code == 302
    assert response["Location"] == page
    shown = finance.get(page).content.decode()
    assert "Nothing was changed: subscription has no discount running" in shown
    assert state() == before


def test_operations_find_a_customer_for_a_new_subscription_by_typing(login, world):
    # The add form's customer field searches the customers (autocomplete) as the
    # customer list's search does: whoever may read the customers may search them.
    url = (
        "/admin/autocomplete/?app_label=billing&model_name=subscription"
        "&field_name=customer&term=glob"
    )
    found = login("Operations").get(url)
    assert found.status_code == 200
    assert [r["text"] for r in found.json()["results"]] == ["Globex Corporation (globex)"]
    nobody = User.objects.create_user(username="no-role", is_staff=True)
    client = Client()
    client.force_login(nobody)
    assert client.get(url).status_code == 403

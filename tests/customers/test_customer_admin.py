"""A customer's admin page: its subscriptions, the current period's usage priced
so far and projected, its wallets, and a Portal link that makes a fresh signed
link to the customer's portal."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from billing.invoicing.close import periods_close
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from tests.factories import (
    CustomerFactory,
    ai_assistant_plan,
    prompts_meter,
    runs_100_pack,
    subscribe,
)
from wallets.purchases import credit_pack_purchase, money_top_up

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def acme(db) -> Customer:
    """The portal tests' acme: AI Assistant (19.99, 200 prompts included, 0.05
    over) since October, 250 prompts in the first 10 days of November, a pack of
    100 credits and 20.00 of prepaid balance."""
    prompts_meter()
    plan = ai_assistant_plan()
    pack = runs_100_pack()
    acme = CustomerFactory(external_id="acme")
    subscribe(acme, plan, OCT_1)
    periods_close(as_of=NOV_1)
    events = [
        {
            "id": f"p{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": (NOV_1 + timedelta(days=i % 10, hours=1)).isoformat(),
        }
        for i in range(250)
    ]
    assert events_ingest(events=events, now=NOV_11).accepted == 250
    credit_pack_purchase(customer=acme, pack=pack, now=NOV_11)
    money_top_up(customer=acme, amount=D("20.00"), currency="USD", now=NOV_11)
    return acme


def page(client, customer):
    with time_machine.travel(NOV_11, tick=False):
        return client.get(f"/admin/customers/customer/{customer.pk}/change/")


def test_the_page_shows_subscriptions_usage_and_wallets(admin_client, acme):
    response = page(admin_client, acme)

    assert response.status_code == 200
    billing = response.context["billing"]
    subscription = acme.subscriptions.get()
    assert billing["subscriptions"] == [
        {
            "url": f"/admin/billing/subscription/{subscription.pk}/change/",
            "name": "Acme Inc — AI Assistant v1 (active)",
            "plan": "AI Assistant v1",
            "status": "Active",
            "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
        }
    ]
    usage = billing["usage"]
    assert usage["period"] == "1 Nov \u2013 30 Nov 2026 (UTC)"
    # The API's usage (billing.usage.summary), quantities grouped and amounts
    # with their currency.
    assert usage["lines"] == [
        {
            "meter": "Prompts",
            "model": "Soft cap",
            "quantity": "250",
            "included": "200",
            "billable": "50",
            "amount": "2.50 USD",
        }
    ]
    # 19.99 + 2.50 so far; 250 prompts in 10 of 30 days -> 750, 550 over at 0.05.
    assert (usage["base_fee"], usage["subtotal"], usage["projected_total"]) == (
        "19.99 USD",
        "22.49 USD",
        "47.49 USD",
    )
    assert (usage["invoiced"], usage["projected_discount"]) == (None, None)
    assert [(w["kind"], w["balance"]) for w in billing["wallets"]] == [
        ("Credits", "100 credits"),
        ("Money", "20.00 USD"),
    ]

    html = response.content.decode()
    for shown in [
        f'<a href="/admin/billing/subscription/{subscription.pk}/change/">'
        "Acme Inc — AI Assistant v1 (active)</a>",
        f'href="/admin/billing/subscription/add/?customer={acme.pk}" class="button" '
        'id="add-subscription">Add subscription</a>',
        "<td>Prompts</td><td>Soft cap</td>",
        '<td class="figure">250</td><td class="figure">200</td>',
        '<td class="figure">50</td><td class="figure">2.50 USD</td>',
        '<td class="figure" id="usage-subtotal">22.49 USD</td>',
        '<td class="figure" id="usage-projected">47.49 USD</td>',
        "100 credits",
        "20.00 USD",
        f'href="/admin/customers/customer/{acme.pk}/portal-link/"',
        'href="/admin/invoices/invoice/?customer=acme"',
    ]:
        assert shown in html, shown
    assert "0E-10" not in html and "0000000" not in html


def test_a_customer_without_a_subscription(admin_client, db):
    customer = CustomerFactory(external_id="new", name="New Co", currency="EUR")

    response = page(admin_client, customer)

    assert response.status_code == 200
    assert response.context["billing"]["subscriptions"] == []
    assert "usage" not in response.context["billing"]
    html = response.content.decode()
    assert "No subscription." in html and "No live subscription." in html and "No wallet." in html


def test_the_portal_link_opens_the_customers_portal(admin_client, client, acme):
    # when: ops asks for a link
    with time_machine.travel(NOV_11, tick=False):
        response = admin_client.get(f"/admin/customers/customer/{acme.pk}/portal-link/")

    # then: a fresh signed link, valid for an hour, that opens the portal without a login
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    url = response.context["portal_url"]
    assert url.startswith("http://testserver/portal/")
    assert response.context["expires_at"] == NOV_11 + timedelta(hours=1)
    assert f'value="{url}"' in response.content.decode()
    with time_machine.travel(NOV_11 + timedelta(minutes=5), tick=False):
        portal = client.get(url)
    assert portal.status_code == 200
    assert "Acme Inc" in portal.content.decode()
    with time_machine.travel(NOV_11 + timedelta(hours=1), tick=False):
        assert client.get(url).status_code == 410


def test_each_portal_link_is_new(admin_client, acme):
    url = f"/admin/customers/customer/{acme.pk}/portal-link/"
    with time_machine.travel(NOV_11, tick=False):
        first = admin_client.get(url).context["portal_url"]
    with time_machine.travel(NOV_11 + timedelta(minutes=1), tick=False):
        second = admin_client.get(url).context["portal_url"]
    assert first != second


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username=username, password="x", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="customers", codename=codename)
        )
    return user


def test_the_portal_link_needs_view_or_change_permission_on_customers(client, acme):
    url = f"/admin/customers/customer/{acme.pk}/portal-link/"

    client.force_login(staff("nobody"))
    assert client.get(url).status_code == 403

    client.force_login(staff("viewer", "view_customer"))
    assert client.get(url).status_code == 200

    client.force_login(staff("editor", "change_customer"))
    assert client.get(url).status_code == 200

    client.logout()
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_viewer_of_customers_only_sees_no_subscriptions_or_wallets(client, acme):
    client.force_login(staff("viewer", "view_customer"))

    response = page(client, acme)

    assert response.status_code == 200
    billing = response.context["billing"]
    assert "subscriptions" not in billing and "usage" not in billing and "wallets" not in billing
    html = response.content.decode()
    assert 'id="customer-usage"' not in html and 'id="customer-wallets"' not in html
    assert 'id="portal-link"' in html


@pytest.mark.parametrize("suffix", ["999999/portal-link/", "abc/portal-link/"])
def test_the_portal_link_of_an_unknown_customer_is_not_found(admin_client, suffix):
    assert admin_client.get(f"/admin/customers/customer/{suffix}").status_code == 404

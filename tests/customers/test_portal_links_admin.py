"""Stored portal links in the admin (issue 78): "Issue a portal link…" on a
customer's page makes one (manage or read-only, a holder, 1 to 90 days) and
shows its URL once; the customer's page lists its links with a button revoking
each that still works; only who may change customers issues or revokes."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from customers.models import PortalLink
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOV_11 = datetime(2026, 11, 11, 9, 30, tzinfo=UTC)


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme", name="Acme", locale="en")


def issue_url(customer) -> str:
    return f"/admin/customers/customer/{customer.pk}/portal-link/issue/"


def test_a_manage_link_is_issued_shown_once_listed_and_revoked(admin_client, client, acme):
    # when: support issues a manage link for Jane, for 14 days
    with time_machine.travel(NOV_11, tick=False):
        form = admin_client.get(issue_url(acme))
        issued = admin_client.post(
            issue_url(acme), {"manage": "on", "holder": "Jane (CTO)", "expires_in_days": "14"}
        )
    assert form.status_code == 200
    assert issued.status_code == 200
    url = issued.context["portal_url"]
    assert url.startswith("http://testserver/portal/")
    assert issued["Referrer-Policy"] == "no-referrer"
    link = PortalLink.objects.get()
    assert (link.holder, link.manage, link.created_by) == ("Jane (CTO)", True, "admin")
    assert link.expires_at == NOV_11 + timedelta(days=14)
    path = url.removeprefix("http://testserver")
    with time_machine.travel(NOV_11, tick=False):
        portal = client.get(path).content.decode()
    assert 'id="limits-form"' in portal

    # then: the customer's page lists it with a button revoking it (no URL)
    with time_machine.travel(NOV_11, tick=False):
        page = admin_client.get(f"/admin/customers/customer/{acme.pk}/change/").content.decode()
    assert "Jane (CTO)" in page
    revoke = f"/admin/customers/customer/{acme.pk}/portal-link/{link.pk}/revoke/"
    assert f'formaction="{revoke}"' in page
    assert path not in page
    assert 'id="portal-link-issue"' in page

    # when: revoked
    with time_machine.travel(NOV_11 + timedelta(days=1), tick=False):
        assert admin_client.get(revoke).status_code == 403  # a POST only
        response = admin_client.post(revoke)
        assert client.get(path).status_code == 410
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoked_at == NOV_11 + timedelta(days=1)
    with time_machine.travel(NOV_11 + timedelta(days=1), tick=False):
        page = admin_client.get(f"/admin/customers/customer/{acme.pk}/change/").content.decode()
    assert "Revoked" in page and f'formaction="{revoke}"' not in page


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"manage": "on", "holder": "", "expires_in_days": "7"}, "holder"),
        ({"holder": "J" * 101, "expires_in_days": "7"}, "holder"),
        ({"holder": "Jane", "expires_in_days": "0"}, "expires_in_days"),
        ({"holder": "Jane", "expires_in_days": "91"}, "expires_in_days"),
    ],
)
def test_bad_input_issues_nothing(admin_client, acme, data, field):
    response = admin_client.post(issue_url(acme), data)
    assert response.status_code == 200
    assert response.context["portal_url"] is None
    assert field in response.context["form"].errors
    assert not PortalLink.objects.exists()


def test_only_who_may_change_customers_issues_or_revokes(client, acme):
    link = PortalLink.objects.create(
        customer=acme, holder="J", manage=True, created_at=NOV_11, expires_at=NOV_11
    )
    viewer = User.objects.create_user(username="viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="customers", codename="view_customer")
    )
    client.force_login(viewer)
    assert client.get(issue_url(acme)).status_code == 403
    assert client.post(issue_url(acme), {"expires_in_days": "7"}).status_code == 403
    revoke = f"/admin/customers/customer/{acme.pk}/portal-link/{link.pk}/revoke/"
    assert client.post(revoke).status_code == 403
    link.refresh_from_db()
    assert link.revoked_at is None and PortalLink.objects.count() == 1

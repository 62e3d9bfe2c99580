"""Stored portal links through the API (API.md "Customer limits"): a link made
with `manage` and its holder, listed without its URL, revoked with DELETE (its
page then says the link is no longer valid); bad input a 400 naming the field
with nothing stored; the admin scope only. A portal session's stateless link
keeps working as before."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from customers.models import PortalLink
from tests.factories import CustomerFactory, api_client

pytestmark = pytest.mark.django_db

NOV_11 = datetime(2026, 11, 11, 9, 30, tzinfo=UTC)
LINKS = "/api/v1/customers/acme/portal-link"


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme", name="Acme", locale="en")


def test_a_manage_link_is_made_listed_without_its_url_and_revoked(api, client, acme):
    # when
    with time_machine.travel(NOV_11, tick=False):
        made = api.post(
            LINKS, {"manage": True, "holder": "Jane (CTO)", "expires_in_days": 30}, format="json"
        )
    # then
    assert made.status_code == 201
    body = made.json()
    link = PortalLink.objects.get()
    assert body == {
        "id": link.pk,
        "url": body["url"],
        "manage": True,
        "holder": "Jane (CTO)",
        "expires_at": "2026-12-11T09:30:00Z",
        "created_at": "2026-11-11T09:30:00Z",
    }
    assert body["url"].startswith("http://testserver/portal/")
    assert (link.customer, link.manage, link.created_by) == (acme, True, "API key tests")
    path = body["url"].removeprefix("http://testserver")
    with time_machine.travel(NOV_11 + timedelta(days=1), tick=False):
        assert client.get(path).status_code == 200

    listed = api.get(LINKS)
    assert listed.status_code == 200
    assert listed.json() == {
        "results": [
            {
                "id": link.pk,
                "manage": True,
                "holder": "Jane (CTO)",
                "created_at": "2026-11-11T09:30:00Z",
                "expires_at": "2026-12-11T09:30:00Z",
                "revoked_at": None,
                "created_by": "API key tests",
            }
        ]
    }
    assert "url" not in listed.content.decode() and path not in listed.content.decode()

    # when: revoked
    with time_machine.travel(NOV_11 + timedelta(days=2), tick=False):
        assert api.delete(f"{LINKS}/{link.pk}").status_code == 204
        page = client.get(path)
    # then: the link is refused as no longer valid
    assert page.status_code == 410
    assert "This link is no longer valid" in page.content.decode()
    assert api.get(LINKS).json()["results"][0]["revoked_at"] == "2026-11-13T09:30:00Z"
    # revoking again changes nothing
    assert api.delete(f"{LINKS}/{link.pk}").status_code == 204
    link.refresh_from_db()
    assert link.revoked_at == NOV_11 + timedelta(days=2)


def test_a_read_only_link_lasts_seven_days_by_default_and_expires(api, client, acme):
    with time_machine.travel(NOV_11, tick=False):
        body = api.post(LINKS, {}, format="json").json()
    assert (body["manage"], body["holder"], body["expires_at"]) == (
        False,
        "",
        "2026-11-18T09:30:00Z",
    )
    path = body["url"].removeprefix("http://testserver")
    with time_machine.travel(NOV_11 + timedelta(days=7), tick=False):
        assert client.get(path).status_code == 410


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"manage": True}, "holder"),
        ({"manage": True, "holder": "  "}, "holder"),
        ({"manage": True, "holder": "J" * 101}, "holder"),
        ({"holder": "Jane", "expires_in_days": 0}, "expires_in_days"),
        ({"holder": "Jane", "expires_in_days": 91}, "expires_in_days"),
        ({"holder": "Jane", "expires_in_days": "x"}, "expires_in_days"),
        ({"holder": "Jane", "expires_in_days": 1.5}, "expires_in_days"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_stored(api, acme, body, field):
    response = api.post(LINKS, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not PortalLink.objects.exists()


def test_an_unknown_customer_or_link_is_a_404(api, acme):
    other = CustomerFactory(external_id="beta")
    theirs = PortalLink.objects.create(
        customer=other, holder="B", manage=True, created_at=NOV_11, expires_at=NOV_11
    )
    assert api.post("/api/v1/customers/nobody/portal-link", {}, format="json").status_code == 404
    assert api.get("/api/v1/customers/nobody/portal-link").status_code == 404
    # another customer's link cannot be revoked through this one
    assert api.delete(f"{LINKS}/{theirs.pk}").status_code == 404
    assert api.delete(f"{LINKS}/999999").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert PortalLink.objects.count() == 1


@pytest.mark.parametrize("scope", ["read", "events:write", "finance:read"])
def test_only_the_admin_scope_makes_lists_and_revokes_links(acme, scope):
    link = PortalLink.objects.create(
        customer=acme, holder="J", manage=True, created_at=NOV_11, expires_at=NOV_11
    )
    client = api_client(scope)
    assert client.post(LINKS, {"holder": "x"}, format="json").status_code == 403
    assert client.get(LINKS).status_code == 403
    assert client.delete(f"{LINKS}/{link.pk}").status_code == 403
    link.refresh_from_db()
    assert link.revoked_at is None and PortalLink.objects.count() == 1
    admin = api_client("admin")
    assert admin.get(LINKS).status_code == 200

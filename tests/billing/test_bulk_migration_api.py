"""Bulk migration through the API: a preview whose amounts the change then
invoices (exact), its confirmation (idempotent on the token, refused when the
figures moved on), the migration's progress; selection by ids or by plan; bad
input refused with nothing written."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from billing.models import PlanMigration, Subscription
from customers.api_keys import api_key_create
from invoices.models import Invoice
from tests.billing.migration_support import (
    billing_state,
    line_sums,
    migration_catalog,
    prompts,
    subscriber,
    three_subscribed,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    return migration_catalog()


@pytest.fixture
def three(catalog):
    return three_subscribed()


NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
PREVIEW = "/api/v1/plan-migrations/preview"
CONFIRM = "/api/v1/plan-migrations"


def to_pro(subscriptions, **fields) -> dict:
    return {
        "subscriptions": [s.pk for s in subscriptions],
        "plan": "pro",
        "effective": "immediate",
        "at": "2026-11-16T00:00:00Z",
    } | fields


def test_a_preview_answers_each_subscriptions_amounts_and_writes_nothing(api, three):
    acme, beta, gamma = three
    before = billing_state()

    response = api.post(PREVIEW, to_pro(three), format="json")

    # the same figures as the admin's preview (tests.billing.test_bulk_migration)
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("plan", "version", "effective", "at", "currency")} == {
        "plan": "pro",
        "version": 1,
        "effective": "immediate",
        "at": "2026-11-16T00:00:00Z",
        "currency": "USD",
    }
    assert (body["moving"], body["skipped"]) == (3, 0)
    assert body["rows"] == [
        {
            "subscription": acme.pk,
            "customer": "acme",
            "skipped": None,
            "drops_deal": False,
            "features_gained": [],
            "features_lost": [],
            "features_changed": [],
            "usage": "2.50",
            "credit": "-10.00",
            "charge": "25.00",
            "total": "17.50",
        },
        {
            "subscription": beta.pk,
            "customer": "beta",
            "skipped": None,
            "drops_deal": False,
            "features_gained": [],
            "features_lost": [],
            "features_changed": [],
            "usage": "0.00",
            "credit": "-10.00",
            "charge": "25.00",
            "total": "15.00",
        },
        {
            "subscription": gamma.pk,
            "customer": "gamma",
            "skipped": None,
            "drops_deal": False,
            "features_gained": [],
            "features_lost": [],
            "features_changed": [],
            "usage": "1.50",
            "credit": "-13.33",
            "charge": "33.33",
            "total": "21.50",
        },
    ]
    assert body["totals"] == {
        "usage": "4.00",
        "credit": "-33.33",
        "charge": "83.33",
        "total": "54.00",
    }
    assert len(body["digest"]) == 64
    assert billing_state() == before
    assert not PlanMigration.objects.exists()


def test_a_confirmed_preview_invoices_exactly_its_figures_once(
    api, three, django_capture_on_commit_callbacks
):
    previewed = api.post(PREVIEW, to_pro(three), format="json").json()
    token = str(uuid.uuid4())
    confirmation = to_pro(three, token=token, digest=previewed["digest"])

    # when: confirmed (the task runs eagerly once the confirmation commits)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(CONFIRM, confirmation, format="json")

    # then: 202 with the migration, sent to a worker; once it ran, every item is
    # done with its invoice
    assert response.status_code == 202, response.content
    migration = PlanMigration.objects.get()
    assert {k: response.json()[k] for k in ("id", "status", "total", "done")} == {
        "id": migration.pk,
        "status": "pending",
        "total": 3,
        "done": 0,
    }
    body = api.get(f"{CONFIRM}/{migration.pk}").json()
    assert (body["status"], body["total"], body["done"]) == ("done", 3, 3)
    assert [item["status"] for item in body["items"]] == ["done"] * 3
    assert [item["previewed_total"] for item in body["items"]] == ["17.50", "15.00", "21.50"]
    for row, item in zip(previewed["rows"], body["items"], strict=True):
        invoice = Invoice.objects.get(pk=item["invoice"])
        assert line_sums(invoice) == {k: D(row[k]) for k in ("usage", "credit", "charge", "total")}
    assert Subscription.objects.filter(version__plan__code="pro").count() == 3

    # the same confirmation again: the same migration, nothing more
    state = billing_state()
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post(CONFIRM, confirmation, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == migration.pk
    assert billing_state() == state

    # and its progress reads back
    read = api.get(f"{CONFIRM}/{migration.pk}")
    assert read.status_code == 200
    assert read.json() == body


def test_figures_that_moved_on_since_the_preview_are_refused(api, three):
    previewed = api.post(PREVIEW, to_pro(three), format="json").json()
    prompts("beta", 300)  # beta now has 100 prompts over: its usage line changes
    before = billing_state()

    response = api.post(
        CONFIRM, to_pro(three, token=str(uuid.uuid4()), digest=previewed["digest"]), format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"
    assert billing_state() == before
    assert not PlanMigration.objects.exists()


def test_every_live_subscription_of_a_plan_can_be_selected(api, three, catalog):
    euro = subscriber("euro_co", plan="euro", currency="EUR")
    three[1].status = Subscription.CANCELED
    three[1].save(update_fields=["status"])

    response = api.post(
        PREVIEW,
        {"from_plan": "ai_assistant", "from_version": 1, "plan": "pro", "effective": "period_end"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["customer"] for row in body["rows"]] == ["acme", "gamma"]
    assert [row["next_fees"] for row in body["rows"]] == ["49.99", "49.99"]
    assert body["at"] is None
    assert body["totals"] == {"next_fees": "99.98", "total": "99.98"}
    assert euro.status == Subscription.ACTIVE  # another plan: not selected


def test_a_subscription_that_cannot_move_is_listed_with_the_reason(api, three, catalog):
    euro = subscriber("euro_co", plan="euro", currency="EUR")

    body = api.post(PREVIEW, to_pro([three[0], euro]), format="json").json()

    assert (body["moving"], body["skipped"]) == (1, 1)
    skipped = body["rows"][1]
    assert skipped["subscription"] == euro.pk
    assert "EUR" in skipped["skipped"] and skipped["total"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subscriptions": []}, "subscriptions"),
        ({"subscriptions": ["x"]}, "subscriptions"),
        ({"subscriptions": [-1]}, "subscriptions"),
        ({"subscriptions": [999_999]}, "subscriptions"),
        ({"from_plan": "ai_assistant"}, "subscriptions"),  # both given
        ({"plan": "nope"}, "plan"),
        ({"version": 7}, "version"),
        ({"effective": "someday"}, "effective"),
        ({"at": "2026-11-16 00:00"}, "at"),
        ({"subscriptions": list(range(1, 10_002))}, "subscriptions"),
    ],
)
def test_bad_input_is_refused_naming_the_field(api, three, fields, field):
    before = billing_state()

    response = api.post(PREVIEW, to_pro(three) | fields, format="json")

    assert response.status_code == 400, response.content
    named = response.json()["error"]["fields"]
    assert any(name.split(".")[0] == field for name in named), named
    assert billing_state() == before


def test_a_confirmation_needs_its_token_and_digest(api, three):
    response = api.post(CONFIRM, to_pro(three), format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"token", "digest"}
    assert not PlanMigration.objects.exists()


def test_migrating_needs_the_admin_scope(three):
    _, secret = api_key_create(name="reader", scopes=["read", "events:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.post(PREVIEW, to_pro(three), format="json").status_code == 403
    assert (
        client.post(CONFIRM, to_pro(three, token=str(uuid.uuid4()), digest="x"), format="json")
    ).status_code == 403
    assert client.get(f"{CONFIRM}/1").status_code == 404  # read may read; there is none


def test_an_unknown_migration_is_404(api, db):
    assert api.get(f"{CONFIRM}/12345").status_code == 404


def test_a_deal_set_since_the_preview_is_refused(api, three):
    # a deal from beta's next period changes no amount of this period's invoice,
    # but the move would drop it: the preview did not say so
    previewed = api.post(PREVIEW, to_pro(three), format="json").json()
    beta = three[1]
    deal = api.patch(
        f"/api/v1/subscriptions/{beta.pk}", {"overrides": {"base_fee": "79.00"}}, format="json"
    )
    assert deal.status_code == 200
    before = billing_state()

    response = api.post(
        CONFIRM, to_pro(three, token=str(uuid.uuid4()), digest=previewed["digest"]), format="json"
    )

    assert response.status_code == 409
    assert billing_state() == before
    assert not PlanMigration.objects.exists()

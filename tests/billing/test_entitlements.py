"""Entitlements (issue 18): features a plan version grants, overridden by a deal,
changed by plan changes, frozen once published; `check` with a feature and
`GET /entitlements` answering alike; the webhook subscription.entitlements_changed."""

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.models import ENTITLEMENTS_CHANGED, WebhookDelivery, WebhookEndpoint
from customers.models import Customer
from customers.portal import portal_session_create
from plans.features import feature_create
from plans.models import Plan, PlanVersion
from plans.services import plan_version_copy_as_draft, plan_version_publish
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    api_client,
    balance,
    credits,
    published_version,
)
from tests.factories import subscribe as subscribe_factory
from wallets.ledger import credits_grant

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, tzinfo=UTC)
FEATURE_CODES = ("sso", "max_projects", "models", "audit_log", "no_such_feature")


@pytest.fixture
def api():
    return api_client()


def plan_body(code: str, features: list[dict], *, cap: int) -> dict:
    return {
        "code": code,
        "name": code.capitalize(),
        "currency": "USD",
        "base_fee": "10.00",
        "publish": True,
        "charges": [{"meter": "prompts", "model": "hard_cap", "included_units": str(cap)}],
        "features": features,
    }


@pytest.fixture
def catalog(api):
    """Starter: 3 projects, no SSO, 100 prompts. Pro: SSO, 10 projects, two
    models, 1,000 prompts. audit_log exists but no plan grants it."""
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    feature_create(code="max_projects", name="Projects", kind="config")
    feature_create(code="models", name="Models", kind="config")
    feature_create(code="audit_log", name="Audit log", kind="boolean")
    for body in (
        plan_body("starter", [{"feature": "max_projects", "value": 3}], cap=100),
        plan_body(
            "pro",
            [
                {"feature": "sso", "value": True},
                {"feature": "max_projects", "value": 10},
                {"feature": "models", "value": ["gpt-4o", "o1"]},
            ],
            cap=1000,
        ),
    ):
        response = api.post("/api/v1/plans", body, format="json")
        assert response.status_code == 201, response.content


def subscribe(api, external_id: str, plan: str, overrides: dict | None = None) -> dict:
    CustomerFactory(external_id=external_id)
    body = {"customer": external_id, "plan": plan, "start": NOV_1.isoformat()}
    if overrides is not None:
        body["overrides"] = overrides
    response = api.post("/api/v1/subscriptions", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def entitlements(api, external_id: str) -> dict:
    response = api.get(f"/api/v1/customers/{external_id}/entitlements")
    assert response.status_code == 200, response.content
    return response.json()


def feature_check(api, external_id: str, code: str) -> dict:
    response = api.post(f"/api/v1/customers/{external_id}/check", {"feature": code}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def assert_check_agrees(api, external_id: str) -> dict:
    """Every feature's check answers as the entitlements read: allowed exactly
    when granted with a value other than false, with that value."""
    found = entitlements(api, external_id)
    for code in FEATURE_CODES:
        answer = feature_check(api, external_id, code)
        granted = code in found["features"] and found["features"][code] is not False
        assert answer["allowed"] is granted, (code, answer, found)
        assert answer["value"] == found["features"].get(code), code
        if not granted:
            expected = "no_subscription" if found["subscription"] is None else "feature_not_in_plan"
            assert answer["reason"] == expected
    return found


def test_a_version_grants_features_and_the_api_shows_them(api, catalog):
    version = api.get("/api/v1/plans/pro").json()["versions"][0]
    assert version["features"] == [
        {"feature": "max_projects", "value": 10},
        {"feature": "models", "value": ["gpt-4o", "o1"]},
        {"feature": "sso", "value": True},
    ]
    listed = api.get("/api/v1/features").json()["results"]
    assert sorted((f["code"], f["kind"]) for f in listed) == [
        ("audit_log", "boolean"),
        ("max_projects", "config"),
        ("models", "config"),
        ("sso", "boolean"),
    ]


@pytest.mark.parametrize(
    ("features", "path", "message"),
    [
        ([{"feature": "nope", "value": True}], "features.0.feature", "there is no feature 'nope'"),
        ([{"feature": "sso", "value": 1}], "features.0.value", "takes true or false"),
        ([{"feature": "max_projects", "value": True}], "features.0.value", "not true/false"),
        ([{"feature": "max_projects", "value": {"a": 1}}], "features.0.value", "a number"),
        ([{"feature": "models", "value": ["ok", 3]}], "features.0.value", "list of texts"),
        ([{"feature": "models", "value": ""}], "features.0.value", "a text of 1 to 255"),
        (
            [{"feature": "sso", "value": True}, {"feature": "sso", "value": False}],
            "features.1.feature",
            "granted twice",
        ),
        ([{"feature": "sso"}], "features.0.value", "required"),
        ([{"feature": "sso", "value": True, "extra": 1}], "features.0.extra", "unknown field"),
    ],
)
def test_bad_grants_are_400_and_change_nothing(api, catalog, features, path, message):
    before = PlanVersion.objects.count()

    response = api.post(
        "/api/v1/plans/pro/versions", {"currency": "USD", "features": features}, format="json"
    )

    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert path in fields, fields
    assert any(message in text for text in fields[path]), fields[path]
    assert PlanVersion.objects.count() == before


def test_features_are_frozen_once_published_and_a_new_draft_copies_them(api, catalog):
    # when: a published version's features are edited
    refused = api.put(
        "/api/v1/plans/pro/versions/1",
        {"currency": "USD", "features": [{"feature": "sso", "value": False}]},
        format="json",
    )

    # then
    assert refused.status_code == 409
    assert api.get("/api/v1/plans/pro/versions/1").json()["features"][2] == {
        "feature": "sso",
        "value": True,
    }

    # when: a new draft copies them, and its own change stays its own
    draft = plan_version_copy_as_draft(version=PlanVersion.objects.get(plan__code="pro"))
    changed = api.put(
        f"/api/v1/plans/pro/versions/{draft.number}",
        {"currency": "USD", "base_fee": "10.00", "features": [{"feature": "sso", "value": True}]},
        format="json",
    )

    # then
    assert draft.features.count() == 3 or changed.status_code == 200
    assert changed.status_code == 200, changed.content
    assert changed.json()["features"] == [{"feature": "sso", "value": True}]
    assert len(api.get("/api/v1/plans/pro/versions/1").json()["features"]) == 3


def test_a_draft_copy_keeps_every_grant(catalog):
    draft = plan_version_copy_as_draft(version=PlanVersion.objects.get(plan__code="pro"))

    assert sorted(draft.features.values_list("feature__code", "value")) == [
        ("max_projects", 10),
        ("models", ["gpt-4o", "o1"]),
        ("sso", True),
    ]


def test_a_features_kind_cannot_change_once_granted(api, catalog):
    refused = api.patch("/api/v1/features/sso", {"kind": "config"}, format="json")
    renamed = api.patch("/api/v1/features/sso", {"name": "SAML SSO"}, format="json")
    free = api.patch("/api/v1/features/audit_log", {"kind": "config"}, format="json")

    assert refused.status_code == 409
    assert (renamed.status_code, renamed.json()["name"]) == (200, "SAML SSO")
    assert (free.status_code, free.json()["kind"]) == (200, "config")
    assert api.patch("/api/v1/features/sso", {"code": "x"}, format="json").status_code == 400


def test_check_and_entitlements_agree_for_every_customer(api, catalog):
    # given: no subscription, starter, pro, and pro with a deal that revokes
    # SSO, raises the projects limit and grants the audit log
    CustomerFactory(external_id="nobody")
    subscribe(api, "small", "starter")
    subscribe(api, "big", "pro")
    subscribe(
        api,
        "deal",
        "pro",
        overrides={
            "features": [
                {"feature": "sso", "value": None},
                {"feature": "max_projects", "value": 50},
                {"feature": "audit_log", "value": True},
            ]
        },
    )

    # when / then
    with time_machine.travel(NOV_10, tick=False):
        assert assert_check_agrees(api, "nobody") == {
            "subscription": None,
            "customer": "nobody",
            "features": {},
            "meters": {},
            "period_start": None,
            "period_end": None,
            "standing": "good",
        }
        small = assert_check_agrees(api, "small")
        big = assert_check_agrees(api, "big")
        deal = assert_check_agrees(api, "deal")

    assert small["features"] == {"max_projects": 3}
    assert small["meters"] == {
        "prompts": {
            "model": "hard_cap",
            "included": "100",
            "used": "0",
            "remaining": "100",
            "balance": None,
            "allowed": True,
        }
    }
    assert big["features"] == {"max_projects": 10, "models": ["gpt-4o", "o1"], "sso": True}
    assert deal["features"] == {"audit_log": True, "max_projects": 50, "models": ["gpt-4o", "o1"]}
    assert feature_check(api, "small", "no_such_feature")["message"] == (
        "there is no feature 'no_such_feature'"
    )


def test_a_metered_feature_reads_as_check_counts_it(api, catalog):
    # given: 100 of starter's 100 prompts used
    subscribe(api, "small", "starter")
    events = [
        {
            "id": f"p{i}",
            "customer": "small",
            "event_name": "prompt",
            "timestamp": "2026-11-05T00:00:00Z",
        }
        for i in range(100)
    ]
    with time_machine.travel(NOV_10, tick=False):
        assert api.post("/api/v1/events", {"events": events}, format="json").status_code == 202

        # when
        meter = entitlements(api, "small")["meters"]["prompts"]
        check = api.post(
            "/api/v1/customers/small/check", {"meter": "prompts", "quantity": "1"}, format="json"
        ).json()

    # then: the same counters, and one more unit refused by both
    assert (meter["used"], meter["included"], meter["remaining"]) == ("100", "100", "0")
    assert (check["used"], check["included"], check["remaining"]) == ("100", "100", "0")
    assert (meter["allowed"], check["allowed"]) == (False, False)


def test_bad_check_bodies_are_400(api, catalog):
    subscribe(api, "small", "starter")
    for body in (
        {},
        {"meter": "prompts", "feature": "sso"},
        {"feature": "sso", "quantity": "2"},
        {"feature": 5},
    ):
        response = api.post("/api/v1/customers/small/check", body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert api.get("/api/v1/customers/nobody/entitlements").status_code == 404


@pytest.fixture
def endpoint(db):
    return WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/hooks", event_types=[ENTITLEMENTS_CHANGED]
    )


def announcements() -> list[dict]:
    return [
        json.loads(body)["data"]
        for body in WebhookDelivery.objects.filter(event_type=ENTITLEMENTS_CHANGED)
        .order_by("id")
        .values_list("body", flat=True)
    ]


def test_a_plan_change_announces_the_change_once(api, catalog, endpoint):
    # given
    body = subscribe(api, "small", "starter")
    url = f"/api/v1/subscriptions/{body['id']}"

    # when: a seat change (nothing to announce), then an immediate move to pro
    with time_machine.travel(NOV_10, tick=False):
        api.patch(url, {"seats": 2}, format="json")
        moved = api.post(
            f"{url}/change-plan", {"plan": "pro", "effective": "immediate"}, format="json"
        )

    # then
    assert moved.status_code == 200, moved.content
    assert announcements() == [
        {
            "subscription": body["id"],
            "reason": "plan_change",
            "before": {"max_projects": 3},
            "after": {"max_projects": 10, "models": ["gpt-4o", "o1"], "sso": True},
            "gained": ["models", "sso"],
            "lost": [],
            "changed": ["max_projects"],
        }
    ]
    with time_machine.travel(NOV_20, tick=False):
        assert entitlements(api, "small")["features"]["sso"] is True


def test_a_deal_and_a_scheduled_change_take_effect_at_the_period_start(api, catalog, endpoint):
    # given: big on pro; the deal changes from the next period, then the plan too
    body = subscribe(api, "big", "pro")
    url = f"/api/v1/subscriptions/{body['id']}"
    with time_machine.travel(NOV_20, tick=False):
        patched = api.patch(
            url,
            {"overrides": {"features": [{"feature": "audit_log", "value": True}]}},
            format="json",
        )
        assert patched.status_code == 200, patched.content
        # then: nothing changes before the period ends
        assert "audit_log" not in entitlements(api, "big")["features"]
    assert announcements() == []

    # when: the close starts December on the deal
    periods_close(as_of=DEC_1)

    # then: announced once, even if the close runs again
    periods_close(as_of=DEC_1)
    assert [(a["reason"], a["gained"], a["lost"]) for a in announcements()] == [
        ("period_start", ["audit_log"], []),
    ]
    with time_machine.travel(DEC_5, tick=False):
        assert entitlements(api, "big")["features"]["audit_log"] is True


def test_an_immediate_cancel_announces_the_end(api, catalog, endpoint):
    body = subscribe(api, "small", "starter")

    with time_machine.travel(NOV_10, tick=False):
        api.post(
            f"/api/v1/subscriptions/{body['id']}/cancel", {"effective": "immediate"}, format="json"
        )

    assert [(a["reason"], a["before"], a["after"]) for a in announcements()] == [
        ("ended", {"max_projects": 3}, {})
    ]
    assert Plan.objects.count() == 2


def test_a_migration_preview_lists_features_gained_lost_and_changed(api, catalog, admin_client):
    # given: small on starter, and a deal on pro that grants the audit log
    small = subscribe(api, "small", "starter")
    deal = subscribe(
        api, "deal", "pro", overrides={"features": [{"feature": "audit_log", "value": True}]}
    )

    # when: both are previewed onto pro v2, a copy of v1 (the deal's move drops
    # its audit log)
    v2 = plan_version_copy_as_draft(version=PlanVersion.objects.get(plan__code="pro"))
    plan_version_publish(version=v2)
    with time_machine.travel(NOV_10, tick=False):
        preview = api.post(
            "/api/v1/plan-migrations/preview",
            {
                "subscriptions": [small["id"], deal["id"]],
                "plan": "pro",
                "version": 2,
                "effective": "period_end",
            },
            format="json",
        )
        page = admin_client.post(
            "/admin/billing/subscription/migrate/",
            {
                "subscriptions": f"{small['id']},{deal['id']}",
                "to_version": v2.pk,
                "effective": "period_end",
            },
        )

    # then
    assert preview.status_code == 200, preview.content
    rows = {
        row["customer"]: (row["features_gained"], row["features_lost"], row["features_changed"])
        for row in preview.json()["rows"]
    }
    assert rows == {
        "small": (["models", "sso"], [], ["max_projects"]),
        "deal": ([], ["audit_log"], []),
    }
    html = page.content.decode()
    assert "Features: gains Models, Single sign-on; changes Projects" in html
    assert "Features: loses Audit log" in html

    # when: ops continues to the confirmation page
    hidden = {field.name: field.value() for field in page.context["confirm"]}
    with time_machine.travel(NOV_10, tick=False):
        confirmation = admin_client.post("/admin/billing/subscription/migrate/", hidden)

    # then: it sums the features gained and lost, and the deal dropped, in words
    assert confirmation.context["confirmation"].consequences == [
        "2 customers move from Starter v1 (1) and Pro v1 (1) to Pro v2 at the end of their "
        "current period (no invoice now); the next period's fixed fees on Pro v2 come to "
        "20.00 USD in all.",
        "1 customer's deal is dropped: from the move it pays Pro v2's prices.",
        "Features gained: Models (1 customer) and Single sign-on (1 customer).",
        "Features lost: Audit log (1 customer).",
        "Features whose value changes: Projects (1 customer).",
        "To move them back, run another migration.",
    ]


def test_the_portal_shows_the_plans_features(api, catalog, client):
    subscribe(
        api,
        "deal",
        "pro",
        overrides={
            "features": [
                {"feature": "sso", "value": None},
                {"feature": "max_projects", "value": 50},
            ]
        },
    )
    customer = Customer.objects.get(external_id="deal")

    with time_machine.travel(NOV_10, tick=False):
        token = portal_session_create(customer=customer, now=NOV_10).token
        page = client.get(f"/portal/{token}/")

    assert page.context["features_granted"] == [
        {"name": "Models", "value": "gpt-4o, o1"},
        {"name": "Projects", "value": "50"},
    ]
    html = page.content.decode()
    assert "Your plan includes" in html and "Single sign-on" not in html


def test_wallet_drawn_meters_read_as_check_reads_them(db):
    # given: two credits charges on one credit wallet of 100 credits, and the
    # customer with no money balance for a balance charge
    for code in ("runs", "searches", "sms"):
        MeterFactory(code=code, event_name=code)
    published_version(
        "agents", charges=(credits("runs", 10), credits("searches", 4), balance("sms", "0.05"))
    )
    customer = CustomerFactory(external_id="agent")
    subscribe_factory(customer, "agents")
    credits_grant(customer=customer, credits=D(100), now=NOV_1)
    api = api_client()

    # when
    with time_machine.travel(NOV_10, tick=False):
        found = entitlements(api, "agent")["meters"]
        checks = {
            code: api.post(
                "/api/v1/customers/agent/check", {"meter": code, "quantity": "1"}, format="json"
            ).json()
            for code in found
        }

    # then: the same remaining and balance as check answers
    assert {code: (m["remaining"], m["balance"]) for code, m in found.items()} == {
        "runs": ("10", "100"),
        "searches": ("25", "100"),
        "sms": ("0", "0.00"),
    }
    for code, meter in found.items():
        assert (meter["remaining"], meter["balance"]) == (
            checks[code]["remaining"],
            checks[code]["balance"],
        ), code


def test_two_plan_changes_in_one_second_are_announced_twice(api, catalog, endpoint):
    body = subscribe(api, "small", "starter")
    url = f"/api/v1/subscriptions/{body['id']}/change-plan"

    for plan, at in (("pro", "2026-11-10T00:00:00.000Z"), ("starter", "2026-11-10T00:00:00.500Z")):
        with time_machine.travel(NOV_10, tick=False):
            response = api.post(
                url, {"plan": plan, "effective": "immediate", "at": at}, format="json"
            )
            assert response.status_code == 200, response.content

    assert [(a["reason"], a["after"].get("sso")) for a in announcements()] == [
        ("plan_change", True),
        ("plan_change", None),
    ]


def test_a_fractional_config_value_is_taken_through_the_api(api, catalog):
    response = api.post(
        "/api/v1/plans/pro/versions",
        {"currency": "USD", "features": [{"feature": "max_projects", "value": 2.5}]},
        format="json",
    )
    deal = subscribe(
        api, "frac", "pro", overrides={"features": [{"feature": "max_projects", "value": 7.5}]}
    )

    assert response.status_code == 201, response.content
    assert response.json()["features"] == [{"feature": "max_projects", "value": 2.5}]
    assert deal["overrides"] == {"features": [{"feature": "max_projects", "value": 7.5}]}
    with time_machine.travel(NOV_10, tick=False):
        assert feature_check(api, "frac", "max_projects")["value"] == 7.5


def test_a_features_kind_is_fixed_while_a_deal_names_it(api, catalog):
    subscribe(
        api, "deal", "starter", overrides={"features": [{"feature": "audit_log", "value": True}]}
    )

    refused = api.patch("/api/v1/features/audit_log", {"kind": "config"}, format="json")

    assert refused.status_code == 409, refused.content
    assert api.get("/api/v1/features/audit_log").json()["kind"] == "boolean"


def test_after_a_period_that_ended_the_subscription_nothing_is_granted(api, catalog):
    # given: small ends with November, and the close has not run yet on 1 Dec
    body = subscribe(api, "small", "starter")
    with time_machine.travel(NOV_20, tick=False):
        api.post(
            f"/api/v1/subscriptions/{body['id']}/cancel", {"effective": "period_end"}, format="json"
        )

    # when / then
    with time_machine.travel(datetime(2026, 12, 1, 1, tzinfo=UTC), tick=False):
        assert feature_check(api, "small", "max_projects")["reason"] == "no_subscription"
        assert assert_check_agrees(api, "small")["features"] == {}


def test_a_feature_check_answers_in_the_meter_checks_shape(api, catalog):
    subscribe(api, "big", "pro")

    with time_machine.travel(NOV_10, tick=False):
        answer = feature_check(api, "big", "max_projects")

    assert answer == {
        "allowed": True,
        "reason": "ok",
        "message": "allowed",
        "value": 10,
        "model": None,
        "used": None,
        "included": None,
        "remaining": None,
        "balance": None,
        "period_start": None,
        "period_end": None,
    }

"""The coupon catalog: /api/v1/coupons and its admin pages. Terms are validated
as the catalog is (400 with field paths, nothing written, never a 500); a
coupon's terms never change, it is archived instead."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.subscriptions.discounts import discount_redeem
from customers.portal import portal_session_create
from plans.coupons import coupon_create
from plans.models import Coupon
from tests.factories import CustomerFactory, api_client, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


PERCENT = {"code": "LAUNCH20", "name": "Launch 20%", "percent_off": "20", "duration": "once"}


def test_create_a_percent_coupon_and_read_it(api):
    response = api.post("/api/v1/coupons", PERCENT, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "code": "LAUNCH20",
        "name": "Launch 20%",
        "percent_off": "20.00",
        "amount_off": None,
        "currency": None,
        "duration": "once",
        "duration_periods": None,
        "max_redemptions": None,
        "redeem_by": None,
        "active": True,
        "times_redeemed": 0,
    }
    assert api.get("/api/v1/coupons/LAUNCH20").json() == body
    assert [c["code"] for c in api.get("/api/v1/coupons").json()["results"]] == ["LAUNCH20"]


def test_create_an_amount_off_coupon_repeating_with_a_limit(api):
    response = api.post(
        "/api/v1/coupons",
        {
            "code": "JPY500",
            "name": "500 yen",
            "amount_off": "500",
            "currency": "JPY",
            "duration": "repeating",
            "duration_periods": 3,
            "max_redemptions": 10,
            "redeem_by": "2027-01-01T00:00:00+01:00",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount_off"], body["currency"], body["duration_periods"]) == ("500", "JPY", 3)
    assert body["redeem_by"] == "2026-12-31T23:00:00Z"
    assert body["max_redemptions"] == 10


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"percent_off": None}, "percent_off", id="neither-off"),
        pytest.param({"amount_off": "5.00", "currency": "USD"}, "percent_off", id="both-off"),
        pytest.param({"percent_off": "0"}, "percent_off", id="percent-zero"),
        pytest.param({"percent_off": "-5"}, "percent_off", id="percent-negative"),
        pytest.param({"percent_off": "100.01"}, "percent_off", id="percent-over-100"),
        pytest.param({"percent_off": "12.34567"}, "percent_off", id="percent-too-precise"),
        pytest.param({"percent_off": "NaN"}, "percent_off", id="percent-nan"),
        pytest.param({"percent_off": "Infinity"}, "percent_off", id="percent-infinite"),
        pytest.param({"percent_off": "1e30"}, "percent_off", id="percent-huge"),
        pytest.param({"percent_off": True}, "percent_off", id="percent-bool"),
        pytest.param({"percent_off": "abc"}, "percent_off", id="percent-text"),
        pytest.param({"currency": "USD"}, "currency", id="percent-with-currency"),
        pytest.param(
            {"percent_off": None, "amount_off": "5.001", "currency": "USD"},
            "amount_off",
            id="amount-finer-than-cents",
        ),
        pytest.param(
            {"percent_off": None, "amount_off": "5.5", "currency": "JPY"},
            "amount_off",
            id="amount-yen-fraction",
        ),
        pytest.param(
            {"percent_off": None, "amount_off": "-5.00", "currency": "USD"},
            "amount_off",
            id="amount-negative",
        ),
        pytest.param(
            {"percent_off": None, "amount_off": "0", "currency": "USD"},
            "amount_off",
            id="amount-zero",
        ),
        pytest.param(
            {"percent_off": None, "amount_off": "1e20", "currency": "USD"},
            "amount_off",
            id="amount-huge",
        ),
        pytest.param(
            {"percent_off": None, "amount_off": "5.00", "currency": "XYZ"},
            "currency",
            id="amount-unknown-currency",
        ),
        pytest.param(
            {"percent_off": None, "amount_off": "5.00", "currency": "usd"},
            "currency",
            id="amount-lowercase-currency",
        ),
        pytest.param({"percent_off": None, "amount_off": "5.00"}, "currency", id="no-currency"),
        pytest.param({"duration": "weekly"}, "duration", id="unknown-duration"),
        pytest.param({"duration": "repeating"}, "duration_periods", id="repeating-no-periods"),
        pytest.param(
            {"duration": "repeating", "duration_periods": 0}, "duration_periods", id="periods-0"
        ),
        pytest.param(
            {"duration": "repeating", "duration_periods": 10**12},
            "duration_periods",
            id="periods-huge",
        ),
        pytest.param(
            {"duration": "repeating", "duration_periods": "x"}, "duration_periods", id="periods-x"
        ),
        pytest.param({"duration_periods": 2}, "duration_periods", id="once-with-periods"),
        pytest.param({"max_redemptions": 0}, "max_redemptions", id="max-0"),
        pytest.param({"max_redemptions": -1}, "max_redemptions", id="max-negative"),
        pytest.param({"max_redemptions": 1.5}, "max_redemptions", id="max-fraction"),
        pytest.param({"redeem_by": "2027-01-01T00:00:00"}, "redeem_by", id="redeem-by-naive"),
        pytest.param({"redeem_by": "soon"}, "redeem_by", id="redeem-by-text"),
        pytest.param({"code": "has space"}, "code", id="bad-code"),
        pytest.param({"code": "x" * 65}, "code", id="long-code"),
        pytest.param({"name": "  "}, "name", id="blank-name"),
        pytest.param({"name": "n" * 101}, "name", id="long-name"),
    ],
)
def test_invalid_coupons_are_400_with_the_field_and_write_nothing(api, changes, field):
    response = api.post("/api/v1/coupons", {**PERCENT, **changes}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not Coupon.objects.exists()


def test_a_body_that_is_not_an_object_is_400(api):
    assert api.post("/api/v1/coupons", [PERCENT], format="json").status_code == 400
    assert not Coupon.objects.exists()


def test_a_code_taken_is_409(api):
    assert api.post("/api/v1/coupons", PERCENT, format="json").status_code == 201

    response = api.post("/api/v1/coupons", {**PERCENT, "name": "Other"}, format="json")

    assert response.status_code == 409
    assert Coupon.objects.get().name == "Launch 20%"


def test_patch_archives_a_coupon_and_its_terms_never_change(api):
    api.post("/api/v1/coupons", PERCENT, format="json")

    archived = api.patch("/api/v1/coupons/LAUNCH20", {"active": False}, format="json")
    refused = api.patch("/api/v1/coupons/LAUNCH20", {"percent_off": "50"}, format="json")

    assert archived.status_code == 200
    assert archived.json()["active"] is False
    assert refused.status_code == 400
    assert "percent_off" in refused.json()["error"]["fields"]
    assert Coupon.objects.get().percent_off == D("20")
    assert api.patch("/api/v1/coupons/NOPE", {"active": False}, format="json").status_code == 404


def test_reading_coupons_needs_read_and_writing_needs_admin():
    reader = api_client("read")
    assert reader.get("/api/v1/coupons").status_code == 200
    assert reader.post("/api/v1/coupons", PERCENT, format="json").status_code == 403
    assert not Coupon.objects.exists()


# The admin and the portal


@pytest.fixture
def redeemed(db):
    published_version("pro", base_fee=D("50.00"))
    subscription = subscribe(CustomerFactory(external_id="acme"), "pro")
    coupon = coupon_create(
        code="Q20",
        name="Quarter 20%",
        percent_off=D("20"),
        duration="repeating",
        duration_periods=3,
        max_redemptions=5,
    )
    discount_redeem(subscription=subscription, coupon=coupon, now=NOV_15)
    coupon_create(
        code="BIG", name="Big", amount_off=D("500.00"), currency="USD", duration="forever"
    )
    return subscription


def test_the_coupon_admin_lists_amounts_as_money(admin_client, redeemed):
    response = admin_client.get("/admin/plans/coupon/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "20 %" in html and "500.00 USD" in html
    assert "repeating, 3 periods" in html and "1 / 5" in html and "0 / ∞" in html
    assert "500.0000000000" not in html
    assert admin_client.get("/admin/plans/coupon/add/").status_code == 200
    page = admin_client.get(f"/admin/plans/coupon/{Coupon.objects.get(code='Q20').pk}/change/")
    assert page.status_code == 200


def test_the_coupon_admin_creates_with_the_catalog_rules(admin_client, db):
    data = {"code": "BAD", "name": "Bad", "percent_off": "120", "duration": "once"}
    data |= {"active": "on", "amount_off": "", "currency": "", "duration_periods": ""}
    data |= {"max_redemptions": "", "redeem_by_0": "", "redeem_by_1": ""}

    refused = admin_client.post("/admin/plans/coupon/add/", data)
    created = admin_client.post("/admin/plans/coupon/add/", {**data, "percent_off": "15"})

    assert refused.status_code == 200 and "must be at most 100" in refused.content.decode()
    assert created.status_code == 302
    assert Coupon.objects.get().percent_off == D("15")


def test_the_subscription_admin_and_the_portal_show_the_discount(admin_client, client, redeemed):
    page = admin_client.get(f"/admin/billing/subscription/{redeemed.pk}/change/")
    assert page.status_code == 200
    assert "Quarter 20% (Q20): 20 % off, 3 period invoices left" in page.content.decode()

    with time_machine.travel(NOV_15, tick=False):
        token = portal_session_create(customer=redeemed.customer, now=NOV_15).token
        portal = client.get(f"/portal/{token}/")

    assert portal.status_code == 200
    assert portal.context["discount"] == {"name": "Quarter 20%", "off": "20%", "periods_left": 3}
    assert "your next 3 period invoices" in portal.content.decode()

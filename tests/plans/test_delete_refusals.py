"""Deleting what is in use, in the admin: no Delete button on the page of a plan,
version, meter, coupon or tax rate that stays, and its delete URL answers, inside
the admin, why in words (409), for a superuser and for Finance alike; what may go
still goes."""

from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from common.vocabulary import CouponDuration
from plans.coupons import coupon_create
from plans.models import Coupon, Meter, Plan, PlanVersion, TaxRate
from plans.services import plan_version_copy_as_draft, tax_rate_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanFactory,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_client(db) -> Client:
    call_command("setup_roles", verbosity=0)
    user = User.objects.create_user(username="finance", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def pro_with_customers(db) -> PlanVersion:
    """Pro v1, published, charging the meter `prompts`, with 12 customers on it."""
    MeterFactory(code="prompts", name="Prompts")
    version = published_version("pro", charges=(overage("prompts", 100, "0.05"),))
    version.plan.name = "Pro"
    version.plan.save()
    for _ in range(12):
        subscribe(CustomerFactory(), version)
    return version


def refused(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 409
    text = page.content.decode()
    assert 'id="site-name"' in text  # inside the admin's chrome, not a bare 403
    assert "permission" not in text.lower()
    return text


def test_a_plan_with_customers_shows_why_it_stays_to_a_superuser(admin_client, pro_with_customers):
    plan = pro_with_customers.plan

    # when
    change = admin_client.get(f"/admin/plans/plan/{plan.pk}/change/").content.decode()
    text = refused(admin_client, f"/admin/plans/plan/{plan.pk}/delete/")
    posted = admin_client.post(f"/admin/plans/plan/{plan.pk}/delete/", {"post": "yes"})

    # then
    assert f"/admin/plans/plan/{plan.pk}/delete/" not in change  # no Delete button
    assert "12 customers are on Pro v1: archive it instead (Pro stays" in text
    assert "pro v1" not in text  # the plan's name, never its code
    assert posted.status_code == 409
    assert Plan.objects.filter(pk=plan.pk).exists()


def test_the_list_action_says_why_a_plan_stays(admin_client, pro_with_customers):
    plan = pro_with_customers.plan
    page = admin_client.post(
        "/admin/plans/plan/",
        {"action": "delete_selected", "_selected_action": [plan.pk], "post": "yes"},
    )
    text = page.content.decode()
    assert "12 customers are on Pro v1: archive it instead" in text
    assert "permission" not in text.lower()
    assert Plan.objects.filter(pk=plan.pk).exists()


def test_a_published_version_shows_why_it_stays_to_finance(finance_client, pro_with_customers):
    version = pro_with_customers
    url = f"/admin/plans/planversion/{version.pk}/"

    change = finance_client.get(f"{url}change/").content.decode()
    text = refused(finance_client, f"{url}delete/")

    assert f"{url}delete/" not in change
    assert "12 customers are on Pro v1: archive it instead." in text
    assert PlanVersion.objects.filter(pk=version.pk).exists()


def test_a_published_version_nobody_is_on_says_to_archive_it(admin_client, db):
    version = PlanFactory(code="lite", name="Lite").versions.get()
    text = refused(admin_client, f"/admin/plans/planversion/{version.pk}/delete/")
    assert "Lite v1 is published: archive it instead" in text


def test_a_draft_version_and_an_unused_plan_still_go(admin_client, pro_with_customers):
    draft = plan_version_copy_as_draft(version=pro_with_customers)
    empty = Plan.objects.create(code="empty", name="Empty")

    page = admin_client.get(f"/admin/plans/planversion/{draft.pk}/delete/")
    deleted = admin_client.post(f"/admin/plans/planversion/{draft.pk}/delete/", {"post": "yes"})
    plan_deleted = admin_client.post(f"/admin/plans/plan/{empty.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200
    assert deleted.status_code == 302 and plan_deleted.status_code == 302
    assert not PlanVersion.objects.filter(pk=draft.pk).exists()
    assert not Plan.objects.filter(pk=empty.pk).exists()


def test_a_plan_with_only_drafts_says_to_delete_them_first(admin_client, db):
    version = PlanFactory(code="next", name="Next", version__status="draft").versions.get()
    text = refused(admin_client, f"/admin/plans/plan/{version.plan.pk}/delete/")
    assert "Next has draft versions (Next v1): delete them first." in text


def test_a_charged_meter_shows_why_it_stays(admin_client, pro_with_customers):
    meter = Meter.objects.get(code="prompts")
    change = admin_client.get(f"/admin/plans/meter/{meter.pk}/change/").content.decode()
    text = refused(admin_client, f"/admin/plans/meter/{meter.pk}/delete/")
    assert f"/admin/plans/meter/{meter.pk}/delete/" not in change
    assert "Prompts is charged by Pro v1: it stays" in text
    assert Meter.objects.filter(pk=meter.pk).exists()


def test_a_redeemed_coupon_shows_why_it_stays(admin_client, db):
    coupon = coupon_create(
        code="launch", name="Launch offer", percent_off=D(10), duration=CouponDuration.FOREVER
    )
    Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=3)
    text = refused(admin_client, f"/admin/plans/coupon/{coupon.pk}/delete/")
    assert "Launch offer was redeemed 3 times: untick Active to archive it instead" in text


def test_a_tax_rate_that_taxed_invoices_shows_why_it_stays(admin_client, db, monkeypatch):
    from plans.admin import tax_rates as tax_rates_admin

    rate = tax_rate_create(code="de_vat", name="MwSt", percentage=D(19), country="DE")
    monkeypatch.setattr(tax_rates_admin.services, "tax_rate_in_use", lambda rate: True)
    text = refused(admin_client, f"/admin/plans/taxrate/{rate.pk}/delete/")
    assert "MwSt taxed invoices: untick Active to archive it instead" in text
    assert TaxRate.objects.filter(pk=rate.pk).exists()


def test_a_subscribed_customer_shows_why_they_stay(admin_client, pro_with_customers):
    from customers.models import Customer

    customer = Customer.objects.filter(subscriptions__isnull=False).first()
    customer.name = "Acme Inc"
    customer.save()
    unused = CustomerFactory(name="Nobody Ltd")

    text = refused(admin_client, f"/admin/customers/customer/{customer.pk}/delete/")
    deleted = admin_client.post(f"/admin/customers/customer/{unused.pk}/delete/", {"post": "yes"})

    assert "Acme Inc has 1 invoice and 1 subscription: it stays, for them" in text
    assert deleted.status_code == 302
    assert not Customer.objects.filter(pk=unused.pk).exists()

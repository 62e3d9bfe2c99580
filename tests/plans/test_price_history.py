"""A version's price history reads as what a person changed: one change per save
(charges and tiers the services write again compared by meter and tier
position), amounts and quantities in words; the History page shows it, to whoever
may view plan versions."""

import importlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from customers.models import Customer
from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.models import Charge, Plan, PlanVersion, PriceTier, VersionFeature
from plans.price_history import NOTHING_CHANGED, price_history
from plans.pricing import PricingSpec, TierSpec
from plans.selectors import version_spec
from plans.services import (
    plan_create,
    plan_version_copy_as_draft,
    plan_version_publish,
    plan_version_update,
)
from plans.validation import ChargeSpec, VersionSpec
from tests.factories import MeterFactory, overage, published_version
from tests.plans.test_admin import version_post

pytestmark = pytest.mark.django_db

NOV_2 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def usd(text: str) -> str:
    return f"{text} USD"


def graduated(*tiers: tuple[str | None, str]) -> PricingSpec:
    return PricingSpec(
        "graduated",
        tiers=tuple(TierSpec(D(up_to) if up_to else None, D(price)) for up_to, price in tiers),
    )


@pytest.fixture
def pro(db):
    MeterFactory(code="llm_tokens", name="LLM tokens")
    MeterFactory(code="storage", name="Storage")
    feature_create(code="max_projects", name="Projects", kind="config")
    with time_machine.travel(datetime(2026, 11, 1, 8, tzinfo=UTC), tick=False):
        return published_version(
            "pro",
            base_fee=D("49.00"),
            charges=(
                ChargeSpec(
                    "llm_tokens",
                    "overage",
                    D(1000),
                    pricing=graduated(("1000000", "0.003"), (None, "0.002")),
                ),
                overage("storage", 10, "0.50"),
            ),
            features=(FeatureGrant("max_projects", 10),),
        )


def save(draft, at: datetime, **changes):
    """The draft's stored spec with `changes`, saved at `at` (the way the admin saves)."""
    draft.refresh_from_db()
    with time_machine.travel(at, tick=False):
        plan_version_update(version=draft, spec=replace(version_spec(version=draft), **changes))


def test_each_save_reads_as_its_changes_in_words(pro):
    # given: a draft of pro v1, made on November 2nd
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=pro)
    tokens, storage = version_spec(version=draft).charges

    # when: tier 2 gets an upper limit and a lower price, and a tier 3 is added
    new_tiers = graduated(("1000000", "0.003"), ("5000000", "0.0015"), (None, "0.001"))
    save(
        draft,
        datetime(2026, 11, 3, 10, tzinfo=UTC),
        charges=(replace(tokens, pricing=new_tiers), storage),
    )
    # then the storage charge is dropped, the base fee raised and the projects grant raised
    save(
        draft,
        datetime(2026, 11, 4, 10, tzinfo=UTC),
        base_fee=D("59.00"),
        charges=version_spec(version=draft).charges[:1],
        features=(FeatureGrant("max_projects", 20),),
    )
    # and a save that changes nothing
    save(draft, datetime(2026, 11, 5, 10, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 11, 6, 10, tzinfo=UTC), tick=False):
        plan_version_publish(version=draft)

    # then: one change per save, newest first
    changes = price_history(version=draft)
    assert [(c.at, c.user) for c in changes] == [
        (datetime(2026, 11, 6, 10, tzinfo=UTC), None),
        (datetime(2026, 11, 5, 10, tzinfo=UTC), None),
        (datetime(2026, 11, 4, 10, tzinfo=UTC), None),
        (datetime(2026, 11, 3, 10, tzinfo=UTC), None),
        (NOV_2, None),
    ]
    assert [c.lines for c in changes[:4]] == [
        ("Status: Draft → Published",),
        (NOTHING_CHANGED,),
        (
            f"Base fee: {usd('49.00')} → {usd('59.00')}",
            "Storage: charge removed",
            "Projects: 10 → 20",
        ),
        (
            "LLM tokens, tier 2: up to no limit → 5,000,000",
            f"LLM tokens, tier 2: unit price {usd('0.002')} → {usd('0.0015')}",
            f"LLM tokens: tier 3 added (up to: no limit, unit price {usd('0.001')})",
        ),
    ]
    assert changes[4].lines == (
        "Created as a draft, copied from v1",
        "Currency: USD",
        "Billing interval: Monthly",
        f"Base fee: {usd('49.00')}",
        "LLM tokens: charge added (Soft cap: included units, then priced overage; "
        "included units 1,000; pricing scheme “Graduated”)",
        f"LLM tokens: tier 1 added (up to: 1,000,000, unit price {usd('0.003')})",
        f"LLM tokens: tier 2 added (up to: no limit, unit price {usd('0.002')})",
        "Storage: charge added (Soft cap: included units, then priced overage; "
        f"included units 10; pricing scheme “Per unit”; unit price {usd('0.50')})",
        "Projects: granted (10)",
    )


def test_a_tier_removed_and_a_scheme_changed(pro):
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=pro)
    tokens, storage = version_spec(version=draft).charges

    save(
        draft,
        datetime(2026, 11, 3, tzinfo=UTC),
        charges=(
            replace(tokens, pricing=graduated((None, "0.003"))),
            replace(storage, included_units=D(20), pricing=graduated((None, "0.40"))),
        ),
    )

    assert price_history(version=draft)[0].lines == (
        "LLM tokens, tier 1: up to 1,000,000 → no limit",
        f"LLM tokens: tier 2 removed (up to: no limit, unit price {usd('0.002')})",
        "Storage: included units 10 → 20",
        "Storage: pricing scheme “Per unit” → “Graduated”",
        f"Storage: unit price {usd('0.50')} → —",
        f"Storage: tier 1 added (up to: no limit, unit price {usd('0.40')})",
    )


def test_a_price_made_per_a_million_units_reads_as_a_change_of_price(pro):
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=pro)
    tokens, storage = version_spec(version=draft).charges
    per_million = PricingSpec(
        "graduated",
        tiers=(TierSpec(D(1_000_000), D("0.003")), TierSpec(None, D("2.00"), per=D(1_000_000))),
    )

    save(
        draft,
        datetime(2026, 11, 3, tzinfo=UTC),
        charges=(
            replace(tokens, pricing=per_million),
            replace(storage, pricing=replace(storage.pricing, per=D(1000))),
        ),
    )

    assert price_history(version=draft)[0].lines == (
        f"LLM tokens, tier 2: unit price {usd('0.002')} → {usd('2.00')} per 1M",
        f"Storage: unit price {usd('0.50')} → {usd('0.50')} per 1,000",
    )


def test_the_history_page_shows_when_in_the_admin_zone_who_and_what(pro, client, settings):
    # given: a viewer of plan versions, a save by them through the admin's service call
    settings.TIME_ZONE = "Europe/Paris"
    viewer = User.objects.create_user("fin", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_planversion"))
    client.force_login(viewer)
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=pro)
    save(draft, datetime(2026, 11, 3, 10, tzinfo=UTC), base_fee=D("59.00"))

    # when
    page = client.get(f"/admin/plans/planversion/{draft.pk}/history/")

    # then
    assert page.status_code == 200
    html = page.content.decode()
    assert "3 Nov 2026, 11:00:00 Europe/Paris" in html
    assert "2 Nov 2026, 10:30:00 Europe/Paris" in html
    assert "No person (the API or a task)" in html
    assert "Base fee: 49.00 USD → 59.00 USD" in html
    assert "E-10" not in html and "0000000" not in html


def test_the_history_page_needs_view_permission(pro, client):
    nobody = User.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(nobody)
    assert client.get(f"/admin/plans/planversion/{pro.pk}/history/").status_code == 403


def test_tiers_and_grants_written_without_history_get_it_from_the_migration(pro):
    # given: pro v1's tiers and grant as written before they had history rows
    creation = price_history(version=pro)[0]
    PriceTier.history.all().delete()
    VersionFeature.history.all().delete()
    assert len(price_history(version=pro)[0].lines) == len(creation.lines) - 3

    # when
    migration = importlib.import_module("plans.migrations.0012_tier_and_grant_history_backfill")
    migration.backfill(django_apps, None)

    # then: they are part of the version's creation, as they were
    assert price_history(version=pro) == [creation]


def test_two_quick_api_saves_are_two_changes(db):
    MeterFactory(code="m", name="M")
    pro = published_version("pro", base_fee=D("49.00"))
    at = datetime(2026, 11, 2, tzinfo=UTC)
    with time_machine.travel(at - timedelta(hours=1), tick=False):
        draft = plan_version_copy_as_draft(version=pro)
    for fee in ("50", "60"):
        at += timedelta(milliseconds=400)
        draft.refresh_from_db()
        with time_machine.travel(at, tick=False):
            plan_version_update(
                version=draft, spec=replace(version_spec(version=draft), base_fee=D(fee))
            )
    lines = [c.lines for c in price_history(version=draft)]
    assert lines[:2] == [("Base fee: 50.00 USD → 60.00 USD",), ("Base fee: 49.00 USD → 50.00 USD",)]


def test_a_version_added_in_the_admin_is_one_change_by_its_user(admin_client, admin_user):
    # given: pro v1 and a storage meter
    storage = MeterFactory(code="storage", name="Storage")
    pro = published_version("pro", base_fee=D("49.00"))

    # when: v2 is added on the admin's add page (the form, then its charges inline)
    charge = {"meter": storage.pk, "model": "overage", "included_units": "10"}
    charge |= {"pricing_scheme": "per_unit", "unit_price": "0.50"}
    response = admin_client.post("/admin/plans/planversion/add/", version_post(pro.plan, [charge]))

    # then: its history is one change, by the admin user
    assert response.status_code == 302, response.content.decode()[:3000]
    draft = pro.plan.versions.get(number=2)
    assert [(c.user, c.lines) for c in price_history(version=draft)] == [
        (
            admin_user,
            (
                "Created as a draft",
                "Currency: USD",
                "Billing interval: Monthly",
                f"Base fee: {usd('29.00')}",
                "Storage: charge added (Soft cap: included units, then priced overage; "
                f"included units 10; pricing scheme “Per unit”; unit price {usd('0.50')})",
            ),
        )
    ]


def test_a_plan_created_and_published_at_once_is_one_change(db):
    # when: a plan is created through the API's service, published at once
    version = plan_create(
        code="team", name="Team", version=VersionSpec(currency="USD"), publish=True
    )

    # then: one change; the plan's own row is not stamped (its History page shows reasons)
    assert [c.lines for c in price_history(version=version)] == [
        ("Created and published", "Currency: USD", "Billing interval: Monthly")
    ]
    assert [row.history_change_reason for row in Plan.history.all()] == [None]


def test_rows_written_before_saves_had_a_change_id_are_grouped_by_time(pro):
    # given: a draft and a save, their rows as they were written before change ids
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=pro)
    save(draft, datetime(2026, 11, 3, 10, tzinfo=UTC), base_fee=D("59.00"))
    changes = price_history(version=draft)
    for model in (PlanVersion, Charge, PriceTier, VersionFeature):
        model.history.update(history_change_reason=None)

    # then: each save is still one change (its rows, a second apart at most); the
    # copy no longer says what it copies (that was in the reason)
    again = price_history(version=draft)
    assert [(c.at, c.lines[1:]) for c in again] == [(c.at, c.lines[1:]) for c in changes]
    assert [c.lines[0] for c in changes] == [
        f"Base fee: {usd('49.00')} → {usd('59.00')}",
        "Created as a draft, copied from v1",
    ]
    assert again[1].lines[0] == "Created as a draft"


def test_a_copy_of_v2_says_so_in_its_history_reason(pro):
    # given: v2 published from a copy of v1
    v2 = plan_version_publish(version=plan_version_copy_as_draft(version=pro))

    # when: v3 is copied from v2
    v3 = plan_version_copy_as_draft(version=v2)

    # then: every row of the copy carries the tag after its change id
    reasons = {row.history_change_reason for row in PlanVersion.history.filter(id=v3.pk)}
    assert len(reasons) == 1 and reasons.pop().endswith(" copied_from=2")
    assert price_history(version=v3)[0].lines[0] == "Created as a draft, copied from v2"


def test_the_demo_catalog_s_history_names_its_loader(client):
    # given: the demo loaded by its command, no person logged in
    call_command("load_demo", "--catalog-only", stdout=StringIO())
    pro = Plan.objects.get(code="pro").versions.get()
    viewer = User.objects.create_user("fin", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_planversion"))
    client.force_login(viewer)

    # when
    page = client.get(f"/admin/plans/planversion/{pro.pk}/history/")

    # then
    (change,) = price_history(version=pro)
    assert (change.user, change.by, change.lines[0]) == (None, "load_demo", "Created and published")
    html = page.content.decode()
    assert '<td class="who">load_demo (demo data)</td>' in html
    assert "No person" not in html


def test_every_history_page_names_the_demo_loader(admin_client):
    call_command("load_demo", "--catalog-only", stdout=StringIO())
    pro = Plan.objects.get(code="pro")
    acme = Customer.objects.get(external_id="acme")

    for url in (
        f"/admin/plans/plan/{pro.pk}/history/",
        f"/admin/customers/customer/{acme.pk}/history/",
    ):
        html = admin_client.get(url).content.decode()
        assert html.count('<td class="who">load_demo (demo data)</td>') == 1, url
        assert "None" not in html and "change:" not in html, url

"""A draft compared with its plan's published version: every term, charge field,
tier and feature side by side, the rows that differ flagged with what changed."""

from dataclasses import replace
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User

from plans.admin.version_compare import ADDED, REMOVED, CompareRow, compare_sections
from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.pricing import PricingSpec, TierSpec
from plans.selectors import version_spec
from plans.services import plan_version_copy_as_draft, plan_version_update
from plans.validation import ChargeSpec
from tests.factories import MeterFactory, PlanVersionFactory, overage, published_version

pytestmark = pytest.mark.django_db


def usd(text: str) -> str:
    return f"{text} USD"


@pytest.fixture
def pro_and_draft(db):
    MeterFactory(code="llm_tokens", name="LLM tokens")
    MeterFactory(code="storage", name="Storage")
    MeterFactory(code="seats_active", name="Active seats")
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    pro = published_version(
        "pro",
        base_fee=D("49.00"),
        charges=(
            ChargeSpec(
                "llm_tokens",
                "overage",
                D(1000),
                pricing=PricingSpec(
                    "graduated",
                    tiers=(TierSpec(D(1000000), D("0.003")), TierSpec(None, D("0.002"))),
                ),
            ),
            overage("storage", 10, "0.50"),
        ),
    )
    draft = plan_version_copy_as_draft(version=pro)
    tokens, _storage = version_spec(version=draft).charges
    tiers = (TierSpec(D(1000000), D("0.003")), TierSpec(None, D("0.0015")))
    draft = plan_version_update(
        version=draft,
        spec=replace(
            version_spec(version=draft),
            base_fee=D("59.00"),
            charges=(
                replace(tokens, pricing=replace(tokens.pricing, tiers=tiers)),
                overage("seats_active", 0, "2.00"),
            ),
            features=(FeatureGrant("sso", True),),
        ),
    )
    return pro, draft


def test_the_rows_that_differ_say_what_changed(pro_and_draft):
    pro, draft = pro_and_draft

    sections = compare_sections(version_spec(version=pro), version_spec(version=draft))

    assert [s.title for s in sections] == [
        "Terms",
        "Charge: LLM tokens",
        "Charge: Active seats",
        "Charge: Storage",
        "Features",
    ]
    terms = {row.label: row for row in sections[0].rows}
    assert terms["Base fee"] == CompareRow(
        "Base fee", usd("49.00"), usd("59.00"), f"{usd('49.00')} → {usd('59.00')}"
    )
    assert terms["Currency"] == CompareRow("Currency", "USD", "USD", "")
    assert [row for row in sections[0].rows if row.change] == [terms["Base fee"]]
    tokens = {row.label: row for row in sections[1].rows}
    assert tokens["Tier 1"] == CompareRow(
        "Tier 1",
        f"up to: 1,000,000, unit price {usd('0.003')}",
        f"up to: 1,000,000, unit price {usd('0.003')}",
        "",
    )
    assert tokens["Tier 2"] == CompareRow(
        "Tier 2",
        f"up to: no limit, unit price {usd('0.002')}",
        f"up to: no limit, unit price {usd('0.0015')}",
        f"unit price {usd('0.002')} → {usd('0.0015')}",
    )
    assert tokens["Pricing scheme"] == CompareRow("Pricing scheme", "Graduated", "Graduated", "")
    assert tokens["Included units"] == CompareRow("Included units", "1,000", "1,000", "")
    assert sections[1].changed == 1
    assert {row.change for row in sections[2].rows} == {ADDED}
    assert {row.change for row in sections[3].rows} == {REMOVED}
    assert sections[3].rows[5] == CompareRow("Unit price", usd("0.50"), "—", REMOVED)
    assert sections[4].rows == (CompareRow("Single sign-on", "Not granted", "Yes", ADDED),)


def test_the_page_highlights_the_changed_rows(pro_and_draft, client):
    pro, draft = pro_and_draft
    viewer = User.objects.create_user("fin", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_planversion"))
    client.force_login(viewer)

    page = client.get(f"/admin/plans/planversion/{draft.pk}/compare/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Published: v1" in html and "This draft: v2" in html
    assert (
        '<tr class="changed">\n      <th scope="row">Tier 2</th>'
        f"<td>up to: no limit, unit price {usd('0.002')}</td>"
        f"<td>up to: no limit, unit price {usd('0.0015')}</td>"
        f'<td class="change">unit price {usd("0.002")} → {usd("0.0015")}</td>'
    ) in html
    assert "0000000" not in html
    # The draft's page links to it; a published version's does not.
    assert (
        f"/admin/plans/planversion/{draft.pk}/compare/"
        in client.get(f"/admin/plans/planversion/{draft.pk}/change/").content.decode()
    )
    assert (
        "compare-published"
        not in client.get(f"/admin/plans/planversion/{pro.pk}/change/").content.decode()
    )


def test_without_a_published_version_the_page_says_so(admin_client):
    draft = PlanVersionFactory(plan__code="new", status="draft", base_fee=D("10.00"))

    page = admin_client.get(f"/admin/plans/planversion/{draft.pk}/compare/")

    assert page.status_code == 200
    assert (
        "New has no published version yet: there is nothing to compare this version with."
        in page.content.decode()
    )


def test_comparing_needs_view_permission(pro_and_draft, client):
    _pro, draft = pro_and_draft
    client.force_login(User.objects.create_user("nobody", password="x", is_staff=True))
    assert client.get(f"/admin/plans/planversion/{draft.pk}/compare/").status_code == 403


def test_a_change_of_what_a_price_is_for_reads_as_a_change(db):
    # given: storage at 0.50 a unit, and tokens in one tier at 0.003 a unit
    MeterFactory(code="llm_tokens", name="LLM tokens")
    MeterFactory(code="storage", name="Storage")
    tokens = ChargeSpec(
        "llm_tokens", "overage", D(0), pricing=PricingSpec("volume", tiers=(TierSpec(None, D(3)),))
    )
    pro = published_version("pro", charges=(tokens, overage("storage", 10, "0.50")))
    draft = plan_version_copy_as_draft(version=pro)

    # when: the same prices become per 1,000 and per 1,000,000 units
    per_million = PricingSpec("volume", tiers=(TierSpec(None, D(3), per=D(1_000_000)),))
    per_thousand = PricingSpec("per_unit", unit_price=D("0.50"), per=D(1000))
    charges = (
        replace(tokens, pricing=per_million),
        replace(overage("storage", 10, "0.50"), pricing=per_thousand),
    )
    plan_version_update(version=draft, spec=replace(version_spec(version=draft), charges=charges))

    # then
    sections = compare_sections(version_spec(version=pro), version_spec(version=draft))
    tokens_rows = {row.label: row for row in sections[1].rows}
    storage_rows = {row.label: row for row in sections[2].rows}
    assert tokens_rows["Tier 1"].change == f"unit price {usd('3.00')} → {usd('3.00')} per 1M"
    assert storage_rows["Unit price"] == CompareRow(
        "Unit price",
        usd("0.50"),
        f"{usd('0.50')} per 1,000",
        f"{usd('0.50')} → {usd('0.50')} per 1,000",
    )

"""A plan's lifecycle in the admin, as finance walks it: the plan's page lists its
versions with their customers and offers to add a draft; a version's page has
Publish, Archive and New draft, the first two behind a confirmation that says
what will happen to how many customers; refusals come back in words."""

import html
import re
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.formats import date_format
from django.utils.timezone import localtime

from plans.models import Charge, Meter, Plan, PlanVersion
from plans.pricing import PricingSpec, TierSpec
from plans.services import plan_version_copy_as_draft
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db


def version_url(version: PlanVersion, action: str = "change") -> str:
    return f"/admin/plans/planversion/{version.pk}/{action}/"


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def inline_rows(page: str, prefix: str) -> list[dict[str, str]]:
    """The read-only cells of each row of an inline, by field name."""
    rows = re.findall(rf'<tr[^>]*id="{prefix}-\d+"[^>]*>(.*?)</tr>', page, re.S)
    return [
        {
            name: text(cell)
            for name, cell in re.findall(r'<td class="field-(\w+)">(.*?)</td>', row, re.S)
        }
        for row in rows
    ]


def consequences(page: str) -> list[str]:
    block = re.search(r'<ul class="consequences">(.*?)</ul>', page, re.S).group(1)
    return [text(item) for item in re.findall(r"<li>(.*?)</li>", block, re.S)]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def pro(db):
    """Pro v1 (49.00 USD a month, prompts over 100 at 0.05), published, with 3
    live customers."""
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    v1 = published_version("pro", base_fee=D("49.00"), charges=(overage("prompts", 100, "0.05"),))
    for _ in range(3):
        subscribe(CustomerFactory(), v1)
    return v1


# The version reads as finance names it


def test_a_version_reads_as_its_plan_name_and_number(pro):
    assert str(pro) == "Pro v1"
    assert str(Meter.objects.get(code="prompts")) == "Prompts (prompts)"


# The plan's page


def test_the_plan_page_lists_each_version_with_its_customers(finance_client, pro):
    # given: v2, a draft
    draft = plan_version_copy_as_draft(version=pro)

    # when
    page = finance_client.get(f"/admin/plans/plan/{pro.plan_id}/change/").content.decode()

    # then
    published_on = date_format(localtime(pro.published_at), "j M Y")
    assert inline_rows(page, "versions") == [
        {
            "version": "v1",
            "status": "Published",
            "currency": "USD",
            "interval": "Monthly",
            "base_fee_text": "49.00 USD",
            "subscribers": "3",
            "published_on": published_on,
        },
        {
            "version": "v2",
            "status": "Draft",
            "currency": "USD",
            "interval": "Monthly",
            "base_fee_text": "49.00 USD",
            "subscribers": "0",
            "published_on": "—",
        },
    ]
    assert f'<a href="{version_url(draft)}">v2</a>' in page
    assert (
        f'<a href="/admin/plans/planversion/add/?plan={pro.plan_id}" id="add-draft-version"' in page
    )


def test_the_plan_page_counts_customers_without_a_query_per_version(admin_client, pro):
    url = f"/admin/plans/plan/{pro.plan_id}/change/"
    with CaptureQueriesContext(connection) as two_versions:
        admin_client.get(url)
    plan_version_copy_as_draft(version=pro)
    plan_version_copy_as_draft(version=pro)
    with CaptureQueriesContext(connection) as four_versions:
        admin_client.get(url)

    assert len(four_versions) == len(two_versions)


def test_a_new_plan_leads_to_its_first_version(finance_client):
    response = finance_client.post(
        "/admin/plans/plan/add/", {"code": "team", "name": "Team", "description": ""}
    )

    plan = Plan.objects.get(code="team")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/plans/plan/{plan.pk}/change/"
    page = finance_client.get(response["Location"])
    assert messages_of(page) == [
        f'Team created. It has no version yet: <a href="/admin/plans/planversion/add/?plan='
        f'{plan.pk}">add a draft version</a> to set its currency and prices.'
    ]


# The version's buttons


def test_a_draft_offers_publish_archive_and_new_draft(finance_client, pro):
    draft = plan_version_copy_as_draft(version=pro)

    page = finance_client.get(version_url(draft)).content.decode()

    assert f'<a href="{version_url(draft, "publish")}" id="publish-version">Publish</a>' in page
    assert f'<a href="{version_url(draft, "archive")}" id="archive-version">Archive</a>' in page
    assert f'action="{version_url(draft, "new-draft")}"' in page


def test_a_published_version_offers_archive_and_new_draft_only(finance_client, pro):
    page = finance_client.get(version_url(pro)).content.decode()

    assert 'id="publish-version"' not in page
    assert 'id="archive-version"' in page
    assert 'id="new-draft"' in page


def test_a_reader_gets_no_button_and_no_action(client, pro):
    # given: Operations, who may view the catalog only
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    user = User.objects.create_user("ops", password="ops-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Operations"))
    client.force_login(user)
    draft = plan_version_copy_as_draft(version=pro)

    # when
    page = client.get(version_url(draft)).content.decode()
    publish = client.post(version_url(draft, "publish"), {"confirmed": "yes"})
    archive = client.post(version_url(pro, "archive"), {"confirmed": "yes"})
    copy = client.post(version_url(pro, "new-draft"))

    # then
    for button in ("publish-version", "archive-version", "new-draft"):
        assert f'id="{button}"' not in page
    assert (publish.status_code, archive.status_code, copy.status_code) == (403, 403, 403)
    assert list(Plan.objects.get().versions.values_list("number", "status")) == [
        (1, "published"),
        (2, "draft"),
    ]


# Publish


def test_publish_says_what_happens_then_publishes(finance_client, pro):
    # given
    draft = plan_version_copy_as_draft(version=pro)

    # when: the button opens the confirmation
    confirm = finance_client.get(version_url(draft, "publish"))

    # then: it says what will happen, and nothing happened yet
    page = confirm.content.decode()
    assert consequences(page) == [
        "Pro v2's prices become read-only.",
        "New subscriptions and migrations can use Pro v2.",
        "A subscription to Pro created through the API without a version number "
        "starts on Pro v2 from now on.",
        "The 3 customers on Pro v1 stay on it until you migrate them.",
    ]
    assert 'value="Publish Pro v2"' in page
    draft.refresh_from_db()
    assert draft.status == PlanVersion.DRAFT

    # when: confirmed
    response = finance_client.post(version_url(draft, "publish"), {"confirmed": "yes"})

    # then
    assert response["Location"] == version_url(draft)
    draft.refresh_from_db()
    assert draft.status == PlanVersion.PUBLISHED
    assert messages_of(finance_client.get(response["Location"])) == ["Pro v2 published"]


def test_publishing_an_older_draft_says_the_api_keeps_the_latest(finance_client, pro):
    # given: drafts v2 and v3; v3 published first
    v2 = plan_version_copy_as_draft(version=pro)
    v3 = plan_version_copy_as_draft(version=pro)
    finance_client.post(version_url(v3, "publish"), {"confirmed": "yes"})

    # when
    page = finance_client.get(version_url(v2, "publish")).content.decode()

    # then: API subscriptions naming no version keep starting on v3
    assert consequences(page)[2] == (
        "A subscription to Pro created through the API without a version number "
        "still starts on Pro v3, the latest published version."
    )


def test_a_post_without_the_confirmation_publishes_nothing(finance_client, pro):
    draft = plan_version_copy_as_draft(version=pro)

    response = finance_client.post(version_url(draft, "publish"), {})

    assert response.status_code == 200
    draft.refresh_from_db()
    assert draft.status == PlanVersion.DRAFT


def test_a_refused_publish_comes_back_in_words(finance_client, pro):
    # given: a draft stored without pricing on a soft cap charge (as an old import might)
    draft = PlanVersion.objects.create(plan=pro.plan, number=2, currency="USD", base_fee=1)
    Charge.objects.create(version=draft, meter=Meter.objects.get(code="prompts"), model="overage")

    # when
    response = finance_client.post(version_url(draft, "publish"), {"confirmed": "yes"}, follow=True)

    # then
    assert messages_of(response) == [
        "Pro v2 was not published. "
        "Charge 1: A soft cap charge needs a price: pick a pricing scheme."
    ]
    draft.refresh_from_db()
    assert draft.status == PlanVersion.DRAFT


def test_a_published_version_is_not_published_again(finance_client, pro):
    response = finance_client.get(version_url(pro, "publish"), follow=True)

    assert messages_of(response) == ["Pro v1 is not a draft: only a draft can be published."]


# Archive


def test_archive_says_what_happens_then_archives(finance_client, pro):
    # given: v2 published too, so Pro stays on sale
    PlanVersionFactory(plan=pro.plan)

    # when
    page = finance_client.get(version_url(pro, "archive")).content.decode()

    # then
    assert consequences(page) == [
        "No new subscription can start on Pro v1.",
        "The 3 customers on it keep it until you migrate them.",
    ]

    # when: confirmed
    response = finance_client.post(version_url(pro, "archive"), {"confirmed": "yes"}, follow=True)

    # then
    assert messages_of(response) == ["Pro v1 archived"]
    pro.refresh_from_db()
    assert pro.status == PlanVersion.ARCHIVED


def test_archiving_the_last_published_version_says_the_plan_leaves_sale(finance_client, pro):
    page = finance_client.get(version_url(pro, "archive")).content.decode()

    assert consequences(page)[-1] == (
        "Pro then has no published version: no new customer can subscribe to it."
    )


# New draft


def test_new_draft_creates_the_copy_and_opens_it(finance_client, pro):
    response = finance_client.post(version_url(pro, "new-draft"))

    draft = pro.plan.versions.get(number=2)
    assert response["Location"] == version_url(draft)
    assert draft.status == PlanVersion.DRAFT
    assert draft.base_fee == D("49.00")
    assert messages_of(finance_client.get(response["Location"])) == [
        "Pro v2 created as a draft from v1"
    ]


def test_new_draft_is_never_made_by_a_get(finance_client, pro):
    response = finance_client.get(version_url(pro, "new-draft"))

    assert response.status_code == 405
    assert pro.plan.versions.count() == 1


# The list's actions go through the same confirmation


def test_the_list_action_confirms_the_selected_versions_first(finance_client, pro):
    # given: two drafts of two plans
    draft = plan_version_copy_as_draft(version=pro)
    team = PlanVersionFactory(plan__code="team", plan__name="Team", status=PlanVersion.DRAFT)
    selected = {"action": "publish", "_selected_action": [draft.pk, team.pk]}

    # when
    page = finance_client.post("/admin/plans/planversion/", selected).content.decode()

    # then: one page for both, nothing published yet
    assert consequences(page) == [
        "Pro v2's prices become read-only.",
        "New subscriptions and migrations can use Pro v2.",
        "A subscription to Pro created through the API without a version number "
        "starts on Pro v2 from now on.",
        "The 3 customers on Pro v1 stay on it until you migrate them.",
        "Team v1's prices become read-only.",
        "New subscriptions and migrations can use Team v1.",
        "A subscription to Team created through the API without a version number "
        "starts on Team v1 from now on.",
        "No customer is on Team yet.",
    ]
    assert 'value="Publish 2 versions"' in page
    assert PlanVersion.objects.filter(status=PlanVersion.DRAFT).count() == 2

    # when: confirmed
    response = finance_client.post(
        "/admin/plans/planversion/", {**selected, "confirmed": "yes"}, follow=True
    )

    # then
    assert messages_of(response) == ["Pro v2 published", "Team v1 published"]
    assert not PlanVersion.objects.filter(status=PlanVersion.DRAFT).exists()


# Errors on their fields, in words


def tiered_version_post(plan: Plan, meter: Meter, tiers: list[tuple[str, str, str]]) -> dict:
    data = {
        "plan": plan.pk,
        "currency": "USD",
        "interval": "month",
        "base_fee": "0",
        "seat_price": "",
        "minimum_commitment": "",
        "trial_days": "0",
        "credits_per_period": "",
        "progressive_billing_threshold": "",
        "charges-TOTAL_FORMS": "1",
        "charges-INITIAL_FORMS": "0",
        "charges-MIN_NUM_FORMS": "0",
        "charges-MAX_NUM_FORMS": "1000",
        "features-TOTAL_FORMS": "0",
        "features-INITIAL_FORMS": "0",
        "features-MIN_NUM_FORMS": "0",
        "features-MAX_NUM_FORMS": "1000",
        "charges-0-meter": meter.pk,
        "charges-0-model": "overage",
        "charges-0-included_units": "",
        "charges-0-credits_per_unit": "",
        "charges-0-when_exhausted": "block",
        "charges-0-pricing_scheme": "graduated",
        "charges-0-unit_price": "",
        "charges-0-package_size": "",
        "charges-0-package_price": "",
        "charges-0-tiers-TOTAL_FORMS": str(len(tiers)),
        "charges-0-tiers-INITIAL_FORMS": "0",
        "charges-0-tiers-MIN_NUM_FORMS": "0",
        "charges-0-tiers-MAX_NUM_FORMS": "1000",
    }
    for k, (up_to, unit_price, flat_fee) in enumerate(tiers):
        data[f"charges-0-tiers-{k}-up_to"] = up_to
        data[f"charges-0-tiers-{k}-unit_price"] = unit_price
        data[f"charges-0-tiers-{k}-flat_fee"] = flat_fee
    return data


def tier_errors(response) -> list[dict]:
    charges = next(
        f.formset
        for f in response.context["inline_admin_formsets"]
        if f.formset.prefix == "charges"
    )
    return [dict(form.errors) for form in charges.forms[0].nested_formsets[0].forms]


@pytest.mark.parametrize(
    ("tiers", "errors"),
    [
        (
            [("1000000", "0.000002", ""), ("2000000", "0.000001", "")],
            [{}, {"up_to": ["The last tier needs no upper limit: leave 'Up to' empty"]}],
        ),
        (
            [("1000000", "0.000002", ""), ("500000", "0.000001", ""), ("", "0", "")],
            [
                {},
                {"up_to": ["Tiers must rise: each 'Up to' must be above the one before (1000000)"]},
                {},
            ],
        ),
        (
            [("", "0.000002", ""), ("", "0.000001", "")],
            [
                {"up_to": ["Only the last tier has no upper limit: fill in 'Up to' for this one"]},
                {},
            ],
        ),
    ],
)
def test_a_tier_error_lands_on_that_tiers_field(finance_client, pro, tiers, errors):
    before = PlanVersion.objects.count()

    response = finance_client.post(
        "/admin/plans/planversion/add/",
        tiered_version_post(pro.plan, Meter.objects.get(code="prompts"), tiers),
    )

    assert response.status_code == 200
    assert tier_errors(response) == errors
    assert "pricing.tiers" not in response.content.decode()
    assert PlanVersion.objects.count() == before


def test_a_tiered_price_without_tiers_is_said_on_the_scheme(finance_client, pro):
    response = finance_client.post(
        "/admin/plans/planversion/add/",
        tiered_version_post(pro.plan, Meter.objects.get(code="prompts"), []),
    )

    charges = next(
        f.formset
        for f in response.context["inline_admin_formsets"]
        if f.formset.prefix == "charges"
    )
    assert dict(charges.forms[0].errors) == {
        "pricing_scheme": ["A graduated or volume price needs at least one tier"]
    }


# Inputs and labels


def test_tiers_show_their_numbers_as_typed_and_their_labels(finance_client, pro):
    # given: a draft with a graduated charge whose tiers have no flat fee
    tiers = (TierSpec(D(1000000), D("0.000002")), TierSpec(None, D("0.000001")))
    draft = PlanVersionFactory(
        plan=pro.plan,
        status=PlanVersion.DRAFT,
        charges=(ChargeSpec("prompts", "overage", pricing=PricingSpec("graduated", tiers=tiers)),),
    )

    # when
    page = finance_client.get(version_url(draft)).content.decode()

    # then
    assert 'name="charges-0-tiers-0-up_to" value="1000000"' in page
    assert 'name="charges-0-tiers-0-unit_price" value="0.000002"' in page
    assert 'name="charges-0-tiers-0-flat_fee" value="0.00"' in page  # an amount: 2 digits
    assert 'name="charges-0-tiers-1-up_to"' in page
    assert 'name="charges-0-tiers-1-up_to" value' not in page
    assert "0E-10" not in page
    for label in ("Up to", "Unit price", "Flat fee"):
        assert f">{label}" in page
    assert "Empty means no limit" in page


def test_the_currency_is_picked_from_a_list(finance_client, pro):
    page = finance_client.get(f"/admin/plans/planversion/add/?plan={pro.plan_id}").content.decode()

    assert '<select name="currency"' in page
    assert '<option value="USD" selected>USD — US Dollar</option>' in page
    assert '<option value="EUR">EUR — Euro</option>' in page


# The meter picker


def test_the_meter_picker_finds_names_and_codes_before_event_names(finance_client):
    # given: three meters of LLM events; only two say "llm" in their name or code
    MeterFactory(code="gpt4o_input_tokens", name="GPT-4o input tokens", event_name="llm.call")
    MeterFactory(code="spend", name="Model spend on llm calls", event_name="llm.call")
    MeterFactory(code="llm_tokens", name="LLM tokens", event_name="llm.call")

    # when
    response = finance_client.get(
        "/admin/autocomplete/",
        {"app_label": "plans", "model_name": "charge", "field_name": "meter", "term": "llm"},
    )

    # then
    assert [r["text"] for r in response.json()["results"]] == [
        "LLM tokens (llm_tokens)",
        "Model spend on llm calls (spend)",
        "GPT-4o input tokens (gpt4o_input_tokens)",
    ]

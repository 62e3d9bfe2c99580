"""Entitlements in the admin: the feature catalog (created and changed through
plans.features; code, and kind once granted, read-only; never deleted once
granted) and the features inline of a plan version's page (typed as text,
checked by the feature's kind, saved with the version through the services,
read-only once the version is published)."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.subscriptions.lifecycle import subscription_create
from plans.feature_grants import FeatureGrant, feature_value
from plans.feature_text import value_from_text, value_input, value_text
from plans.features import feature_create
from plans.models import Feature, PlanVersion, VersionFeature
from plans.overrides import Overrides
from plans.selectors import version_spec
from plans.services import plan_version_copy_as_draft
from tests.factories import CustomerFactory, published_version
from tests.plans.test_admin import version_post

pytestmark = pytest.mark.django_db

CODE_RULE = "Use 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"


@pytest.fixture
def features(db) -> dict[str, Feature]:
    return {
        feature.code: feature
        for feature in (
            feature_create(code="sso", name="Single sign-on", kind="boolean"),
            feature_create(code="max_projects", name="Projects", kind="config"),
            feature_create(code="models", name="Models", kind="config"),
            feature_create(code="audit_log", name="Audit log", kind="boolean"),
        )
    }


@pytest.fixture
def pro(features) -> PlanVersion:
    """Pro v1, published: SSO, 10 projects, the models gpt-4o and o1."""
    return published_version(
        "pro",
        base_fee=D("10.00"),
        features=(
            FeatureGrant("max_projects", 10),
            FeatureGrant("models", ("gpt-4o", "o1")),
            FeatureGrant("sso", True),
        ),
    )


@pytest.fixture
def draft(pro) -> PlanVersion:
    """Pro v2, a draft copied from v1 (its grants too)."""
    return plan_version_copy_as_draft(version=pro)


def stored(version: PlanVersion) -> list[tuple[str, object]]:
    return list(
        VersionFeature.objects.filter(version=version)
        .order_by("feature__code")
        .values_list("feature__code", "value")
    )


def draft_post(draft: PlanVersion, rows: list[dict]) -> dict:
    """The draft's change form with no charges and these feature rows: an
    existing one carries its "id"; "DELETE" ticks its delete box."""
    data = version_post(draft.plan, [], base_fee="10.00")
    existing = [row for row in rows if "id" in row]
    data["features-TOTAL_FORMS"] = str(len(rows))
    data["features-INITIAL_FORMS"] = str(len(existing))
    # Existing rows first, as the page renders them.
    for index, row in enumerate(existing + [row for row in rows if "id" not in row]):
        data[f"features-{index}-feature"] = row["feature"].pk
        data[f"features-{index}-value"] = row["value"]
        if "id" in row:
            data[f"features-{index}-id"] = row["id"]
            data[f"features-{index}-version"] = draft.pk
        if row.get("DELETE"):
            data[f"features-{index}-DELETE"] = "on"
    return data


def existing_rows(version: PlanVersion) -> dict[str, dict]:
    """The version's rows as the page posts them back untouched."""
    return {
        grant.feature.code: {
            "id": grant.pk,
            "feature": grant.feature,
            "value": value_input(grant.value),
        }
        for grant in version.features.select_related("feature")
    }


def feature_forms(response):
    """The features inline's forms on a page that was sent back with errors."""
    formset = next(
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is VersionFeature
    )
    return formset.forms


# The catalog


def test_a_feature_is_created_through_the_service_and_listed_with_its_grants(
    admin_client, features, pro, draft
):
    # when
    response = admin_client.post(
        "/admin/plans/feature/add/",
        {"code": "api_access", "name": "  API access ", "kind": "boolean", "description": ""},
    )

    # then: stored as the service stores it (the name stripped), with a history row
    assert response.status_code == 302
    feature = Feature.objects.get(code="api_access")
    assert (feature.name, feature.kind, feature.description) == ("API access", "boolean", "")
    history = feature.history.get()
    assert (history.history_type, history.history_user.username) == ("+", "admin")
    # and the list counts the versions granting each feature: v1 and its draft copy
    listing = admin_client.get("/admin/plans/feature/").content.decode()
    rows = re.findall(r'>([a-z_]+)</a></th>.*?"field-version_count">(\d+)</td>', listing)
    assert rows == [
        ("api_access", "0"),
        ("audit_log", "0"),
        ("max_projects", "2"),
        ("models", "2"),
        ("sso", "2"),
    ]


@pytest.mark.parametrize(
    ("code", "errors"),
    [
        ("single sign-on", {"code": [CODE_RULE]}),
        ("-sso", {"code": [CODE_RULE]}),
        ("sso", {"code": ["Feature with this Code already exists."]}),
    ],
)
def test_a_bad_code_is_an_error_on_its_field_and_creates_nothing(
    admin_client, features, code, errors
):
    response = admin_client.post(
        "/admin/plans/feature/add/",
        {"code": code, "name": "SSO", "kind": "boolean", "description": ""},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert sorted(Feature.objects.values_list("code", flat=True)) == [
        "audit_log",
        "max_projects",
        "models",
        "sso",
    ]


def test_the_kind_changes_until_a_version_grants_the_feature(admin_client, features, pro):
    audit_log, sso = features["audit_log"], features["sso"]
    change = "/admin/plans/feature/{}/change/"

    # given: audit_log, granted by no version, and sso, granted by pro v1
    free_page = admin_client.get(change.format(audit_log.pk)).content.decode()
    granted_page = admin_client.get(change.format(sso.pk)).content.decode()
    assert 'name="kind"' in free_page and 'name="code"' not in free_page
    assert 'name="kind"' not in granted_page and 'name="code"' not in granted_page

    # when: each is posted with another kind, name and description (and a code)
    for feature in (audit_log, sso):
        response = admin_client.post(
            change.format(feature.pk),
            {"code": "renamed", "name": "Renamed", "kind": "config", "description": "Why"},
        )
        assert response.status_code == 302

    # then: the code never changed; the kind only where no version grants it
    audit_log.refresh_from_db()
    sso.refresh_from_db()
    assert (audit_log.code, audit_log.name, audit_log.kind) == ("audit_log", "Renamed", "config")
    assert (sso.code, sso.name, sso.kind, sso.description) == ("sso", "Renamed", "boolean", "Why")
    assert [h.history_type for h in sso.history.order_by("history_id")] == ["+", "~"]


def test_a_granted_feature_is_not_deleted(admin_client, features, pro):
    # given: sso granted by pro v1; audit_log only named by a deal; beta_access
    # granted by no version and named by no deal: only the last may go
    beta = feature_create(code="beta_access", name="Beta access", kind="boolean")
    customer = CustomerFactory(external_id="acme")
    subscription_create(
        customer=customer,
        plan=pro.plan,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        overrides=Overrides(features=(FeatureGrant("audit_log", True),)),
    )
    sso, audit_log = features["sso"], features["audit_log"]

    # when
    pages = [
        admin_client.post(f"/admin/plans/feature/{f.pk}/delete/", {"post": "yes"})
        for f in (sso, audit_log)
    ]
    bulk = admin_client.post(
        "/admin/plans/feature/",
        {"action": "delete_selected", "_selected_action": [sso.pk, audit_log.pk], "post": "yes"},
    )
    free = admin_client.post(f"/admin/plans/feature/{beta.pk}/delete/", {"post": "yes"})

    # then: the granted ones refused in words, on their pages (inside the admin,
    # not a bare 403) and in the list's action, naming features by their names
    assert [page.status_code for page in pages] == [409, 409]
    sso_page, audit_page = (page.content.decode() for page in pages)
    assert f"Single sign-on is granted by {pro}: it stays while they grant it." in sso_page
    assert "Audit log is named by a subscription&#x27;s deal" in audit_page
    assert 'id="site-name"' in sso_page  # the admin's own chrome
    assert bulk.status_code == 200
    refusal = bulk.content.decode()
    assert "<h1>Cannot delete features</h1>" in refusal
    assert f"Single sign-on is granted by {pro}" in refusal
    assert "Audit log is named by a subscription&#x27;s deal" in refusal
    assert "sso:" not in refusal and "plan version(s)" not in refusal
    assert "permission" not in refusal
    assert free.status_code == 302
    assert sorted(Feature.objects.values_list("code", flat=True)) == [
        "audit_log",
        "max_projects",
        "models",
        "sso",
    ]


# The features inline of a plan version


def test_a_drafts_features_are_saved_and_read_back_by_version_spec(admin_client, features, draft):
    # given: the draft's grants as copied, changed on its page: SSO off, 50
    # projects, the models row deleted, audit log and a list of one added
    rows = existing_rows(draft)
    data = draft_post(
        draft,
        [
            {**rows["sso"], "value": "No"},
            {**rows["max_projects"], "value": " 50 "},
            {**rows["models"], "DELETE": True},
            {"feature": features["audit_log"], "value": "true"},
        ],
    )

    # when
    response = admin_client.post(f"/admin/plans/planversion/{draft.pk}/change/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    assert version_spec(version=draft).features == (
        FeatureGrant("audit_log", True),
        FeatureGrant("max_projects", 50),
        FeatureGrant("sso", False),
    )
    assert stored(draft) == [("audit_log", True), ("max_projects", 50), ("sso", False)]

    # when: a list is typed, of two texts and of one
    rows = existing_rows(draft)
    data = draft_post(
        draft,
        [
            *rows.values(),
            {"feature": features["models"], "value": "gpt-4o ,o1"},
        ],
    )
    assert admin_client.post(f"/admin/plans/planversion/{draft.pk}/change/", data).status_code == (
        302
    )
    assert stored(draft) == [
        ("audit_log", True),
        ("max_projects", 50),
        ("models", ["gpt-4o", "o1"]),
        ("sso", False),
    ]
    # and the page shows them as typed
    page = admin_client.get(f"/admin/plans/planversion/{draft.pk}/change/").content.decode()
    assert 'value="gpt-4o, o1"' in page and 'value="no"' in page and 'value="50"' in page


def test_an_unchanged_row_keeps_its_stored_value(admin_client, features, draft):
    # given: a value the text box cannot say exactly (set through the API)
    VersionFeature.objects.filter(version=draft, feature__code="models").update(
        value=["gpt-4o, mini"]
    )
    rows = existing_rows(draft)
    page = admin_client.get(f"/admin/plans/planversion/{draft.pk}/change/").content.decode()
    assert 'value="[gpt-4o, mini]"' in page

    # when: the page is saved as shown
    data = draft_post(draft, [*rows.values()])
    data["features-1-value"] = "[gpt-4o, mini]"  # rows: max_projects, models, sso
    response = admin_client.post(f"/admin/plans/planversion/{draft.pk}/change/", data)

    # then
    assert response.status_code == 302
    assert stored(draft) == [("max_projects", 10), ("models", ["gpt-4o, mini"]), ("sso", True)]


@pytest.mark.parametrize(
    ("code", "value", "errors"),
    [
        ("sso", "maybe", {"value": ['This feature is on or off: enter "yes" or "no".']}),
        ("sso", "", {"value": ["This field is required."]}),
        (
            "max_projects",
            "1,000",
            {
                "value": [
                    "1,000 reads as a number with thousands separators: write it 1000, "
                    "or [1, 000] for a list of texts."
                ]
            },
        ),
        (
            "max_projects",
            "10000000000000000",
            {"value": ["Too large a number: at most 1,000,000,000,000,000 either way."]},
        ),
        (
            "models",
            "gpt-4o,,o1",
            {"value": ["The list has an empty item: separate its texts by single commas."]},
        ),
        (
            "models",
            "x" * 256,
            {"value": ["Too long a text: at most 255 characters (this one has 256)."]},
        ),
        (
            "models",
            ", ".join(["m"] * 101),
            {"value": ["Too long a list: at most 100 texts (this one has 101)."]},
        ),
    ],
)
def test_a_bad_value_is_an_error_on_its_field_and_saves_nothing(
    admin_client, features, draft, code, value, errors
):
    # given
    rows = existing_rows(draft)
    before = stored(draft)

    # when
    data = draft_post(draft, [*rows.values(), {"feature": features["audit_log"], "value": "yes"}])
    index = list(rows).index(code)
    data[f"features-{index}-value"] = value
    response = admin_client.post(f"/admin/plans/planversion/{draft.pk}/change/", data)

    # then
    assert response.status_code == 200
    assert [form.errors for form in feature_forms(response)] == [
        errors if i == index else {} for i in range(4)
    ]
    assert stored(draft) == before


def test_a_feature_granted_twice_is_an_error_on_the_second_row(admin_client, features, draft):
    rows = existing_rows(draft)
    before = stored(draft)
    data = draft_post(draft, [*rows.values(), {"feature": features["sso"], "value": "no"}])

    response = admin_client.post(f"/admin/plans/planversion/{draft.pk}/change/", data)

    assert response.status_code == 200
    assert [form.errors for form in feature_forms(response)] == [
        {},
        {},
        {},
        {"feature": ["Single sign-on is granted above already: one row per feature."]},
    ]
    assert stored(draft) == before


def test_a_new_version_is_created_with_its_features(admin_client, features, pro):
    data = version_post(
        pro.plan,
        [],
        base_fee="12.00",
        features=(
            {"feature": features["sso"].pk, "value": "yes"},
            {"feature": features["models"].pk, "value": "[o1]"},
        ),
    )

    response = admin_client.post("/admin/plans/planversion/add/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    created = PlanVersion.objects.get(plan=pro.plan, number=2)
    assert version_spec(version=created).features == (
        FeatureGrant("models", ("o1",)),
        FeatureGrant("sso", True),
    )


def test_a_published_versions_features_are_read_only(admin_client, features, pro):
    # given
    url = f"/admin/plans/planversion/{pro.pk}/change/"
    before = stored(pro)

    # when: the page is a view page, and a forged POST is refused
    page = admin_client.get(url).content.decode()
    rows = existing_rows(pro)
    data = draft_post(
        pro,
        [{**rows["sso"], "value": "no"}, {"feature": features["audit_log"], "value": "yes"}],
    )
    response = admin_client.post(url, data)

    # then: the values shown in words, nothing to type in, nothing changed
    assert 'name="features-0-value"' not in page
    shown = re.findall(
        r'field-feature_name">\s*<p>(.*?)</p>.*?field-granted_value">\s*<p>(.*?)</p>', page, re.S
    )
    assert shown == [
        ("Projects (max_projects)", "10"),
        ("Models (models)", "gpt-4o, o1"),
        ("Single sign-on (sso)", "Yes"),
    ]
    assert response.status_code == 403
    assert stored(pro) == before
    assert version_spec(version=pro).features == (
        FeatureGrant("max_projects", 10),
        FeatureGrant("models", ("gpt-4o", "o1")),
        FeatureGrant("sso", True),
    )


@pytest.mark.parametrize("feature_permissions", [[], ["view_versionfeature"]])
def test_saving_a_draft_without_the_feature_permissions_keeps_its_features(
    features, draft, feature_permissions
):
    # given: an editor of versions and charges who may not change features
    user = User.objects.create_user(username="editor", is_staff=True)
    names = ["view_planversion", "change_planversion", "view_charge", *feature_permissions]
    user.user_permissions.set(Permission.objects.filter(codename__in=names))
    client = Client()
    client.force_login(user)
    before = stored(draft)
    data = {**draft_post(draft, list(existing_rows(draft).values())), "base_fee": "15.00"}

    # when
    response = client.post(f"/admin/plans/planversion/{draft.pk}/change/", data)

    # then: the terms changed, the features as they were
    assert response.status_code == 302, response.content.decode()[:3000]
    draft.refresh_from_db()
    assert draft.base_fee == D("15.00")
    assert stored(draft) == before


# The text finance types and reads


@pytest.mark.parametrize(
    ("kind", "value", "typed", "read"),
    [
        ("boolean", True, "yes", "Yes"),
        ("boolean", False, "no", "No"),
        ("config", 50, "50", "50"),
        ("config", 1_000_000, "1000000", "1,000,000"),
        ("config", 0.5, "0.5", "0.5"),
        ("config", -3, "-3", "-3"),
        ("config", "gpt-4o", "gpt-4o", "gpt-4o"),
        ("config", ["gpt-4o", "o1"], "gpt-4o, o1", "gpt-4o, o1"),
        ("config", ["o1"], "[o1]", "o1"),
        ("config", [], "[]", "none"),
    ],
)
def test_a_value_is_typed_and_read_back_as_itself(kind, value, typed, read):
    assert value_input(value) == typed
    assert value_from_text(kind, typed) == feature_value(kind, value)
    assert value_text(value) == read

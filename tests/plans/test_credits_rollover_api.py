"""Issue 52: a plan version's `credits_rollover` through the API: written and read
back as one object beside `credits_per_period` (still a decimal string), null by
default; refused in words with nothing written; immutable once published."""

from decimal import Decimal as D

import pytest

from plans.models import PlanVersion
from tests.plans.test_catalog_api import assert_error, assert_only_field_error, overage, plan_body

ROLLOVER = {"rollover_percent": "50", "expires_after_periods": 2}


def test_a_version_takes_a_rollover_and_reads_it_back(api, catalog_meters):
    body = plan_body(overage(), credits_per_period="1000", credits_rollover=ROLLOVER)

    response = api.post("/api/v1/plans", body, format="json")

    assert response.status_code == 201, response.content
    (version,) = response.json()["versions"]
    assert version["credits_per_period"] == "1000"
    assert version["credits_rollover"] == {"rollover_percent": "50", "expires_after_periods": 2}
    assert "credits_rollover_percent" not in version
    stored = PlanVersion.objects.get(plan__code="p", number=1)
    assert (stored.credits_rollover_percent, stored.credits_rollover_periods) == (D(50), 2)
    # Read again, as GET answers.
    got = api.get("/api/v1/plans/p").json()["versions"][0]
    assert got["credits_rollover"] == {"rollover_percent": "50", "expires_after_periods": 2}


def test_a_new_version_takes_a_rollover_of_its_own(api, catalog_meters):
    api.post("/api/v1/plans", plan_body(overage(), credits_per_period="1000"), format="json")
    body = plan_body(overage(), credits_per_period="1000")
    body.pop("code"), body.pop("name")
    body["credits_rollover"] = {"rollover_percent": "12.5", "expires_after_periods": 1}

    response = api.post("/api/v1/plans/p/versions", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["credits_rollover"] == {
        "rollover_percent": "12.5",
        "expires_after_periods": 1,
    }
    first = api.get("/api/v1/plans/p").json()["versions"][0]
    assert first["credits_rollover"] is None


@pytest.mark.parametrize("rollover", [None, "absent"])
def test_no_rollover_is_the_default(api, catalog_meters, rollover):
    terms = {"credits_per_period": "1000"}
    if rollover != "absent":
        terms["credits_rollover"] = rollover

    response = api.post("/api/v1/plans", plan_body(overage(), **terms), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["versions"][0]["credits_rollover"] is None
    stored = PlanVersion.objects.get(plan__code="p")
    assert (stored.credits_rollover_percent, stored.credits_rollover_periods) == (None, None)


@pytest.mark.parametrize(
    "terms, path, message",
    [
        (
            {"credits_per_period": None, "credits_rollover": ROLLOVER},
            "credits_rollover",
            "Only credits granted each period roll over",
        ),
        (
            {"credits_per_period": "0", "credits_rollover": ROLLOVER},
            "credits_rollover",
            "Only credits granted each period roll over",
        ),
        (
            {"credits_rollover": {"rollover_percent": "0", "expires_after_periods": 2}},
            "credits_rollover.rollover_percent",
            "Must be more than zero",
        ),
        (
            {"credits_rollover": {"rollover_percent": "-5", "expires_after_periods": 2}},
            "credits_rollover.rollover_percent",
            "Must be more than zero",
        ),
        (
            {"credits_rollover": {"rollover_percent": "100.01", "expires_after_periods": 2}},
            "credits_rollover.rollover_percent",
            "At most 100",
        ),
        (
            {"credits_rollover": {"rollover_percent": "33.33333", "expires_after_periods": 2}},
            "credits_rollover.rollover_percent",
            "At most 4 decimal places",
        ),
        (
            {"credits_rollover": {"rollover_percent": "fifty", "expires_after_periods": 2}},
            "credits_rollover.rollover_percent",
            "must be a decimal number",
        ),
        (
            {"credits_rollover": {"expires_after_periods": 2}},
            "credits_rollover.rollover_percent",
            "Give the percent of the unused credits that rolls over",
        ),
        (
            {"credits_rollover": {"rollover_percent": "50", "expires_after_periods": 0}},
            "credits_rollover.expires_after_periods",
            "Enter 1 to 120 periods",
        ),
        (
            {"credits_rollover": {"rollover_percent": "50", "expires_after_periods": 1.5}},
            "credits_rollover.expires_after_periods",
            None,
        ),
        (
            {"credits_rollover": {"rollover_percent": "50"}},
            "credits_rollover.expires_after_periods",
            "Give after how many periods the rolled-over credits expire",
        ),
        (
            {"credits_rollover": {**ROLLOVER, "expires_after_days": 60}},
            "credits_rollover.expires_after_days",
            "unknown field",
        ),
        (
            {"credits_rollover": "50"},
            "credits_rollover.non_field_errors",
            "Expected a dictionary",
        ),
    ],
)
def test_a_bad_rollover_is_refused_in_words_and_nothing_is_written(
    api, catalog_meters, row_counts, terms, path, message
):
    terms = {"credits_per_period": "1000"} | terms
    before = row_counts()

    response = api.post("/api/v1/plans", plan_body(overage(), **terms), format="json")

    assert_only_field_error(response, path, message)
    assert row_counts() == before


def test_a_rollover_alone_on_a_version_without_credits_names_both_problems(
    api, catalog_meters, row_counts
):
    before = row_counts()
    body = plan_body(overage(), credits_rollover={"rollover_percent": "150"})

    response = api.post("/api/v1/plans", body, format="json")

    error = assert_error(response, 400, "invalid_request")
    assert set(error["fields"]) == {
        "credits_rollover",
        "credits_rollover.rollover_percent",
        "credits_rollover.expires_after_periods",
    }
    assert row_counts() == before


def test_a_published_rollover_never_changes_and_a_draft_copy_keeps_it(db):
    from dataclasses import replace

    from common.errors import Conflict
    from plans.selectors import version_spec
    from plans.services import plan_version_copy_as_draft, plan_version_update
    from tests.factories import published_version

    v1 = published_version(
        "pro",
        credits_per_period=D(1000),
        credits_rollover_percent=D(50),
        credits_rollover_periods=2,
    )
    spec = version_spec(version=v1)

    with pytest.raises(Conflict):
        plan_version_update(version=v1, spec=replace(spec, credits_rollover_percent=D(80)))

    v1.refresh_from_db()
    assert (v1.credits_rollover_percent, v1.credits_rollover_periods) == (D(50), 2)
    v2 = plan_version_copy_as_draft(version=v1)
    assert (v2.credits_rollover_percent, v2.credits_rollover_periods) == (D(50), 2)

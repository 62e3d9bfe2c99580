"""The catalog API: the error envelope, meters, plans and their versions, credit packs.

Every refused request also shows that nothing changed: row counts of the catalog,
customer and key tables, or a version's stored terms, charges and tiers.
"""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from plans.models import Charge, CreditPack, Meter, Plan, PlanVersion, PriceTier

# API.md's plan example, verbatim.
AI_ASSISTANT = {
    "code": "ai_assistant",
    "name": "AI Assistant",
    "currency": "USD",
    "interval": "month",
    "base_fee": "19.99",
    "seat_price": None,
    "minimum_commitment": None,
    "trial_days": 0,
    "credits_per_period": None,
    "publish": True,
    "charges": [
        {
            "meter": "prompts",
            "model": "overage",
            "included_units": "200",
            "pricing": {"scheme": "per_unit", "unit_price": "0.05"},
        },
        {"meter": "sms", "model": "hard_cap", "included_units": "500"},
        {"meter": "agent_runs", "model": "credits", "credits_per_unit": "1"},
        {
            "meter": "gpt4o_input_tokens",
            "model": "balance",
            "pricing": {"scheme": "per_unit", "unit_price": "0.0000025"},
        },
    ],
}

GRADUATED = {
    "scheme": "graduated",
    "tiers": [
        {"up_to": "4000000", "unit_price": "0.000008", "flat_fee": "0"},
        {"up_to": None, "unit_price": "0.000006"},
    ],
}


def plan_body(*charges: dict, **terms) -> dict:
    """A small USD plan with the given charges; `terms` override any top-level field."""
    return (
        {"code": "p", "name": "P", "currency": "USD", "base_fee": "10.00"}
        | {"charges": list(charges)}
        | terms
    )


def overage(meter: str = "prompts", pricing: dict | None = None, **fields) -> dict:
    pricing = {"scheme": "per_unit", "unit_price": "0.05"} if pricing is None else pricing
    return {"meter": meter, "model": "overage", "pricing": pricing} | fields


def tiered(*tiers: tuple, scheme: str = "graduated") -> dict:
    return {
        "scheme": scheme,
        "tiers": [{"up_to": up_to, "unit_price": price} for up_to, price in tiers],
    }


def version_state(code: str, number: int) -> dict:
    """A version's stored terms, charges and tiers, to compare before and after."""
    version = PlanVersion.objects.get(plan__code=code, number=number)
    charges = Charge.objects.filter(version=version).order_by("id")
    return {
        "version": model_to_dict(version),
        "charges": [model_to_dict(c) for c in charges],
        "tiers": [
            model_to_dict(t) for t in PriceTier.objects.filter(charge__in=charges).order_by("id")
        ],
    }


def assert_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == error_type
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def assert_only_field_error(response, path: str, message: str | None = None) -> None:
    """400 invalid_request whose `fields` names exactly this path."""
    error = assert_error(response, 400, "invalid_request")
    assert list(error["fields"]) == [path], error
    if message is not None:
        assert any(message in m for m in error["fields"][path]), error["fields"][path]


@pytest.fixture
def ai_assistant(api, catalog_meters):
    """API.md's plan, created through the API with version 1 published."""
    response = api.post("/api/v1/plans", AI_ASSISTANT, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# The error envelope


@pytest.mark.parametrize(
    "body",
    [b"{bad", b'{"code": "m",}', b"{'code': 'm'}", b'{"code": "m"', b"\xff\xfe", b"nul"],
)
def test_malformed_json_is_400_with_the_envelope(api, row_counts, body):
    before = row_counts()

    response = api.post("/api/v1/meters", data=body, content_type="application/json")

    error = assert_error(response, 400, "invalid_request")
    assert error["message"].startswith("malformed JSON: ")
    assert row_counts() == before


@pytest.mark.parametrize("body", [b"[]", b'[{"code": "m"}]', b"123", b'"text"'])
def test_json_that_is_not_an_object_is_400(api, row_counts, body):
    before = row_counts()

    response = api.post("/api/v1/meters", data=body, content_type="application/json")

    error = assert_error(response, 400, "invalid_request")
    assert list(error["fields"]) == ["non_field_errors"]
    assert row_counts() == before


def test_json_null_body_is_400(api, row_counts):
    before = row_counts()

    response = api.post("/api/v1/plans", data=b"null", content_type="application/json")

    error = assert_error(response, 400, "invalid_request")
    assert error["message"] == "No data provided"
    assert row_counts() == before


def test_empty_body_is_400_naming_the_required_fields(api, row_counts):
    before = row_counts()

    response = api.post("/api/v1/meters", data=b"", content_type="application/json")

    error = assert_error(response, 400, "invalid_request")
    assert set(error["fields"]) == {"code", "name", "event_name", "aggregation"}
    assert row_counts() == before


def test_text_plain_body_is_415_with_the_envelope(api, row_counts):
    before = row_counts()

    response = api.post(
        "/api/v1/meters", data=b'{"code": "m"}', content_type="text/plain; charset=utf-8"
    )

    error = assert_error(response, 415, "invalid_request")
    assert "text/plain" in error["message"]
    assert row_counts() == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_literals_are_400(api, catalog_meters, row_counts, literal):
    before = row_counts()
    text = (
        '{"code": "p", "name": "P", "currency": "USD", "charges": [], "base_fee": ' + literal + "}"
    )

    response = api.post("/api/v1/plans", data=text.encode(), content_type="application/json")

    error = assert_error(response, 400, "invalid_request")
    assert error["message"] == f"malformed JSON: {literal} is not a number JSON allows"
    assert row_counts() == before


def test_unknown_api_path_is_404_json_envelope(api):
    response = api.get("/api/v1/no-such-thing")

    assert response["Content-Type"] == "application/json"
    error = assert_error(response, 404, "not_found")
    assert error["message"] == "no such path '/api/v1/no-such-thing'"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/meters/nope",
        "/api/v1/plans/nope",
        "/api/v1/plans/nope/versions",
        "/api/v1/plans/nope/versions/1",
        "/api/v1/credit-packs/nope",
    ],
)
def test_unknown_codes_are_404_envelope(api, path):
    assert_error(api.get(path), 404, "not_found")


def test_deeply_nested_json_is_400_not_500(api_key_secret, row_counts):
    # given a small body (200 kB) nested deeper than Python's recursion limit
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
    body = b"[" * 100_000 + b"]" * 100_000
    before = row_counts()

    # when
    response = client.post("/api/v1/meters", data=body, content_type="application/json")

    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {
        "type": "invalid_request",
        "message": "the request body nests deeper than 64 levels",
    }
    assert row_counts() == before


# Meters


@pytest.mark.parametrize(
    "meter",
    [
        {"aggregation": "count", "filters": {"model": ["gpt-4o", "gpt-4o-mini"]}},
        {"aggregation": "sum", "value_property": "input_tokens", "filters": {"model": ["gpt-4o"]}},
        {"aggregation": "max", "value_property": "seats", "filters": {"plan": ["pro", 2, True]}},
        {
            "aggregation": "unique_count",
            "unique_property": "user_id",
            "filters": {"region": ["eu"]},
        },
        {"aggregation": "latest", "value_property": "storage_gb", "filters": {}},
    ],
    ids=lambda m: m["aggregation"],
)
def test_create_meter_for_each_aggregation(api, meter):
    # given
    body = {"code": "m1", "name": "Meter one", "event_name": "llm.completion"} | meter

    # when
    response = api.post("/api/v1/meters", body, format="json")

    # then
    assert response.status_code == 201, response.content
    expected = {
        "value_property": "",
        "unique_property": "",
        "group_by": [],
        "invoice_breakdown": "",
        "unit_code": "C62",
    } | body
    assert {k: v for k, v in response.json().items() if k != "created_at"} == expected
    stored = Meter.objects.get(code="m1")
    assert stored.aggregation == meter["aggregation"]
    assert stored.filters == meter["filters"]
    assert api.get("/api/v1/meters/m1").json() == response.json()


def test_meter_null_properties_are_stored_blank(api):
    body = {
        "code": "runs",
        "name": "Runs",
        "event_name": "agent.run",
        "aggregation": "count",
        "value_property": None,
        "unique_property": None,
    }

    response = api.post("/api/v1/meters", body, format="json")

    assert response.status_code == 201
    assert response.json()["value_property"] == ""
    assert Meter.objects.get(code="runs").unique_property == ""


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            {"aggregation": "sum", "value_property": ""},
            "value_property",
            "A sum of a property needs",
        ),
        ({"aggregation": "max"}, "value_property", "A maximum of a property needs"),
        ({"aggregation": "latest"}, "value_property", "The latest value of a property needs"),
        ({"aggregation": "unique_count"}, "unique_property", "A count of distinct values needs"),
        ({"value_property": "tokens"}, "value_property", "A count of events reads no value"),
        ({"unique_property": "user_id"}, "unique_property", "Only a count of distinct values"),
        (
            {"aggregation": "sum", "value_property": "t", "unique_property": "u"},
            "unique_property",
            "Only a count of distinct values",
        ),
        (
            {"aggregation": "unique_count", "unique_property": "u", "value_property": "t"},
            "value_property",
            "reads no value",
        ),
        ({"aggregation": "median"}, "aggregation", "Pick an aggregation"),
        ({"filters": ["gpt-4o"]}, "filters", "must be an object"),
        ({"filters": "model=gpt-4o"}, "filters", "must be an object"),
        ({"filters": {"model": "gpt-4o"}}, "filters.model", "non-empty list"),
        ({"filters": {"model": []}}, "filters.model", "non-empty list"),
        ({"filters": {"model": [None]}}, "filters.model", "strings, numbers or booleans"),
        ({"filters": {"model": [{"a": 1}]}}, "filters.model", "strings, numbers or booleans"),
        ({"filters": {"": ["x"]}}, "filters", "non-empty strings"),
        ({"code": "bad code"}, "code", "letters, digits"),
        ({"code": "-leading"}, "code", "letters, digits"),
        ({"code": "a/b"}, "code", "letters, digits"),
        ({"name": "   "}, "name", None),
        ({"event_name": ""}, "event_name", None),
    ],
)
def test_create_meter_refused_with_field_error(api, row_counts, change, path, message):
    # given
    body = {"code": "m1", "name": "M", "event_name": "e", "aggregation": "count"} | change
    before = row_counts()

    # when
    response = api.post("/api/v1/meters", body, format="json")

    # then
    assert_only_field_error(response, path, message)
    assert row_counts() == before


def test_duplicate_meter_code_is_409(api, catalog_meters, row_counts):
    # given
    before = row_counts()
    body = {"code": "prompts", "name": "Other", "event_name": "other", "aggregation": "count"}

    # when
    response = api.post("/api/v1/meters", body, format="json")

    # then
    error = assert_error(response, 409, "conflict")
    assert error["fields"] == {"code": ["already exists"]}
    assert row_counts() == before
    assert Meter.objects.get(code="prompts").event_name == "prompt"


def test_meters_list_is_paginated_with_a_working_next_link(api, catalog_meters):
    # given 4 meters, created in the order of catalog_meters
    created = list(catalog_meters)

    # when
    first = api.get("/api/v1/meters?limit=2")

    # then
    assert first.status_code == 200
    page = first.json()
    assert set(page) == {"results", "next"}
    assert [m["code"] for m in page["results"]] == created[:2]
    assert page["next"].startswith("http://testserver/api/v1/meters?")
    second = api.get(page["next"]).json()
    assert [m["code"] for m in second["results"]] == created[2:]
    assert second["next"] is None


def test_meters_list_without_limit_has_every_meter_and_no_next(api, catalog_meters):
    page = api.get("/api/v1/meters").json()

    assert len(page["results"]) == 4
    assert page["next"] is None


# Plans: create


def test_create_plan_with_the_api_md_example(api, catalog_meters):
    # when
    response = api.post("/api/v1/plans", AI_ASSISTANT, format="json")

    # then
    assert response.status_code == 201, response.content
    plan = response.json()
    assert plan["code"] == "ai_assistant"
    assert plan["name"] == "AI Assistant"
    assert plan["latest_published"] == 1
    [version] = plan["versions"]
    assert version["number"] == 1
    assert version["status"] == "published"
    assert version["published_at"]
    assert version["currency"] == "USD"
    assert version["interval"] == "month"
    assert version["base_fee"] == "19.99"
    assert version["seat_price"] is None
    assert version["minimum_commitment"] is None
    assert version["trial_days"] == 0
    assert version["credits_per_period"] is None
    assert version["progressive_billing_threshold"] is None
    assert version["charges"] == [
        {
            "meter": "prompts",
            "model": "overage",
            "when_exhausted": None,
            "included_units": "200",
            "credits_per_unit": None,
            "pricing": {
                "scheme": "per_unit",
                "unit_price": "0.05",
                "per": "1",
                "package_size": None,
                "package_price": None,
                "tiers": [],
            },
        },
        {
            "meter": "sms",
            "model": "hard_cap",
            "when_exhausted": None,
            "included_units": "500",
            "credits_per_unit": None,
            "pricing": None,
        },
        {
            "meter": "agent_runs",
            "model": "credits",
            "when_exhausted": "block",
            "included_units": None,
            "credits_per_unit": "1",
            "pricing": None,
        },
        {
            "meter": "gpt4o_input_tokens",
            "model": "balance",
            "when_exhausted": "block",
            "included_units": None,
            "credits_per_unit": None,
            "pricing": {
                "scheme": "per_unit",
                "unit_price": "0.0000025",
                "per": "1",
                "package_size": None,
                "package_price": None,
                "tiers": [],
            },
        },
    ]
    stored = PlanVersion.objects.get(plan__code="ai_assistant", number=1)
    assert stored.status == PlanVersion.PUBLISHED
    assert stored.base_fee == Decimal("19.99")
    assert Charge.objects.get(version=stored, meter__code="gpt4o_input_tokens").unit_price == (
        Decimal("0.0000025")
    )
    assert api.get("/api/v1/plans/ai_assistant").json() == plan


def test_create_plan_without_publish_is_a_draft(api, catalog_meters):
    body = AI_ASSISTANT | {"publish": False}

    response = api.post("/api/v1/plans", body, format="json")

    assert response.status_code == 201
    assert response.json()["latest_published"] is None
    assert response.json()["versions"][0]["status"] == "draft"
    assert response.json()["versions"][0]["published_at"] is None


def test_decimals_given_as_json_numbers_come_back_as_exact_strings(api, catalog_meters):
    # given numbers, not strings (0.0000025 goes over the wire as 2.5e-06)
    body = plan_body(
        overage(pricing={"scheme": "per_unit", "unit_price": 0.0000025}, included_units=200),
        base_fee=19.99,
        seat_price=10,
        minimum_commitment=100.5,
        credits_per_period=1000,
    )

    # when
    response = api.post("/api/v1/plans", body, format="json")

    # then
    assert response.status_code == 201, response.content
    version = response.json()["versions"][0]
    assert version["base_fee"] == "19.99"
    assert version["seat_price"] == "10.00"
    assert version["minimum_commitment"] == "100.50"
    assert version["credits_per_period"] == "1000"
    assert version["charges"][0]["included_units"] == "200"
    assert version["charges"][0]["pricing"]["unit_price"] == "0.0000025"
    assert PlanVersion.objects.get().base_fee == Decimal("19.99")


@pytest.mark.parametrize(
    ("pricing", "expected"),
    [
        (
            {"scheme": "per_unit", "unit_price": "0.05"},
            {
                "scheme": "per_unit",
                "unit_price": "0.05",
                "per": "1",
                "package_size": None,
                "package_price": None,
                "tiers": [],
            },
        ),
        (
            {"scheme": "package", "package_size": "1000", "package_price": "0.03"},
            {
                "scheme": "package",
                "unit_price": None,
                "per": "1",
                "package_size": "1000",
                "package_price": "0.03",
                "tiers": [],
            },
        ),
        (
            {
                "scheme": "graduated",
                "tiers": [
                    {"up_to": "4000000", "unit_price": "0.000008", "flat_fee": "5"},
                    {"up_to": "10000000", "unit_price": "0.000007"},
                    {"up_to": None, "unit_price": "0.000006", "flat_fee": "1.5"},
                ],
            },
            {
                "scheme": "graduated",
                "unit_price": None,
                "per": "1",
                "package_size": None,
                "package_price": None,
                "tiers": [
                    {"up_to": "4000000", "unit_price": "0.000008", "per": "1", "flat_fee": "5"},
                    {"up_to": "10000000", "unit_price": "0.000007", "per": "1", "flat_fee": "0"},
                    {"up_to": None, "unit_price": "0.000006", "per": "1", "flat_fee": "1.5"},
                ],
            },
        ),
        (
            {
                "scheme": "volume",
                "tiers": [
                    {"up_to": "1000", "unit_price": "0.01"},
                    {"up_to": None, "unit_price": "0.008"},
                ],
            },
            {
                "scheme": "volume",
                "unit_price": None,
                "per": "1",
                "package_size": None,
                "package_price": None,
                "tiers": [
                    {"up_to": "1000", "unit_price": "0.01", "per": "1", "flat_fee": "0"},
                    {"up_to": None, "unit_price": "0.008", "per": "1", "flat_fee": "0"},
                ],
            },
        ),
        (
            {"scheme": "volume", "tiers": [{"up_to": None, "unit_price": "0.5"}]},
            {
                "scheme": "volume",
                "unit_price": None,
                "per": "1",
                "package_size": None,
                "package_price": None,
                "tiers": [{"up_to": None, "unit_price": "0.5", "per": "1", "flat_fee": "0"}],
            },
        ),
    ],
    ids=["per_unit", "package", "graduated", "volume", "volume_one_open_tier"],
)
def test_each_pricing_scheme_is_accepted(api, catalog_meters, pricing, expected):
    response = api.post("/api/v1/plans", plan_body(overage(pricing=pricing)), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["versions"][0]["charges"][0]["pricing"] == expected
    assert PriceTier.objects.count() == len(expected["tiers"])


def test_prices_per_a_larger_size_are_read_and_written(api, catalog_meters):
    # given: 2.50 per million tokens, and volume tiers per 1,000
    per_million = {"scheme": "per_unit", "unit_price": "2.50", "per": "1000000"}
    per_thousand = {
        "scheme": "volume",
        "tiers": [
            {"up_to": "10000", "unit_price": "0.50", "per": "1000"},
            {"up_to": None, "unit_price": "0.40", "per": 1000, "flat_fee": "1.00"},
        ],
    }
    body = plan_body(
        overage("gpt4o_input_tokens", pricing=per_million), overage(pricing=per_thousand)
    )

    # when
    response = api.post("/api/v1/plans", body, format="json")

    # then
    assert response.status_code == 201, response.content
    charges = response.json()["versions"][0]["charges"]
    assert charges[0]["pricing"] == {
        "scheme": "per_unit",
        "unit_price": "2.5",
        "per": "1000000",
        "package_size": None,
        "package_price": None,
        "tiers": [],
    }
    assert charges[1]["pricing"]["per"] == "1"
    assert charges[1]["pricing"]["tiers"] == [
        {"up_to": "10000", "unit_price": "0.5", "per": "1000", "flat_fee": "0"},
        {"up_to": None, "unit_price": "0.4", "per": "1000", "flat_fee": "1"},
    ]
    assert list(PriceTier.objects.values_list("per", flat=True)) == [Decimal(1000), Decimal(1000)]


def test_pricing_currency_equal_to_the_version_currency_is_accepted(api, catalog_meters):
    pricing = {"scheme": "per_unit", "unit_price": "0.05", "currency": "USD"}

    response = api.post("/api/v1/plans", plan_body(overage(pricing=pricing)), format="json")

    assert response.status_code == 201, response.content


def test_jpy_base_fee_without_decimals_is_accepted(api, catalog_meters):
    response = api.post("/api/v1/plans", plan_body(currency="JPY", base_fee="100"), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["versions"][0]["base_fee"] == "100"
    assert response.json()["versions"][0]["currency"] == "JPY"


# Plans: every validation rule refused with its field path

PER_UNIT = {"scheme": "per_unit", "unit_price": "0.05"}

REFUSED_CHARGES = [
    pytest.param(
        [overage("prompts"), overage("prompts")],
        "charges.1.meter",
        "charged already (charge 1)",
        id="duplicate_meter",
    ),
    pytest.param(
        [overage("no_such_meter")], "charges.0.meter", "Unknown meter", id="unknown_meter"
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "1"), ("50", "1"), (None, "1")))],
        "charges.0.pricing.tiers.1.up_to",
        "Tiers must rise",
        id="tiers_descending",
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "1"), ("100", "1"), (None, "1")))],
        "charges.0.pricing.tiers.1.up_to",
        "Tiers must rise",
        id="tiers_repeated_bound",
    ),
    pytest.param(
        [overage(pricing=tiered(("0", "1"), (None, "1")))],
        "charges.0.pricing.tiers.0.up_to",
        "more than zero",
        id="first_tier_up_to_zero",
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "1"), (None, "1"), (None, "1")))],
        "charges.0.pricing.tiers.1.up_to",
        "Only the last tier has no upper limit",
        id="middle_tier_open",
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "1"), ("200", "1")))],
        "charges.0.pricing.tiers.1.up_to",
        "The last tier needs no upper limit",
        id="last_tier_closed",
    ),
    pytest.param(
        [overage(pricing={"scheme": "graduated", "tiers": []})],
        "charges.0.pricing.tiers",
        "at least one tier",
        id="graduated_without_tiers",
    ),
    pytest.param(
        [overage(pricing={"scheme": "volume"})],
        "charges.0.pricing.tiers",
        "at least one tier",
        id="volume_without_tiers",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": "-0.05"})],
        "charges.0.pricing.unit_price",
        "Cannot be negative",
        id="negative_unit_price",
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "-1"), (None, "1")))],
        "charges.0.pricing.tiers.0.unit_price",
        "Cannot be negative",
        id="negative_tier_unit_price",
    ),
    pytest.param(
        [
            overage(
                pricing={
                    "scheme": "graduated",
                    "tiers": [{"up_to": None, "unit_price": "1", "flat_fee": "-1"}],
                }
            )
        ],
        "charges.0.pricing.tiers.0.flat_fee",
        "Cannot be negative",
        id="negative_flat_fee",
    ),
    pytest.param(
        [overage(pricing={"scheme": "package", "package_size": "10", "package_price": "-1"})],
        "charges.0.pricing.package_price",
        "Cannot be negative",
        id="negative_package_price",
    ),
    pytest.param(
        [overage(included_units="-1")],
        "charges.0.included_units",
        "Cannot be negative",
        id="negative_included_units",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": "NaN"})],
        "charges.0.pricing.unit_price",
        "must be a finite number",
        id="nan_unit_price",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": "Infinity"})],
        "charges.0.pricing.unit_price",
        "must be a finite number",
        id="infinity_unit_price",
    ),
    pytest.param(
        [overage(included_units="-Infinity")],
        "charges.0.included_units",
        "must be a finite number",
        id="minus_infinity_included_units",
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "1"), ("Infinity", "1"), (None, "1")))],
        "charges.0.pricing.tiers.1.up_to",
        "must be a finite number",
        id="infinity_up_to",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": "0.00000000001"})],
        "charges.0.pricing.unit_price",
        "at most 10 decimal places",
        id="eleven_decimal_places",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": "abc"})],
        "charges.0.pricing.unit_price",
        "must be a decimal number like 12.50",
        id="not_a_number",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": True})],
        "charges.0.pricing.unit_price",
        "must be a decimal number like 12.50",
        id="boolean_unit_price",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit"})],
        "charges.0.pricing.unit_price",
        "needs its unit price",
        id="per_unit_without_unit_price",
    ),
    pytest.param(
        [{"meter": "agent_runs", "model": "credits"}],
        "charges.0.credits_per_unit",
        "needs the credits each unit uses",
        id="credits_without_credits_per_unit",
    ),
    pytest.param(
        [{"meter": "agent_runs", "model": "credits", "credits_per_unit": "0"}],
        "charges.0.credits_per_unit",
        "more than zero",
        id="credits_per_unit_zero",
    ),
    pytest.param(
        [{"meter": "agent_runs", "model": "credits", "credits_per_unit": "-1"}],
        "charges.0.credits_per_unit",
        "more than zero",
        id="credits_per_unit_negative",
    ),
    pytest.param(
        [{"meter": "agent_runs", "model": "credits", "credits_per_unit": "1", "pricing": PER_UNIT}],
        "charges.0.pricing",
        "A credits charge has no price",
        id="credits_with_pricing",
    ),
    pytest.param(
        [overage(credits_per_unit="1")],
        "charges.0.credits_per_unit",
        "Only credits charges use credits",
        id="overage_with_credits_per_unit",
    ),
    pytest.param(
        [{"meter": "prompts", "model": "overage", "included_units": "200"}],
        "charges.0.pricing",
        "A soft cap charge needs a price",
        id="overage_without_pricing",
    ),
    pytest.param(
        [{"meter": "gpt4o_input_tokens", "model": "balance", "pricing": None}],
        "charges.0.pricing",
        "A balance charge needs a price",
        id="balance_without_pricing",
    ),
    pytest.param(
        [
            {
                "meter": "gpt4o_input_tokens",
                "model": "balance",
                "included_units": "100",
                "pricing": PER_UNIT,
            }
        ],
        "charges.0.included_units",
        "has no included units",
        id="balance_with_included_units",
    ),
    pytest.param(
        [{"meter": "sms", "model": "hard_cap", "included_units": "500", "pricing": PER_UNIT}],
        "charges.0.pricing",
        "A hard cap charge has no price",
        id="hard_cap_with_pricing",
    ),
    pytest.param(
        [{"meter": "sms", "model": "hard_cap"}],
        "charges.0.included_units",
        "needs its included units",
        id="hard_cap_without_included_units",
    ),
    pytest.param(
        [
            overage(
                pricing={
                    "scheme": "per_unit",
                    "unit_price": "0.05",
                    "tiers": [{"up_to": None, "unit_price": "1"}],
                }
            )
        ],
        "charges.0.pricing.tiers",
        "Only graduated and volume prices have tiers",
        id="per_unit_with_tiers",
    ),
    pytest.param(
        [overage(pricing={"scheme": "graduated", "unit_price": "1", **tiered((None, "1"))})],
        "charges.0.pricing.unit_price",
        "has no unit price here",
        id="graduated_with_unit_price",
    ),
    pytest.param(
        [overage(pricing={"scheme": "package", "package_price": "0.03"})],
        "charges.0.pricing.package_size",
        "needs its package size",
        id="package_without_package_size",
    ),
    pytest.param(
        [overage(pricing={"scheme": "package", "package_size": "0", "package_price": "0.03"})],
        "charges.0.pricing.package_size",
        "more than zero",
        id="package_size_zero",
    ),
    pytest.param(
        [overage(pricing={"scheme": "package", "package_size": "1000"})],
        "charges.0.pricing.package_price",
        "needs the price of one package",
        id="package_without_package_price",
    ),
    pytest.param(
        [overage(pricing={"scheme": "per_unit", "unit_price": "0.05", "currency": "EUR"})],
        "charges.0.pricing.currency",
        "this price is in EUR, the version in USD",
        id="pricing_currency_eur_on_usd",
    ),
    pytest.param(
        [overage(pricing={"scheme": "tiered", "unit_price": "0.05"})],
        "charges.0.pricing.scheme",
        "Pick a pricing scheme",
        id="unknown_scheme",
    ),
    pytest.param(
        [{"meter": "prompts", "model": "soft_cap", "pricing": PER_UNIT}],
        "charges.0.model",
        "Pick a consumption model",
        id="unknown_model",
    ),
    *(
        pytest.param(
            [overage(pricing={"scheme": "per_unit", "unit_price": "2.50", "per": per})],
            "charges.0.pricing.per",
            message,
            id=f"per_{name}",
        )
        for name, per, message in [
            ("zero", "0", "Must be more than zero"),
            ("negative", "-1000", "Must be more than zero"),
            ("text", "abc", "must be a decimal number like 12.50"),
            ("nan", "NaN", "must be a finite number"),
            ("infinity", "Infinity", "must be a finite number"),
            ("huge", "1" + "0" * 18, "is too large"),
            ("eleven_places", "0.00000000001", "must have at most 10 decimal places"),
            ("null", None, "may not be null"),
        ]
    ),
    pytest.param(
        [overage(pricing=tiered(("100", "1"), (None, "1")) | {"per": "1000"})],
        "charges.0.pricing.per",
        "A graduated price has no 'Per' here: put it on each tier",
        id="per_on_a_tiered_price",
    ),
    pytest.param(
        [
            overage(
                pricing={
                    "scheme": "volume",
                    "tiers": [{"up_to": None, "unit_price": "1", "per": "0"}],
                }
            )
        ],
        "charges.0.pricing.tiers.0.per",
        "Must be more than zero",
        id="tier_per_zero",
    ),
    pytest.param(
        [
            overage(
                pricing={
                    "scheme": "package",
                    "package_size": "1000",
                    "package_price": "1",
                    "per": "1000",
                }
            )
        ],
        "charges.0.pricing.per",
        "'Per' applies to per unit prices and tiers: a package's size says how many units "
        "its price is for",
        id="per_on_a_package",
    ),
]


@pytest.mark.parametrize(("charges", "path", "message"), REFUSED_CHARGES)
def test_plan_with_an_invalid_charge_is_refused(
    api, catalog_meters, row_counts, charges, path, message
):
    # given
    before = row_counts()

    # when
    response = api.post("/api/v1/plans", plan_body(*charges, publish=True), format="json")

    # then
    assert_only_field_error(response, path, message)
    assert row_counts() == before
    assert not Plan.objects.filter(code="p").exists()


@pytest.mark.parametrize(
    ("terms", "path", "message"),
    [
        ({"currency": "XYZ"}, "currency", "Unknown currency 'XYZ'"),
        ({"currency": "usd"}, "currency", "Unknown currency"),
        ({"interval": "week"}, "interval", "Pick a billing interval: month, quarter or year"),
        ({"base_fee": "19.999"}, "base_fee", "USD amounts have at most 2 decimal places"),
        ({"currency": "JPY", "base_fee": "100.5"}, "base_fee", "JPY amounts are whole numbers"),
        ({"base_fee": "-1"}, "base_fee", "Cannot be negative"),
        ({"base_fee": True}, "base_fee", "must be a decimal number like 12.50"),
        ({"base_fee": "NaN"}, "base_fee", "must be a finite number"),
        ({"base_fee": "Infinity"}, "base_fee", "must be a finite number"),
        ({"base_fee": 10**18}, "base_fee", "too large"),
        ({"base_fee": "1e3"}, "base_fee", "must be a decimal number like 12.50"),
        ({"seat_price": "-10"}, "seat_price", "Cannot be negative"),
        ({"seat_price": "0.001"}, "seat_price", "USD amounts have at most 2 decimal places"),
        (
            {"minimum_commitment": "500.005"},
            "minimum_commitment",
            "USD amounts have at most 2 decimal places",
        ),
        ({"credits_per_period": "-1"}, "credits_per_period", "Cannot be negative"),
        ({"trial_days": -1}, "trial_days", "Enter 0 to 3650 days"),
        ({"trial_days": 3651}, "trial_days", "Enter 0 to 3650 days"),
        ({"trial_days": 1.5}, "trial_days", None),
        ({"code": "bad code"}, "code", "letters, digits"),
        ({"code": "x" * 65}, "code", "letters, digits"),
        ({"name": ""}, "name", None),
        ({"charges": {"meter": "prompts"}}, "charges", None),
    ],
)
def test_plan_with_invalid_terms_is_refused(api, catalog_meters, row_counts, terms, path, message):
    before = row_counts()

    response = api.post("/api/v1/plans", plan_body(overage(), **terms), format="json")

    assert_only_field_error(response, path, message)
    assert row_counts() == before
    assert not Plan.objects.exists()


def test_plan_refusal_lists_every_problem_at_once(api, catalog_meters, row_counts):
    before = row_counts()
    body = plan_body(
        overage(pricing={"scheme": "per_unit", "unit_price": "-1"}),
        {"meter": "sms", "model": "hard_cap"},
        interval="week",
    )

    response = api.post("/api/v1/plans", body, format="json")

    error = assert_error(response, 400, "invalid_request")
    assert set(error["fields"]) == {
        "interval",
        "charges.0.pricing.unit_price",
        "charges.1.included_units",
    }
    assert error["message"].startswith("invalid plan version: interval: ")
    assert row_counts() == before


def test_duplicate_plan_code_is_409_and_changes_nothing(api, ai_assistant, row_counts):
    # given
    before = row_counts()
    v1 = version_state("ai_assistant", 1)

    # when
    response = api.post(
        "/api/v1/plans", AI_ASSISTANT | {"name": "Other", "base_fee": "1.00"}, format="json"
    )

    # then
    error = assert_error(response, 409, "conflict")
    assert error["fields"] == {"code": ["already exists"]}
    assert row_counts() == before
    assert version_state("ai_assistant", 1) == v1
    assert Plan.objects.get(code="ai_assistant").name == "AI Assistant"


def test_plans_list_is_paginated(api, ai_assistant, catalog_meters):
    api.post("/api/v1/plans", plan_body(overage(), code="second"), format="json")

    first = api.get("/api/v1/plans?limit=1").json()

    assert [p["code"] for p in first["results"]] == ["ai_assistant"]
    second = api.get(first["next"]).json()
    assert [p["code"] for p in second["results"]] == ["second"]
    assert second["next"] is None


# Plan versions

V2_TERMS = {
    "currency": "USD",
    "interval": "month",
    "base_fee": "24.99",
    "charges": [
        overage("prompts", included_units="300"),
        {"meter": "sms", "model": "hard_cap", "included_units": "1000"},
    ],
}


def test_new_version_is_the_next_numbered_draft(api, ai_assistant):
    # when
    response = api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")

    # then
    assert response.status_code == 201, response.content
    version = response.json()
    assert version["plan"] == "ai_assistant"
    assert version["number"] == 2
    assert version["status"] == "draft"
    assert version["base_fee"] == "24.99"
    assert [c["meter"] for c in version["charges"]] == ["prompts", "sms"]
    plan = api.get("/api/v1/plans/ai_assistant").json()
    assert plan["latest_published"] == 1
    assert [(v["number"], v["status"]) for v in plan["versions"]] == [
        (1, "published"),
        (2, "draft"),
    ]


def test_put_on_a_draft_replaces_its_terms_and_charges(api, ai_assistant):
    # given a draft v2 with two charges
    api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")
    v1 = version_state("ai_assistant", 1)

    # when
    terms = {"currency": "USD", "base_fee": "29.00", "charges": [overage("prompts", GRADUATED)]}
    response = api.put("/api/v1/plans/ai_assistant/versions/2", terms, format="json")

    # then
    assert response.status_code == 200, response.content
    version = response.json()
    assert version["status"] == "draft"
    assert version["base_fee"] == "29.00"
    assert [c["meter"] for c in version["charges"]] == ["prompts"]
    assert version["charges"][0]["pricing"]["tiers"] == [
        {"up_to": "4000000", "unit_price": "0.000008", "per": "1", "flat_fee": "0"},
        {"up_to": None, "unit_price": "0.000006", "per": "1", "flat_fee": "0"},
    ]
    stored = version_state("ai_assistant", 2)
    assert len(stored["charges"]) == 1
    assert len(stored["tiers"]) == 2
    assert version_state("ai_assistant", 1) == v1
    assert api.get("/api/v1/plans/ai_assistant/versions/2").json() == version


def test_invalid_put_on_a_draft_changes_nothing(api, ai_assistant, row_counts):
    api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")
    before, v2 = row_counts(), version_state("ai_assistant", 2)

    response = api.put(
        "/api/v1/plans/ai_assistant/versions/2",
        V2_TERMS | {"charges": [overage(pricing=tiered(("100", "1"), ("200", "1")))]},
        format="json",
    )

    assert_only_field_error(response, "charges.0.pricing.tiers.1.up_to", "needs no upper limit")
    assert row_counts() == before
    assert version_state("ai_assistant", 2) == v2


def test_publish_a_draft(api, ai_assistant):
    # given
    api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")

    # when
    response = api.post("/api/v1/plans/ai_assistant/versions/2/publish")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "published"
    assert response.json()["published_at"]
    assert PlanVersion.objects.get(plan__code="ai_assistant", number=2).status == "published"
    assert api.get("/api/v1/plans/ai_assistant").json()["latest_published"] == 2


def test_put_on_a_published_version_is_409_and_changes_nothing(api, catalog_meters, row_counts):
    # given a published version with tiers
    body = plan_body(overage("prompts", GRADUATED, included_units="100"), code="tiered")
    assert api.post("/api/v1/plans", body | {"publish": True}, format="json").status_code == 201
    before, v1 = row_counts(), version_state("tiered", 1)

    # when
    terms = {
        "currency": "USD",
        "base_fee": "99.00",
        "charges": [overage("prompts", tiered(("10", "9"), (None, "8")))],
    }
    response = api.put("/api/v1/plans/tiered/versions/1", terms, format="json")

    # then
    error = assert_error(response, 409, "conflict")
    assert error["message"].startswith("P v1 is published: only a draft can be changed")
    assert row_counts() == before
    assert version_state("tiered", 1) == v1
    assert v1["version"]["base_fee"] == Decimal("10.00")
    assert [t["up_to"] for t in v1["tiers"]] == [Decimal("4000000"), None]


def test_publishing_twice_is_409(api, ai_assistant, row_counts):
    before, v1 = row_counts(), version_state("ai_assistant", 1)

    response = api.post("/api/v1/plans/ai_assistant/versions/1/publish")

    error = assert_error(response, 409, "conflict")
    assert error["message"].startswith(
        "AI Assistant v1 is published: only a draft can be published"
    )
    assert row_counts() == before
    assert version_state("ai_assistant", 1) == v1


def test_archive_then_put_or_publish_is_409(api, ai_assistant, row_counts):
    # when
    archived = api.post("/api/v1/plans/ai_assistant/versions/1/archive")

    # then
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert archived.json()["archived_at"]
    assert api.get("/api/v1/plans/ai_assistant").json()["latest_published"] is None
    before, v1 = row_counts(), version_state("ai_assistant", 1)

    put = api.put("/api/v1/plans/ai_assistant/versions/1", V2_TERMS, format="json")
    publish = api.post("/api/v1/plans/ai_assistant/versions/1/publish")
    archive_again = api.post("/api/v1/plans/ai_assistant/versions/1/archive")

    assert assert_error(put, 409, "conflict")["message"].startswith(
        "AI Assistant v1 is archived: only a draft can be changed"
    )
    assert_error(publish, 409, "conflict")
    assert_error(archive_again, 409, "conflict")
    assert row_counts() == before
    assert version_state("ai_assistant", 1) == v1


def test_new_version_in_another_currency_is_refused(api, ai_assistant, row_counts):
    before = row_counts()
    terms = {"currency": "EUR", "base_fee": "19.99", "charges": [overage()]}

    response = api.post("/api/v1/plans/ai_assistant/versions", terms, format="json")

    assert_only_field_error(
        response, "currency", "bills in USD: all its versions share one currency."
    )
    assert row_counts() == before


def test_put_on_a_draft_cannot_change_the_plan_currency(api, ai_assistant, row_counts):
    api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")
    before, v2 = row_counts(), version_state("ai_assistant", 2)

    response = api.put(
        "/api/v1/plans/ai_assistant/versions/2", V2_TERMS | {"currency": "EUR"}, format="json"
    )

    assert_only_field_error(response, "currency", "bills in USD")
    assert row_counts() == before
    assert version_state("ai_assistant", 2) == v2


def test_new_version_of_an_unknown_plan_is_404(api, catalog_meters, row_counts):
    before = row_counts()

    response = api.post("/api/v1/plans/nope/versions", V2_TERMS, format="json")

    assert_error(response, 404, "not_found")
    assert row_counts() == before


def test_get_plan_lists_versions_with_latest_published(api, ai_assistant):
    # given v2 published, v3 draft
    api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")
    api.post("/api/v1/plans/ai_assistant/versions/2/publish")
    api.post("/api/v1/plans/ai_assistant/versions", V2_TERMS, format="json")

    # when
    response = api.get("/api/v1/plans/ai_assistant")

    # then
    assert response.status_code == 200
    plan = response.json()
    assert plan["latest_published"] == 2
    assert [(v["number"], v["status"]) for v in plan["versions"]] == [
        (1, "published"),
        (2, "published"),
        (3, "draft"),
    ]
    listed = api.get("/api/v1/plans/ai_assistant/versions").json()
    assert [v["number"] for v in listed["results"]] == [1, 2, 3]
    assert listed["next"] is None


# Credit packs


def test_create_credit_pack(api):
    body = {"code": "runs_100", "credits": "100", "price": "99.00", "currency": "USD"}

    response = api.post("/api/v1/credit-packs", body, format="json")

    assert response.status_code == 201, response.content
    # applies_to (v1.2): every meter when left out.
    assert response.json() == body | {"name": "runs_100", "applies_to": [], "active": True}
    pack = CreditPack.objects.get(code="runs_100")
    assert pack.credits == Decimal(100)
    assert pack.price.amount == Decimal("99.00")
    assert str(pack.price.currency) == "USD"
    assert api.get("/api/v1/credit-packs/runs_100").json() == response.json()


def test_credit_pack_price_as_a_number_answers_money(api):
    body = {"code": "runs_10", "name": "Ten runs", "credits": 10, "price": 9.5, "currency": "USD"}

    response = api.post("/api/v1/credit-packs", body, format="json")

    assert response.status_code == 201
    assert response.json()["price"] == "9.50"
    assert response.json()["credits"] == "10"
    assert response.json()["name"] == "Ten runs"


def test_jpy_credit_pack_has_whole_yen(api, row_counts):
    before = row_counts()
    body = {"code": "yen", "credits": "100", "price": "99.5", "currency": "JPY"}

    refused = api.post("/api/v1/credit-packs", body, format="json")

    assert_only_field_error(refused, "price", "JPY amounts are whole numbers")
    assert row_counts() == before
    accepted = api.post("/api/v1/credit-packs", body | {"price": "99"}, format="json")
    assert accepted.status_code == 201
    assert accepted.json()["price"] == "99"


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"credits": "0"}, "credits", "more than zero"),
        ({"credits": "-100"}, "credits", "more than zero"),
        ({"credits": "NaN"}, "credits", "finite"),
        ({"price": "-1.00"}, "price", "Cannot be negative"),
        ({"price": "99.001"}, "price", "USD amounts have at most 2 decimal places"),
        ({"currency": "XYZ"}, "currency", "Unknown currency"),
        ({"code": "runs 100"}, "code", "letters, digits"),
    ],
)
def test_credit_pack_refused_with_field_error(api, row_counts, change, path, message):
    before = row_counts()
    body = {"code": "runs_100", "credits": "100", "price": "99.00", "currency": "USD"} | change

    response = api.post("/api/v1/credit-packs", body, format="json")

    assert_only_field_error(response, path, message)
    assert row_counts() == before


def test_duplicate_credit_pack_is_409(api, row_counts):
    body = {"code": "runs_100", "credits": "100", "price": "99.00", "currency": "USD"}
    api.post("/api/v1/credit-packs", body, format="json")
    before = row_counts()

    response = api.post("/api/v1/credit-packs", body | {"price": "1.00"}, format="json")

    error = assert_error(response, 409, "conflict")
    assert error["fields"] == {"code": ["already exists"]}
    assert row_counts() == before
    assert CreditPack.objects.get(code="runs_100").price.amount == Decimal("99.00")


def test_credit_pack_price_too_large_to_store_is_400(api, row_counts):
    # given: more integer digits than an amount column holds (18)
    before = row_counts()
    body = {"code": "big", "credits": "1", "price": "1000000000000000000.00", "currency": "USD"}

    # when
    response = api.post("/api/v1/credit-packs", body, format="json")

    # then
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"].keys() == {"price"}
    assert row_counts() == before


@pytest.mark.postgres
def test_credit_pack_price_at_the_storage_limit_reads_back_exactly(api):
    body = {"code": "big", "credits": "1", "price": "999999999999999999.99", "currency": "USD"}

    assert api.post("/api/v1/credit-packs", body, format="json").status_code == 201

    response = api.get("/api/v1/credit-packs/big")
    assert response.status_code == 200
    assert response.json()["price"] == "999999999999999999.99"


def test_amounts_sqlite_cannot_keep_exactly_are_refused_there(api, row_counts):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: PostgreSQL keeps every digit")
    before = row_counts()
    body = {"code": "big", "credits": "1", "price": "1234567890123456.78", "currency": "USD"}

    response = api.post("/api/v1/credit-packs", body, format="json")

    assert response.status_code == 400
    assert "15 significant digits" in response.json()["error"]["fields"]["price"][0]
    assert row_counts() == before


def test_credit_packs_list(api):
    for code in ("a", "b"):
        api.post(
            "/api/v1/credit-packs",
            {"code": code, "credits": "1", "price": "1.00", "currency": "USD"},
            format="json",
        )

    page = api.get("/api/v1/credit-packs").json()

    assert [p["code"] for p in page["results"]] == ["a", "b"]
    assert page["next"] is None

"""The OpenAPI schema describes what the server does: request bodies, the page shape
of lists, the error responses of every operation, and the same blank rules as the
serializers. (scripts/schema_check.sh checks a live server against it in CI.)"""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from plans.services import plan_create, plan_version_create
from plans.validation import VersionSpec

WRITE_METHODS = {"post", "put", "patch", "delete"}
# Writes that meet no state forbidding them: a batch (a repeat is a duplicate), questions.
WRITES_WITHOUT_CONFLICT = {
    "/api/v1/events",
    "/api/v1/customers/{external_id}/check",
    "/api/v1/plan-migrations/preview",
    "/api/v1/integrations/litellm",
    "/api/v1/integrations/openrouter",
}

LIST_OPERATIONS = [
    "/api/v1/meters",
    "/api/v1/plans",
    "/api/v1/plans/{code}/versions",
    "/api/v1/credit-packs",
    "/api/v1/customers",
    "/api/v1/invoices",
    "/api/v1/customers/{external_id}/wallets/{kind}/ledger",
]


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def resolve(schema: dict, node: dict) -> dict:
    """The node, or the component its $ref names (allOf of one ref included)."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = node["allOf"][0]
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def json_schema_of(schema: dict, response_or_body: dict) -> dict:
    return resolve(schema, response_or_body["content"]["application/json"]["schema"])


def test_the_events_body_is_a_batch_of_events(schema):
    operation = schema["paths"]["/api/v1/events"]["post"]

    body = json_schema_of(schema, operation["requestBody"])

    assert operation["requestBody"]["required"] is True
    assert body["required"] == ["events"]
    events = body["properties"]["events"]
    assert events["type"] == "array"
    assert events["maxItems"] == 1000
    event = resolve(schema, events["items"])
    assert set(event["properties"]) == {"id", "customer", "event_name", "timestamp", "properties"}
    assert sorted(event["required"]) == ["customer", "event_name", "id", "timestamp"]
    assert event["properties"]["timestamp"]["format"] == "date-time"
    assert event["properties"]["properties"]["type"] == "object"
    answer = json_schema_of(schema, operation["responses"]["202"])
    rejected = resolve(schema, answer["properties"]["rejected"]["items"])
    assert set(rejected["properties"]) == {"index", "id", "error"}


@pytest.mark.parametrize("path", LIST_OPERATIONS)
def test_lists_answer_a_page_of_results_and_next(schema, path):
    operation = schema["paths"][path]["get"]

    page = json_schema_of(schema, operation["responses"]["200"])

    assert page["type"] == "object"
    assert sorted(page["required"]) == ["next", "results"]
    assert page["properties"]["results"]["type"] == "array"
    assert page["properties"]["next"] == {
        "type": "string",
        "nullable": True,
        "format": "uri",
        "description": "The next page, or null on the last one.",
    }
    assert {p["name"] for p in operation["parameters"]} >= {"cursor", "limit"}


def test_no_answer_is_a_bare_array(schema):
    bare = [
        (method, path, status)
        for path, method, operation in operations(schema)
        for status, response in operation["responses"].items()
        if "application/json" in response.get("content", {})
        and json_schema_of(schema, response).get("type") == "array"
    ]

    assert bare == []


def test_every_operation_documents_its_errors_in_the_envelope(schema):
    for path, method, operation in operations(schema):
        statuses = set(operation["responses"])
        expected = {"400", "401", "403", "429", "503"}
        if "{" in path or (path in LIST_OPERATIONS and method == "get"):
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        if method in WRITE_METHODS and path not in WRITES_WITHOUT_CONFLICT:
            expected.add("409")

        assert statuses >= expected, (method, path, sorted(expected - statuses))
        if path in WRITES_WITHOUT_CONFLICT:
            assert "409" not in statuses, (method, path)
        # The HTTP server's own refusal of an overlong request line, not the app's.
        assert ("414" in statuses) == bool(operation.get("parameters")), (method, path)
        assert "content" not in operation["responses"].get("414", {})
        for status in statuses - {"414"}:
            if status.startswith(("4", "5")):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    assert "404" not in schema["paths"]["/api/v1/events"]["post"]["responses"]


def test_the_error_envelope(schema):
    envelope = schema["components"]["schemas"]["Error"]
    detail = resolve(schema, envelope["properties"]["error"])

    assert envelope["required"] == ["error"]
    assert sorted(detail["required"]) == ["message", "type"]
    assert detail["properties"]["fields"] == {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": "The input fields (dotted paths) at fault, each with its messages.",
    }
    headers = schema["paths"]["/api/v1/meters"]["get"]["responses"]["429"]["headers"]
    assert headers["Retry-After"]["schema"]["type"] == "integer"


@pytest.mark.parametrize(
    ("component", "field", "max_length"),
    [
        ("CustomerRequest", "external_id", 255),
        ("CustomerRequest", "name", 255),
        ("EventRequest", "id", 255),
        ("EventRequest", "event_name", 255),
        ("MeterRequest", "code", 64),
        ("CreditPackRequest", "price", 64),  # an exact decimal
        ("CheckRequest", "meter", 255),
    ],
)
def test_fields_refusing_blank_have_min_length_1(schema, component, field, max_length):
    prop = schema["components"]["schemas"][component]["properties"][field]

    assert prop["minLength"] == 1
    assert prop["maxLength"] == max_length


@pytest.mark.parametrize(
    ("component", "field"),
    [("MeterRequest", "value_property"), ("InvoiceVoidRequest", "reason")],
)
def test_fields_taking_blank_have_no_min_length(schema, component, field):
    prop = schema["components"]["schemas"][component]["properties"][field]

    assert "minLength" not in prop


def test_blank_is_documented_for_requests_only(schema):
    # An answer may hold what a client may not send (a meter without value_property).
    assert "minLength" not in schema["components"]["schemas"]["Meter"]["properties"]["name"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/customers",
            {"external_id": "", "name": "Acme", "currency": "USD"},
            "external_id",
        ),
        ("/api/v1/customers", {"external_id": "acme", "name": "", "currency": "USD"}, "name"),
        (
            "/api/v1/credit-packs",
            {"code": "runs_100", "credits": "100", "price": "", "currency": "USD"},
            "price",
        ),
    ],
)
def test_what_the_schema_calls_blank_is_refused(api, row_counts, path, body, field):
    before = row_counts()

    response = api.post(path, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert row_counts() == before


def test_decimal_pattern_matches_what_the_server_writes(schema):
    pattern = schema["components"]["schemas"]["CreditPackRequest"]["properties"]["price"]["pattern"]

    for text in ["0", "19.99", "-0.0000025", "150000", "0012.50"]:
        assert re.match(pattern, text), text
    for text in ["", " 1", "NaN", "Infinity", "1,5", "0x10", "1e3", ".5", "5.", "+5", "1_000"]:
        assert not re.match(pattern, text), text


def test_plan_versions_are_listed_a_page_at_a_time(api):
    version = plan_create(code="pro", name="Pro", version=VersionSpec(currency="USD"), publish=True)
    plan_version_create(plan=version.plan, version=VersionSpec(currency="USD"))

    first = api.get("/api/v1/plans/pro/versions", {"limit": 1}).json()
    second = api.get(first["next"]).json()

    assert [v["number"] for v in first["results"]] == [1]
    assert [v["number"] for v in second["results"]] == [2]
    assert second["next"] is None

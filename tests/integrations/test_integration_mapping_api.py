"""GET/PUT /api/v1/integrations/<source>: the mapping finance reads and changes,
with the preview of the last calls and the model names the rate card does not
know (priced at S35's default row until mapped)."""

import json

import pytest
import time_machine

from billing.integration_models import IntegrationSource
from billing.integrations.mapping import mapping_checked
from billing.models import Alert
from common.errors import InvalidRequest
from plans.services import meter_create
from tests.factories import api_client
from tests.integrations.conftest import S35_CARD, row, usage_rates
from tests.integrations.test_litellm_ingest import NOW, payload, post

pytestmark = pytest.mark.django_db

MAPPING = {
    "event_name": "llm.tokens",
    "customer_from": "end_user",
    "models": {"openai/gpt-4o-2024-08-06": "gpt-4o"},
    "token_types": {"cached_input": "cached_input", "audio_input": None},
}


def get(source="litellm", scope="read"):
    return api_client(scope).get(f"/api/v1/integrations/{source}")


def put(body, source="litellm", scope="admin"):
    # json.dumps escapes a lone surrogate, as a client's JSON may carry one.
    return api_client(scope).put(
        f"/api/v1/integrations/{source}", json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize(
    "source, customer_from",
    [("litellm", "end_user"), ("openrouter", "per_kind"), ("otlp", "enduser.id")],
)
def test_get_answers_each_sources_defaults_before_any_call(source, customer_from):
    response = get(source)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {k: body[k] for k in ("source", "event_name", "customer_from", "models")} == {
        "source": source,
        "event_name": "llm.tokens",
        "customer_from": customer_from,
        "models": {},
    }
    assert body["token_types"] == {} and body["recent"] == [] and body["models_seen"] == {}


def test_put_sets_the_fields_given_and_records_the_key():
    response = put(MAPPING)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["models"] == MAPPING["models"]
    assert body["token_types"] == MAPPING["token_types"]
    assert body["updated_by"] == "API key admin"
    # A subset changes only what it names.
    again = put({"event_name": "gateway.tokens"}).json()
    assert again["event_name"] == "gateway.tokens" and again["models"] == MAPPING["models"]
    row = IntegrationSource.objects.get(source="litellm")
    assert (row.event_name, row.models, row.token_types) == (
        "gateway.tokens",
        MAPPING["models"],
        MAPPING["token_types"],
    )
    assert get().json()["event_name"] == "gateway.tokens"


@pytest.mark.parametrize(
    "source, body, field",
    [
        ("litellm", {"event_name": ""}, "event_name"),
        ("litellm", {"event_name": "x" * 256}, "event_name"),
        ("litellm", {"event_name": 7}, "event_name"),
        ("litellm", {"customer_from": "nobody"}, "customer_from"),
        ("litellm", {"customer_from": "metadata."}, "customer_from"),
        ("openrouter", {"customer_from": ""}, "customer_from"),
        ("otlp", {"customer_from": "a" * 256}, "customer_from"),
        ("litellm", {"models": ["gpt-4o"]}, "models"),
        ("litellm", {"models": {"gpt-4o": ""}}, "models"),
        ("litellm", {"models": {"": "gpt-4o"}}, "models"),
        ("litellm", {"models": {"a": "b" * 256}}, "models"),
        ("litellm", {"models": {"a": None}}, "models"),
        ("litellm", {"models": {f"m{i}": "gpt-4o" for i in range(501)}}, "models"),
        ("litellm", {"token_types": {"video": "video"}}, "token_types"),
        ("litellm", {"token_types": {"input": "x" * 65}}, "token_types"),
        ("litellm", {"token_types": {"input": ""}}, "token_types"),
        ("litellm", {"token_types": {"input": 3}}, "token_types"),
        ("litellm", {"token_types": []}, "token_types"),
        ("litellm", {"colour": "blue"}, "colour"),
    ],
)
def test_a_wrong_field_is_refused_by_name_and_nothing_changes(source, body, field):
    assert put({"models": MAPPING["models"]}, source=source).status_code == 200
    before = get(source).json()
    # The valid fields given with the wrong one are not stored either.
    response = put({"models": {"kept": "not stored"}} | body, source=source)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert field in error["message"]
    assert get(source).json() == before


@pytest.mark.parametrize(
    "body, field, reason",
    [
        ({"event_name": "llm\x00tokens"}, "event_name", "NUL"),
        ({"models": {"a": "\ud800"}}, "models", "surrogate"),
    ],
)
def test_text_no_column_could_store_is_refused(body, field, reason):
    # The API's JSON parser refuses it for the whole body (common.rest_api.json_body)...
    response = put({"token_types": {"input": "prompt"}} | body)
    assert response.status_code == 400 and reason in response.json()["error"]["message"]
    assert get().json()["token_types"] == {}
    # ...and the mapping's own check, which the admin's form goes through, names the field.
    with pytest.raises(InvalidRequest) as refused:
        mapping_checked("litellm", body)
    assert list(refused.value.fields) == [field] and reason in refused.value.message


def test_a_body_that_is_not_an_object_is_refused():
    response = put(["event_name"])
    assert response.status_code == 400
    assert get().json()["event_name"] == "llm.tokens"


def test_reading_needs_read_and_changing_needs_admin():
    assert get(scope="events:write").status_code == 403
    assert get(scope="admin").status_code == 403
    refused = put({"event_name": "other"}, scope="read")
    assert refused.status_code == 403
    assert "'admin'" in refused.json()["error"]["message"]
    assert put({"event_name": "other"}, scope="events:write").status_code == 403
    assert get().json()["event_name"] == "llm.tokens"
    # The ingestion on the same path keeps its own scope.
    assert (
        api_client("read").post("/api/v1/integrations/litellm", [], format="json").status_code
        == 403
    )


def test_an_unknown_source_is_404():
    for response in (get("langfuse"), put({"event_name": "x"}, source="langfuse")):
        assert response.status_code == 404
        assert response.json()["error"]["message"] == (
            "no source 'langfuse'; one of litellm, openrouter, otlp"
        )
    assert not IntegrationSource.objects.filter(source="langfuse").exists()


def test_an_unmapped_model_is_flagged_then_mapping_it_bills_the_next_call_at_its_row(s35):
    # A fine-tuned model: neither its name nor its bare name is on the card.
    dated = "openai/acme-ft-gpt-4o-2025"
    first = post([payload("call-1", model=dated, cached=0, prompt=1_000_000, completion=0)])
    assert first.status_code == 202 and first.json()["calls"] == 1, first.json()
    post([payload("call-2", model="gpt-4o", cached=0, prompt=1_000_000, completion=0)])
    body = get().json()
    assert body["models_seen"][dated] | {"last_seen": None} == {
        "mapped": dated,
        "calls": 1,
        "last_seen": None,
        "known": False,
    }
    assert body["models_seen"]["gpt-4o"]["known"] is True
    assert [(c["id"], c["model"], c["mapped"], c["tokens"]) for c in body["recent"]] == [
        ("call-2", "gpt-4o", "gpt-4o", {"input": 1_000_000}),
        ("call-1", dated, dated, {"input": 1_000_000}),
    ]
    with time_machine.travel(NOW, tick=False):
        amount, _ = usage_rates()
    # 1M input at the default row (1.00) + 1M at gpt-4o input (2.50).
    assert amount == "3.50"

    mapped = put({"models": {dated: "gpt-4o"}})
    assert mapped.status_code == 200, mapped.json()
    assert mapped.json()["models_seen"][dated]["known"] is True
    assert mapped.json()["models_seen"][dated]["mapped"] == "gpt-4o"
    post([payload("call-3", model=dated, cached=0, prompt=1_000_000, completion=0)])
    with time_machine.travel(NOW, tick=False):
        amount, _ = usage_rates()
    assert amount == "6.00"
    recent = get().json()["recent"][0]
    assert (recent["id"], recent["mapped"]) == ("call-3", "gpt-4o")


def test_a_model_on_a_card_of_another_event_name_is_not_known(s35):
    # given: a card on other.tokens that prices o3 alone
    meter_create(
        code="other_tokens",
        name="Other tokens",
        event_name="other.tokens",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
    )
    card = {**S35_CARD, "meter": "other_tokens", "price_by": ["model"]}
    card["rates"] = [row("3.00", model="o3"), row("1.00")]
    plan = {"code": "other", "name": "Other", "currency": "USD", "base_fee": "0"}
    created = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert created.status_code == 201, created.json()
    post([payload("call-1", model="gpt-4o", cached=0, prompt=10, completion=0)])

    assert put({"event_name": "other.tokens"}).json()["models_seen"]["gpt-4o"]["known"] is False


def test_where_no_card_prices_by_model_every_model_is_known(s35):
    """A card priced by token type alone prices every model alike: nothing to map,
    no model flagged, listed as unpriced or announced."""
    meter_create(
        code="flat_tokens",
        name="Flat tokens",
        event_name="flat.tokens",
        aggregation="sum",
        value_property="tokens",
        group_by=["token_type"],
    )
    card = {**S35_CARD, "meter": "flat_tokens", "price_by": ["token_type"]}
    card["rates"] = [row("2.00", token_type="input"), row("1.00")]
    plan = {"code": "flat", "name": "Flat", "currency": "USD", "base_fee": "0"}
    created = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert created.status_code == 201, created.json()
    put({"event_name": "flat.tokens"})

    answer = post([payload("call-1", model="acme-ft-gpt-4o-2025", prompt=10, cached=0)])

    assert answer.json()["calls"] == 1 and answer.json()["unpriced_models"] == []
    assert get().json()["models_seen"]["acme-ft-gpt-4o-2025"]["known"] is True
    assert not Alert.objects.filter(kind=Alert.UNPRICED_MODEL).exists()

"""Holds refuse bad input with a clear error and write nothing: an unknown
customer, meter or hold, a meter that does not sum a property, quantities and
expiries out of range or of the wrong type, properties that are not texts,
malformed JSON, a settle whose event ingestion refuses (the hold stays open), a
key without the scope."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.hold_models import Hold
from billing.models import UsageEvent
from common.vocabulary import ConsumptionModel
from plans.models import Meter
from plans.services import meter_create
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    api_client,
    llm_tokens_meter,
    overage,
    published_version,
    subscribe,
)
from tests.rate_cards import per_unit

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
GOOD = {"meter": "llm_tokens", "quantity": "1000", "key": "run-1"}


@pytest.fixture
def acme(db):
    llm_tokens_meter()
    meter_create(code="runs", name="Runs", event_name="run", aggregation=Meter.COUNT)
    published_version(
        "agents", charges=(overage("llm_tokens", 1_000_000, "0.01"), overage("runs", 10, "1"))
    )
    customer = CustomerFactory(external_id="acme")
    subscribe(customer, "agents", NOV_1)
    return customer


def post(api, path: str, body, **options):
    with time_machine.travel(NOW, tick=False):
        return api.post(path, body, format="json", **options)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"meter": "nope"}, "meter"),
        ({"meter": "runs"}, "meter"),
        ({"meter": 5}, "meter"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": "1e400"}, "quantity"),
        ({"expires_in_seconds": 0}, "expires_in_seconds"),
        ({"expires_in_seconds": 86_401}, "expires_in_seconds"),
        ({"expires_in_seconds": "soon"}, "expires_in_seconds"),
        ({"properties": {"model": 5}}, "properties"),
        ({"properties": ["model"]}, "properties"),
        ({"key": None}, "key"),
        ({"key": "k" * 256}, "key"),
    ],
)
def test_a_hold_asked_wrong_is_a_400_naming_the_field_and_writes_nothing(api, acme, change, field):
    response = post(api, "/api/v1/customers/acme/holds", GOOD | change)

    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert any(name.split(".")[0] == field for name in fields), response.json()
    assert Hold.objects.count() == 0


def test_unknown_customer_and_hold_are_404s_and_malformed_json_a_400(api, acme):
    assert post(api, "/api/v1/customers/nobody/holds", GOOD).status_code == 404
    assert post(api, "/api/v1/holds/hold_nope/settle", {"quantity": "1"}).status_code == 404
    assert post(api, "/api/v1/holds/hold_nope/release", {"reason": "failed"}).status_code == 404
    with time_machine.travel(NOW, tick=False):
        broken = api.post(
            "/api/v1/customers/acme/holds", b'{"meter": ', content_type="application/json"
        )
    assert broken.status_code == 400
    assert Hold.objects.count() == 0


def test_settle_and_release_asked_wrong_leave_the_hold_open_and_bill_nothing(api, acme):
    opened = post(api, "/api/v1/customers/acme/holds", GOOD).json()
    path = f"/api/v1/holds/{opened['id']}"

    answers = [
        post(api, f"{path}/settle", {"quantity": "-1"}),
        post(api, f"{path}/settle", {"quantity": "abc"}),
        post(api, f"{path}/settle", {"quantity": "5", "timestamp": "yesterday"}),
        # Ingestion refuses an event from before the late-usage window.
        post(api, f"{path}/settle", {"quantity": "5", "timestamp": "2020-01-01T00:00:00Z"}),
        post(api, f"{path}/settle", {"quantity": "5", "properties": {"model": 5}}),
        post(api, f"{path}/release", {"reason": "bored"}),
        post(api, f"{path}/release", {}),
    ]

    assert [a.status_code for a in answers] == [400] * 7, [a.content for a in answers]
    assert "timestamp" in answers[3].json()["error"]["message"]
    hold = Hold.objects.get()
    assert (hold.status, hold.settled_quantity) == (Hold.OPEN, None)
    assert not UsageEvent.objects.exists()


def test_opening_a_hold_needs_events_write_and_reading_them_read(acme):
    reader = api_client("read")
    assert post(reader, "/api/v1/customers/acme/holds", GOOD).status_code == 403
    writer = api_client("events:write")
    assert post(writer, "/api/v1/customers/acme/holds", GOOD).status_code == 201
    with time_machine.travel(NOW, tick=False):
        listed = reader.get("/api/v1/customers/acme/holds?status=open").json()["results"]
        wrong = reader.get("/api/v1/customers/acme/holds?status=maybe")
    assert [(h["status"], h["quantity"]) for h in listed] == [("open", "1000")]
    assert wrong.status_code == 400
    assert Hold.objects.get().expires_at == NOW + timedelta(seconds=600)
    assert Hold.objects.get().quantity == D(1000)


def test_a_key_used_again_for_another_hold_is_a_409_and_holds_nothing_more(api, acme):
    first = post(api, "/api/v1/customers/acme/holds", GOOD)
    same = post(api, "/api/v1/customers/acme/holds", GOOD)
    other_quantity = post(api, "/api/v1/customers/acme/holds", GOOD | {"quantity": "2000"})
    other_properties = post(
        api, "/api/v1/customers/acme/holds", GOOD | {"properties": {"model": "o3"}}
    )

    assert (first.status_code, same.status_code) == (201, 200)
    assert same.json()["id"] == first.json()["id"]
    assert (other_quantity.status_code, other_properties.status_code) == (409, 409)
    assert other_quantity.json()["error"]["message"] == (
        f"key 'run-1' was used for another hold ({first.json()['id']}: 1000 of llm_tokens); "
        "a new hold needs a new key"
    )
    assert Hold.objects.count() == 1


def test_a_quantity_of_1e400_as_a_json_number_is_a_400(api, acme):
    with time_machine.travel(NOW, tick=False):
        response = api.post(
            "/api/v1/customers/acme/holds",
            b'{"meter": "llm_tokens", "quantity": 1e400, "key": "k"}',
            content_type="application/json",
        )
    assert response.status_code == 400, response.content
    assert Hold.objects.count() == 0


def test_a_hold_whose_amount_no_column_can_store_is_a_400(api, db):
    meter_create(
        code="gpu_seconds", name="GPU", event_name="gpu", aggregation=Meter.SUM, value_property="s"
    )
    charge = ChargeSpec(
        "gpu_seconds", ConsumptionModel.BALANCE, pricing=per_unit("1000"), when_exhausted="bill"
    )
    published_version("gpu", charges=(charge,))
    subscribe(CustomerFactory(external_id="big"), "gpu", NOV_1)

    body = {"meter": "gpu_seconds", "quantity": "100000000000000000", "key": "k"}
    response = post(api, "/api/v1/customers/big/holds", body)

    assert response.status_code == 400, response.content
    assert "quantity" in response.json()["error"]["fields"]
    assert Hold.objects.count() == 0

"""Hostile input to PUT /customers/{id}/limits: each refused with a 400 naming
the field, nothing changed, no history written."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from customers.models import Customer, CustomerLimitChange
from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter

pytestmark = pytest.mark.django_db

KEPT = {"budget": {"amount": "300.00", "action": "stop"}}


@pytest.fixture
def client(db):
    llm_tokens_meter()
    customer_create(external_id="acme", name="Acme", currency="USD", spend_limit=Decimal("500.00"))
    client = api_client("admin", "read")
    assert client.put("/api/v1/customers/acme/limits", KEPT, format="json").status_code == 200
    return client


def refused(client, body, *, raw: bool = False) -> dict:
    if raw:
        response = client.generic(
            "PUT", "/api/v1/customers/acme/limits", body, content_type="application/json"
        )
    else:
        response = client.put("/api/v1/customers/acme/limits", body, format="json")
    assert response.status_code == 400, response.content
    customer = Customer.objects.get(external_id="acme")
    assert customer.limits == {"budget": {"amount": "300.00", "action": "stop"}}
    assert CustomerLimitChange.objects.filter(customer=customer).count() == 1
    return response.json()["error"]


def budget(amount) -> dict:
    return {"budget": {"amount": amount, "action": "stop"}}


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("1e400", "must be a decimal number like 12.50"),
        ("-5", "must not be negative"),
        ("NaN", "must be a finite number"),
        ("Infinity", "must be a finite number"),
        ("0", "must be more than zero"),
        ("12.345", "USD amounts have at most 2 decimal places"),
        ("5000000000000", "must be at most 1000000000000"),
        (True, "must be a decimal number like 12.50"),
        ({"amount": 1}, "must be a decimal number like 12.50"),
    ],
)
def test_a_budget_that_is_no_amount_is_refused(client, amount, says):
    error = refused(client, budget(amount))
    assert error["fields"]["budget.amount"] == [says]


def test_numbers_json_cannot_hold_are_refused(client):
    error = refused(client, b'{"budget": {"amount": 1e400, "action": "stop"}}', raw=True)
    assert error["fields"]["budget.amount"] == ["is too large"]
    refused(client, b'{"budget": {"amount": NaN, "action": "stop"}}', raw=True)
    refused(client, b'{"budget": ', raw=True)


def test_a_budget_above_the_merchants_limit_names_it(client):
    error = refused(client, budget("600.00"))
    assert error["fields"]["budget.amount"] == [
        "must be at most the spend limit your provider set, 500.00\N{NO-BREAK SPACE}USD"
    ]


def test_a_budget_equal_to_the_merchants_limit_is_accepted(client):
    # given: the merchant's spend limit of 500.00
    # when: the customer's budget is exactly it
    response = client.put("/api/v1/customers/acme/limits", budget("500.00"), format="json")
    # then: it is saved, and recorded once
    assert response.status_code == 200, response.content
    customer = Customer.objects.get(external_id="acme")
    assert customer.limits == {"budget": {"amount": "500.00", "action": "stop"}}
    assert CustomerLimitChange.objects.filter(customer=customer).count() == 2


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://127.0.0.1/hook", "address 127.0.0.1 is not public"),
        ("http://169.254.169.254/latest/meta-data/", "must be an https:// URL"),
        ("https://169.254.169.254/latest/meta-data/", "address 169.254.169.254 is not public"),
        ("https://[::1]/hook", "address ::1 is not public"),
        (
            "https://user:secret@hooks.slack.com/x",
            "the URL must not contain a user name or password",
        ),
        ("ftp://hooks.slack.com/x", "must be an https:// URL"),
        ("https://" + "a" * 3000 + ".example/", "must be a text of at most 2000 characters"),
    ],
)
def test_a_webhook_to_where_it_must_not_go_is_refused(client, url, says):
    error = refused(client, KEPT | {"channels": [{"kind": "slack", "url": url}]})
    assert error["fields"]["channels.0.url"] == [says]


def test_a_channel_name_of_ten_thousand_characters_is_refused(client):
    channel = {"kind": "email", "to": "ops@acme.example", "name": "#" + "x" * 10_000}
    error = refused(client, KEPT | {"channels": [channel]})
    assert error["fields"]["channels.0.name"] == ["must be a text of at most 100 characters"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (
            {"caps": [{"meter": "nope", "amount": "5.00"}]},
            "caps.0.meter",
            "there is no meter 'nope'",
        ),
        (
            {"caps": [{"meter": "llm_tokens", "when": {"region": "eu"}, "amount": "5.00"}]},
            "caps.0.when",
            "meter llm_tokens does not count usage by 'region'",
        ),
        (
            {"caps": [{"meter": "llm_tokens", "amount": "5.00", "quantity": "9"}]},
            "caps.0",
            "give an amount or a quantity (one of the two)",
        ),
        (
            {"caps": [{"meter": "llm_tokens", "quantity": "-1"}]},
            "caps.0.quantity",
            "must not be negative",
        ),
        ({"alert_thresholds": ["50", "NaN"]}, "alert_thresholds.1", "must be a finite number"),
        ({"alert_thresholds": ["150"]}, "alert_thresholds.0", "must be at most 100"),
        (
            KEPT | {"channels": [{"kind": "pager", "url": "https://x.example"}]},
            "channels.0.kind",
            "must be email, slack, teams or discord",
        ),
        (
            KEPT | {"channels": [{"kind": "email", "to": "not an address"}]},
            "channels.0.to",
            "is not an email address",
        ),
        (KEPT | {"colour": "red"}, "colour", "unknown field"),
        (KEPT | {"budget": {"amount": "5.00", "action": "pause"}}, "budget.action", None),
    ],
)
def test_other_wrong_limits_are_refused_naming_the_field(client, body, field, says):
    error = refused(client, body)
    if says is not None:
        assert error["fields"][field] == [says]
    else:
        assert field in error["fields"]


def test_thresholds_without_a_budget_are_refused(client):
    error = refused(client, {"alert_thresholds": ["50"]})
    assert error["fields"]["alert_thresholds"] == [
        "alert thresholds are percentages of a budget: set one"
    ]


def test_too_many_caps_or_channels_are_refused(client):
    caps = [
        {"meter": "llm_tokens", "when": {"model": f"m{i}"}, "amount": "1.00"} for i in range(21)
    ]
    assert refused(client, {"caps": caps})["fields"]["caps"] == ["at most 20"]
    channels = [{"kind": "email", "to": f"a{i}@acme.example"} for i in range(11)]
    assert refused(client, KEPT | {"channels": channels})["fields"]["channels"] == ["at most 10"]


def test_a_read_key_cannot_set_limits(client):
    response = api_client("read").put(
        "/api/v1/customers/acme/limits", budget("10.00"), format="json"
    )
    assert response.status_code == 403
    assert Customer.objects.get(external_id="acme").limits["budget"]["amount"] == "300.00"


def test_an_unknown_customer_is_a_404(client):
    response = client.put("/api/v1/customers/nobody/limits", KEPT, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no customer 'nobody'"


def test_the_same_limits_again_record_nothing(client):
    now = datetime.now(UTC)
    assert client.put("/api/v1/customers/acme/limits", KEPT, format="json").status_code == 200
    assert CustomerLimitChange.objects.filter(changed_at__gte=now).count() == 0

"""One reading of every amount and quantity the API is sent
(common.money.decimal_input): a JSON number, or a plain decimal string. The
same malformed strings are refused by an event's meter value (per event), by a check's
quantity and by a wallet top-up's amount (400), and change nothing."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework import serializers

from billing.models import UsageEvent
from common.money import DECIMAL_MESSAGE, DecimalRefused, decimal_input
from common.rest_api import DecimalString
from plans.services import meter_create
from tests.factories import CustomerFactory
from wallets.models import LedgerEntry, Wallet

MALFORMED = [
    " 5 ",
    "5 ",
    "\t5",
    "5\n",
    "1_000",
    "+5",
    "1e3",
    "1E+3",
    "\u0665",  # ARABIC-INDIC DIGIT FIVE
    "\uff15",  # FULLWIDTH DIGIT FIVE
    "\u0967\u0966",  # DEVANAGARI ONE ZERO
    "",
    "five",
    "5.",
    ".5",
    "1,000",
    "0x10",
    "--5",
    "1 000",
    "5.0.0",
]


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme", currency="USD")


@pytest.fixture
def tokens(db):
    return meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="n"
    )


def event(event_id: str, n) -> dict:
    moment = datetime.now(UTC) - timedelta(minutes=5)
    return {
        "id": event_id,
        "customer": "acme",
        "event_name": "llm",
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "properties": {"n": n},
    }


def test_twenty_malformed_quantities_are_rejected_per_event(api, acme, tokens):
    events = [event(f"bad{i}", text) for i, text in enumerate(MALFORMED)]
    events.append(event("good", "12.50"))

    response = api.post("/api/v1/events", {"events": events}, format="json")

    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["id"], r["error"]["message"]) for r in answer["rejected"]] == [
        (i, f"bad{i}", f"property 'n' (meter 'tokens') {DECIMAL_MESSAGE}")
        for i in range(len(MALFORMED))
    ]
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["good"]


@pytest.mark.parametrize("text", MALFORMED, ids=repr)
def test_a_malformed_quantity_is_a_400_from_check(api, acme, tokens, text):
    response = api.post(
        "/api/v1/customers/acme/check", {"meter": "tokens", "quantity": text}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"quantity": [DECIMAL_MESSAGE]}


@pytest.mark.parametrize("text", MALFORMED, ids=repr)
def test_a_malformed_amount_is_a_400_from_a_wallet_top_up(api, acme, text):
    response = api.post(
        "/api/v1/customers/acme/wallets/money", {"amount": text, "currency": "USD"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"amount": [DECIMAL_MESSAGE]}
    assert not Wallet.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_json_numbers_and_plain_strings_are_read_exactly(api, acme, tokens):
    body = (
        '{"events": [{"id": "e1", "customer": "acme", "event_name": "llm", '
        f'"timestamp": "{event("x", 0)["timestamp"]}", "properties": {{"n": 1e3}}}}]}}'
    )
    response = api.generic("POST", "/api/v1/events", body, content_type="application/json")

    assert response.json()["accepted"] == 1, response.content
    assert UsageEvent.objects.get(event_id="e1").properties == {"n": 1000}
    response = api.post(
        "/api/v1/customers/acme/wallets/money",
        {"amount": "12.50", "currency": "USD"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert Wallet.objects.get(customer=acme, kind="money").balance == Decimal("12.50")


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("12.50", Decimal("12.50")),
        ("-3", Decimal(-3)),
        ("0012.5", Decimal("12.5")),
        ("-0", Decimal(0)),
        (5, Decimal(5)),
        (-5, Decimal(-5)),
        (Decimal("1E+3"), Decimal("1E+3")),  # 1000, as the JSON number 1e3 reads
        (Decimal("0E-20000"), Decimal(0)),
        (2.5, Decimal("2.5")),
    ],
)
def test_what_is_read(value, read):
    number = decimal_input(value)
    assert (number, str(number)) == (read, str(read))


@pytest.mark.parametrize(
    ("value", "negative", "code", "message"),
    [
        *[(text, True, "invalid", DECIMAL_MESSAGE) for text in MALFORMED],
        (True, True, "invalid", DECIMAL_MESSAGE),
        (None, True, "invalid", DECIMAL_MESSAGE),
        ([1], True, "invalid", DECIMAL_MESSAGE),
        ("NaN", True, "non_finite", "must be a finite number"),
        ("-Infinity", True, "non_finite", "must be a finite number"),
        (Decimal("NaN"), True, "non_finite", "must be a finite number"),
        (float("inf"), True, "non_finite", "must be a finite number"),
        ("-1", False, "negative", "must not be negative"),
        (Decimal("-0.5"), False, "negative", "must not be negative"),
        ("1" * 19, True, "too_large", "is too large"),
        (10**18, True, "too_large", "is too large"),
        (Decimal("1e400"), True, "too_large", "is too large"),
        ("0.00000000001", True, "max_places", "must have at most 10 decimal places"),
        (Decimal("2.1e-991779300462"), True, "max_places", "must have at most 10 decimal places"),
        ("1" * 65, True, "invalid", DECIMAL_MESSAGE),
    ],
)
def test_what_is_refused(value, negative, code, message):
    with pytest.raises(DecimalRefused) as refused:
        decimal_input(value, negative=negative)
    assert (refused.value.code, str(refused.value)) == (code, message)

    if negative:  # the serializer field says the same
        with pytest.raises(serializers.ValidationError) as invalid:
            DecimalString().to_internal_value(value)
        assert [str(d) for d in invalid.value.detail] == [message]
        assert [d.code for d in invalid.value.detail] == [code]

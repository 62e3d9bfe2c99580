"""A deal on a rate card (issue 50): a subscription's overrides may replace a
card's rows, priced by the plan's own properties and checked by the catalog's
rules (a default row, no ties, properties the charge prices by); the close
prices the usage at the deal's rows."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.utils import translation

from billing.admin.deals import deal_text
from billing.invoicing.close import periods_close
from billing.models import Subscription
from customers.services import customer_create
from invoices.models import Invoice
from plans.overrides import subscription_spec
from plans.services import meter_create, plan_create
from plans.validation import ChargeSpec, VersionSpec
from tests.factories import api_client
from tests.rate_cards import card_charge, llm_tokens, per_unit, send_tokens

pytestmark = pytest.mark.django_db

OCT_10 = datetime(2026, 10, 10, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


def row(when: dict, price: str) -> dict:
    """A row at `price` per 1,000,000 tokens."""
    return {"when": when, "pricing": {"scheme": "per_unit", "unit_price": price, "per": "1000000"}}


# The deal's card (per 1,000,000): gpt-4o input cheaper, any other gpt-4o token
# 8.00, no claude-sonnet row, the rest 3.00.
DEAL_ROWS = [
    row({"model": "gpt-4o", "token_type": "input"}, "2.00"),
    row({"model": "gpt-4o"}, "8.00"),
    row({}, "3.00"),
]


@pytest.fixture
def tokens_plan(db):
    llm_tokens()
    meter_create(code="calls", name="Calls", event_name="call", aggregation="count")
    customer_create(external_id="acme", name="Acme", currency="USD")
    plan_create(
        code="tokens",
        name="Tokens",
        version=VersionSpec(
            currency="USD",
            charges=(
                card_charge(),
                ChargeSpec("calls", "overage", D(0), pricing=per_unit("0.01")),
            ),
        ),
        publish=True,
    )


def subscribe(charge: dict):
    return api_client().post(
        "/api/v1/subscriptions",
        {
            "customer": "acme",
            "plan": "tokens",
            "start": "2026-10-01T00:00:00Z",
            "overrides": {"charges": [charge]},
        },
        format="json",
    )


def test_the_close_prices_usage_at_the_deals_rows(tokens_plan):
    # given: a subscription whose deal replaces the card's rows
    response = subscribe({"meter": "llm_tokens", "rates": DEAL_ROWS})
    assert response.status_code == 201, response.json()
    (shown,) = response.json()["overrides"]["charges"]
    assert [(r["when"], r["pricing"]["unit_price"]) for r in shown["rates"]] == [
        (r["when"], r["pricing"]["unit_price"]) for r in DEAL_ROWS
    ]
    subscription = Subscription.objects.get(pk=response.json()["id"])
    assert subscription_spec(subscription).charges[0].price_by == ("model", "token_type")
    # the admin says what the deal changes of the plan's card
    assert deal_text(subscription.overrides, subscription.version) == (
        "llm_tokens: rate gpt-4o · input: 2.50 USD per 1M → 2.00 USD per 1M, "
        "rate gpt-4o added (8.00 USD per 1M), "
        "default rate: 4.00 USD per 1M → 3.00 USD per 1M, "
        "rate gpt-4o · output removed (10.00 USD per 1M), "
        "rate claude-sonnet removed (3.00 USD per 1M)"
    )
    send_tokens("acme", OCT_10)

    # when
    periods_close(as_of=NOV_1)

    # then: gpt-4o input 1,000,000 at 2.00 per 1M = 2.00; gpt-4o output and
    # cache_read 700,000 at 8.00 = 5.60; claude-sonnet, llama-3 and no model
    # 320,000 at 3.00 = 0.96
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    assert [
        (line.description, line.quantity, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens")
    ] == [
        ("LLM tokens · gpt-4o · input", D(1_000_000), D("2.00")),
        ("LLM tokens · gpt-4o", D(700_000), D("5.60")),
        ("LLM tokens · other usage", D(320_000), D("0.96")),
    ]
    assert invoice.total == D("8.56")


def test_a_deal_repeating_the_plans_price_by_is_taken_and_another_refused(tokens_plan):
    other = subscribe({"meter": "llm_tokens", "price_by": ["model"], "rates": DEAL_ROWS})
    assert other.status_code == 400
    (words,) = other.json()["error"]["fields"]["overrides.charges.0.price_by"]
    assert "prices by the version's properties (model, token_type)" in words

    same = subscribe(
        {"meter": "llm_tokens", "price_by": ["model", "token_type"], "rates": DEAL_ROWS}
    )
    assert same.status_code == 201, same.json()
    assert "price_by" not in same.json()["overrides"]["charges"][0]


@pytest.mark.parametrize(
    ("charge", "path", "words"),
    [
        (
            {"meter": "llm_tokens", "rates": DEAL_ROWS[:2]},
            "overrides.charges.0.rates",
            "Add a default row",
        ),
        (
            {
                "meter": "llm_tokens",
                "rates": [
                    row({"model": "gpt-4o"}, "1"),
                    row({"token_type": "input"}, "2"),
                    row({}, "3"),
                ],
            },
            "overrides.charges.0.rates.1.when",
            "Row 1 (model gpt-4o) and row 2 (token_type input) match the same usage",
        ),
        (
            {"meter": "llm_tokens", "rates": [row({"region": "eu"}, "1"), row({}, "3")]},
            "overrides.charges.0.rates.0.when",
            "region is not among the properties the charge prices by",
        ),
        (
            {"meter": "llm_tokens", "pricing": {"scheme": "per_unit", "unit_price": "0.1"}},
            "overrides.charges.0.pricing",
            "priced by its rows",
        ),
        (
            {"meter": "llm_tokens", "included_units": "1000"},
            "overrides.charges.0.included_units",
            "included units must be 0",
        ),
        (
            {"meter": "calls", "rates": DEAL_ROWS},
            "overrides.charges.0.rates",
            "has no rate card",
        ),
    ],
)
def test_a_deals_rows_are_checked_by_the_catalogs_rules(tokens_plan, charge, path, words):
    response = subscribe(charge)

    assert response.status_code == 400, response.json()
    fields = response.json()["error"]["fields"]
    assert path in fields, fields
    assert any(words in text for text in fields[path]), fields[path]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    ("language", "said"),
    [
        (
            "fr",
            "llm_tokens\N{NO-BREAK SPACE}: tarif gpt-4o · input\N{NO-BREAK SPACE}: 2,50 USD par "
            "1 million → 2,00 USD par 1 million, tarif gpt-4o ajouté (8,00 USD par 1 million)",
        ),
        (
            "de",
            "llm_tokens: Tarif gpt-4o · input: 2,50 USD pro 1 Mio. → 2,00 USD pro 1 Mio., "
            "Tarif gpt-4o hinzugefügt (8,00 USD pro 1 Mio.)",
        ),
    ],
)
def test_the_deal_reads_in_the_admin_users_language(tokens_plan, language, said):
    # Issue 49: the deal's text on the subscription page is in the reader's words.
    response = subscribe({"meter": "llm_tokens", "rates": DEAL_ROWS})
    subscription = Subscription.objects.get(pk=response.json()["id"])

    with translation.override(language):
        text = deal_text(subscription.overrides, subscription.version)

    assert text.replace("\N{NO-BREAK SPACE}", " ").startswith(
        said.replace("\N{NO-BREAK SPACE}", " ")
    )
    assert "removed" not in text and "rate " not in text

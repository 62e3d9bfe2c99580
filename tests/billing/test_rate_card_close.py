"""S25 end to end (issue 50): a token rate card posted through the API, usage
posted through the API, /usage's rates while the month runs, and the close's
invoice with one line per row that priced usage, each with its group, exact."""

import io
import os
import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from customers.portal import portal_session_create
from customers.services import customer_create
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from tests.factories import api_client, llm_tokens_meter, subscribe
from wallets.models import Wallet
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db

NOV_2 = datetime(2026, 11, 2, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
MILLION = "1000000"


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": MILLION}


S25_CARD = {
    "meter": "llm_tokens",
    "model": "overage",
    "included_units": "0",
    "price_by": ["model", "token_type"],
    "rates": [
        {"when": {"model": "gpt-4o", "token_type": "input"}, "pricing": per_million("2.50")},
        {"when": {"model": "gpt-4o", "token_type": "output"}, "pricing": per_million("10.00")},
        {"when": {"model": "gpt-4o", "token_type": "cache_read"}, "pricing": per_million("1.25")},
        {"when": {"model": "claude-sonnet"}, "pricing": per_million("3.00")},
        {"when": {}, "pricing": per_million("4.00")},
    ],
}
S25_USAGE = [
    ("gpt-4o", "input", 1_000_000),
    ("gpt-4o", "output", 200_000),
    ("gpt-4o", "cache_read", 500_000),
    ("claude-sonnet", "input", 300_000),
    ("llama-3", "input", 10_000),
]


@pytest.fixture
def s25(db):
    llm_tokens_meter()
    admin = api_client("admin")
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = admin.post(
        "/api/v1/plans", plan | {"publish": True, "charges": [S25_CARD]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "tokens")
    # Each row's usage in two events, one split across an hour's edge.
    events = []
    for i, (model, token_type, tokens) in enumerate(S25_USAGE):
        for j, (part, minute) in enumerate(
            ((tokens // 4, "10:59:30"), (tokens - tokens // 4, "11:00:30"))
        ):
            events.append(
                {
                    "id": f"e{i}-{j}",
                    "customer": "acme",
                    "event_name": "llm.tokens",
                    "timestamp": f"2026-11-1{i}T{minute}Z",
                    "properties": {"tokens": part, "model": model, "token_type": token_type},
                }
            )
    posted = api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    assert posted.status_code in (200, 201, 202), posted.json()
    return subscription


def test_s25_usage_reads_each_row(s25):
    body = (
        api_client("read")
        .get("/api/v1/customers/acme/usage?period_start=2026-11-01T00:00:00Z")
        .json()
    )
    (line,) = body["lines"]
    assert line["quantity"] == "2010000"
    assert line["amount"] == "6.07"
    assert line["rates"] == [
        {
            "group": {"model": "gpt-4o", "token_type": "input"},
            "quantity": "1000000",
            "amount": "2.50",
        },
        {
            "group": {"model": "gpt-4o", "token_type": "output"},
            "quantity": "200000",
            "amount": "2.00",
        },
        {
            "group": {"model": "gpt-4o", "token_type": "cache_read"},
            "quantity": "500000",
            "amount": "0.63",
        },
        {"group": {"model": "claude-sonnet"}, "quantity": "300000", "amount": "0.90"},
        {"group": {}, "quantity": "10000", "amount": "0.04"},
    ]


def test_s25_the_close_writes_a_line_per_row_with_its_group(s25):
    periods_close(as_of=DEC_1)

    invoice = Invoice.objects.get(subscription=s25, reason="period")
    lines = [
        (line.group, line.quantity, line.unit_price, line.per, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens")
    ]
    assert lines == [
        (
            {"model": "gpt-4o", "token_type": "input"},
            D(1_000_000),
            D("2.50"),
            D(MILLION),
            D("2.50"),
        ),
        (
            {"model": "gpt-4o", "token_type": "output"},
            D(200_000),
            D("10.00"),
            D(MILLION),
            D("2.00"),
        ),
        (
            {"model": "gpt-4o", "token_type": "cache_read"},
            D(500_000),
            D("1.25"),
            D(MILLION),
            D("0.63"),
        ),
        ({"model": "claude-sonnet"}, D(300_000), D("3.00"), D(MILLION), D("0.90")),
        ({}, D(10_000), D("4.00"), D(MILLION), D("0.04")),
    ]
    assert invoice.subtotal == D("6.07")
    api = api_client("read").get(f"/api/v1/invoices/{invoice.pk}").json()
    assert [line.get("group") for line in api["lines"] if line["meter"] == "llm_tokens"] == [
        g for g, *_ in lines
    ]


def test_s25_the_portal_shows_each_row_in_the_customers_language(s25, client):
    now = datetime(2026, 11, 20, tzinfo=UTC)
    token = portal_session_create(customer=s25.customer, now=now).token
    with time_machine.travel(now, tick=False):
        page = client.get(f"/portal/{token}/?lang=fr").content.decode()
    rows = page[page.index('class="breakdown rates">') + 24 :]
    rows = " ".join(re.sub(r"<[^>]+>", " ", rows[: rows.index("</table>")]).split())
    assert rows == (
        "Par tarif gpt-4o · input 1 000 000 2,50 gpt-4o · output 200 000 2,00 "
        "gpt-4o · cache_read 500 000 0,63 claude-sonnet 300 000 0,90 "
        "autre utilisation 10 000 0,04"
    )


def test_late_usage_of_a_card_is_billed_at_its_row(s25):
    periods_close(as_of=DEC_1)
    # 400,000 gpt-4o output tokens stamped in November arrive on December 2nd
    late = datetime(2026, 12, 2, tzinfo=UTC)
    event = {
        "id": "late",
        "customer": "acme",
        "event_name": "llm.tokens",
        "timestamp": "2026-11-28T10:00:00Z",
        "properties": {"tokens": 400_000, "model": "gpt-4o", "token_type": "output"},
    }
    with time_machine.travel(late, tick=False):
        posted = api_client("events:write").post(
            "/api/v1/events", {"events": [event]}, format="json"
        )
    assert posted.status_code in (200, 201, 202), posted.json()

    periods_close(as_of=datetime(2027, 1, 1, tzinfo=UTC))

    december = Invoice.objects.get(subscription=s25, reason="period", period_start=DEC_1)
    (late_line,) = december.lines.filter(kind="late_usage")
    # 400,000 at 10.00 per 1,000,000
    assert late_line.amount == D("4.00")


def test_s25_the_pdf_groups_the_rows_under_their_charge(s25, output_dir):
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(subscription=s25, reason="period")

    pdf = render_invoice_pdf(invoice)

    with open(os.path.join(output_dir, "s25.pdf"), "wb") as saved:
        saved.write(pdf)
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split()
    )
    assert "LLM tokens gpt-4o · input" in text, text
    assert "gpt-4o · output" in text and "claude-sonnet" in text, text
    assert "other usage" in text, text
    assert text.count("LLM tokens") == 1, text


def test_s25_as_a_balance_charge_draws_each_rows_price(db):
    llm_tokens_meter()
    card = S25_CARD | {"model": "balance", "included_units": None}
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, "tokens")
    money_top_up(customer=customer, amount=D("10.00"), currency="USD", now=NOV_2)
    events = [
        {
            "id": f"b{i}",
            "customer": "acme",
            "event_name": "llm.tokens",
            "timestamp": "2026-11-02T10:00:00Z",
            "properties": {"tokens": tokens, "model": model, "token_type": token_type},
        }
        for i, (model, token_type, tokens) in enumerate(S25_USAGE)
    ]
    with time_machine.travel(NOV_2, tick=False):
        posted = api_client("events:write").post(
            "/api/v1/events", {"events": events}, format="json"
        )
    assert posted.status_code in (200, 201, 202), posted.json()

    # 2.50 + 2.00 + 0.625 + 0.90 + 0.04 drawn, exactly
    assert Wallet.objects.get(customer=customer, kind="money").balance == D("3.935")


def test_each_row_takes_any_scheme_its_tiers_counting_that_rows_quantity_alone(db):
    # given: gpt-4o graduated (2.00 per 1M up to 1M tokens, then 1.00), claude-sonnet
    # by volume (3.00 per 1M up to 500,000, 2.00 per 1M for all beyond), the rest in
    # packages of 100,000 tokens at 0.50
    llm_tokens_meter()

    def tier(up_to, price):
        return {"up_to": up_to, "unit_price": price, "per": MILLION}

    card = {
        "meter": "llm_tokens",
        "model": "overage",
        "included_units": "0",
        "price_by": ["model"],
        "rates": [
            {
                "when": {"model": "gpt-4o"},
                "pricing": {
                    "scheme": "graduated",
                    "tiers": [tier("1000000", "2.00"), tier(None, "1.00")],
                },
            },
            {
                "when": {"model": "claude-sonnet"},
                "pricing": {
                    "scheme": "volume",
                    "tiers": [tier("500000", "3.00"), tier(None, "2.00")],
                },
            },
            {
                "when": {},
                "pricing": {"scheme": "package", "package_size": "100000", "package_price": "0.50"},
            },
        ],
    }
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [card]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscribe(customer, "tokens")
    sent = [
        ("llama-3", 250_000),
        ("gpt-4o", 900_000),
        ("claude-sonnet", 600_000),
        ("gpt-4o", 600_000),
    ]
    events = [
        {
            "id": f"t{i}",
            "customer": "acme",
            "event_name": "llm.tokens",
            "timestamp": f"2026-11-1{i}T10:00:00Z",
            "properties": {"tokens": n, "model": model, "token_type": "input"},
        }
        for i, (model, n) in enumerate(sent)
    ]
    posted = api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    assert posted.status_code in (200, 201, 202), posted.json()

    # when
    periods_close(as_of=DEC_1)

    # then: gpt-4o's first tier ends at its own 1,000,000 tokens (not the card's
    # 2,350,000): 2.00 + 0.50; claude-sonnet's 600,000 all at 2.00 per 1M: 1.20;
    # 250,000 other tokens are 3 packages: 1.50
    invoice = Invoice.objects.get(subscription=subscription, reason="period")
    assert [
        (line.group, line.quantity, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens")
    ] == [
        ({"model": "gpt-4o"}, D(1_000_000), D("2.00")),
        ({"model": "gpt-4o"}, D(500_000), D("0.50")),
        ({"model": "claude-sonnet"}, D(600_000), D("1.20")),
        ({}, D(3), D("1.50")),
    ]
    assert invoice.subtotal == D("5.20")

"""The invoices API: list filters, detail, void with a credit note, pagination and
scopes; and invoice and credit note numbers, gap-free per year in the order of
finalization. Time is set explicitly; a refused request changes nothing."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.invoicing.close import periods_close
from billing.models import Subscription, SubscriptionChange
from billing.usage.ingestion import events_ingest
from invoices.models import CreditNote, Invoice, InvoiceLine
from invoices.settlement import invoice_mark_paid
from plans.rating import LineInput
from tests.factories import (
    CustomerFactory,
    SubscriptionFactory,
    ai_assistant_plan,
    api_client,
    period_draft,
    prompts_meter,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def ai_assistant(db):
    """S1's plan: 19.99 a month, 200 prompts included, 0.05 a prompt over."""
    prompts_meter()
    ai_assistant_plan()


def subscribe(external_id: str, start: datetime = NOV_1) -> Subscription:
    return SubscriptionFactory(
        customer__external_id=external_id,
        customer__name=external_id.title(),
        plan="ai_assistant",
        start=start,
    )


def prompts(external_id: str, count: int, *, day: datetime) -> None:
    events = [
        {
            "id": f"{external_id}-{i}",
            "customer": external_id,
            "event_name": "prompt",
            "timestamp": day.isoformat(),
        }
        for i in range(count)
    ]
    assert not events_ingest(events=events, now=day).rejected


def invoice_state() -> dict:
    """Every invoice row as it stands, to show a refusal wrote nothing."""
    models = (Subscription, SubscriptionChange, Invoice, InvoiceLine, CreditNote)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "subscriptions": list(
            Subscription.objects.order_by("id").values_list("version_id", "seats", "status")
        ),
        "invoices": list(
            Invoice.objects.order_by("id").values_list(
                "id", "status", "number", "subtotal", "total", "finalized_at", "voided_at"
            )
        ),
        "lines": list(InvoiceLine.objects.order_by("id").values_list("invoice", "kind", "amount")),
        "credit_notes": list(CreditNote.objects.order_by("id").values_list("number", "total")),
    }


def ids(body: dict) -> list[int]:
    return [invoice["id"] for invoice in body["results"]]


@pytest.fixture
def closed_november(ai_assistant, settings):
    """acme (400 prompts) and beta (180 prompts) from November 1st, closed at
    December 1st with a day's grace: the start invoices are finalized, the closing
    invoices still drafts."""
    settings.BILLING_INVOICE_GRACE_HOURS = 24
    subscribe("acme")
    subscribe("beta")
    prompts("acme", 400, day=datetime(2026, 11, 10, tzinfo=UTC))
    prompts("beta", 180, day=datetime(2026, 11, 10, tzinfo=UTC))
    periods_close(as_of=DEC_1)
    return {
        (i.customer.external_id, i.reason): i for i in Invoice.objects.select_related("customer")
    }


# list


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("customer=acme&status=finalized", [("acme", "start")]),
        ("customer=acme&status=draft", [("acme", "period")]),
        ("customer=acme", [("acme", "start"), ("acme", "period")]),
        ("status=finalized", [("acme", "start"), ("beta", "start")]),
        ("status=void", []),
        ("customer=nobody", []),
        ("", [("acme", "start"), ("beta", "start"), ("acme", "period"), ("beta", "period")]),
    ],
)
def test_the_list_filters_exactly_by_customer_and_status(api, closed_november, query, expected):
    response = api.get(f"/api/v1/invoices?{query}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert ids(body) == [closed_november[key].pk for key in expected]
    assert body["next"] is None
    assert [(i["customer"], i["reason"]) for i in body["results"]] == expected


@pytest.mark.parametrize("status", ["finalised", "FINALIZED", "", "open"])
def test_an_unknown_status_filter_is_refused(api, closed_november, status):
    response = api.get(f"/api/v1/invoices?customer=acme&status={status}")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["type"], error["fields"]) == ("invalid_request", {"status": ["unknown status"]})


def test_the_list_is_paginated_in_pages_linked_by_next(api, closed_november):
    # when
    first = api.get("/api/v1/invoices?limit=3").json()
    second = api.get(first["next"]).json()

    # then: every invoice once, oldest first, across two pages
    assert set(first) == set(second) == {"results", "next"}
    assert len(first["results"]) == 3
    assert second["next"] is None
    assert ids(first) + ids(second) == sorted(i.pk for i in closed_november.values())


def test_pages_keep_the_filters(api, closed_november):
    first = api.get("/api/v1/invoices?status=draft&limit=1").json()
    second = api.get(first["next"]).json()

    assert (ids(first), ids(second), second["next"]) == (
        [closed_november["acme", "period"].pk],
        [closed_november["beta", "period"].pk],
        None,
    )


# detail


def test_an_invoice_has_its_lines_and_totals(api, closed_november):
    # given: acme's November close, finalized the day after
    periods_close(as_of=DEC_2)
    invoice = closed_november["acme", "period"]

    # when
    response = api.get(f"/api/v1/invoices/{invoice.pk}")

    # then: November's overage and December's base fee
    assert response.status_code == 200, response.content
    body = response.json()
    assert {
        k: body[k]
        for k in (
            "id",
            "number",
            "customer",
            "subscription",
            "reason",
            "status",
            "currency",
            "period_start",
            "period_end",
            "subtotal",
            "credits_applied",
            "tax",
            "total",
            "finalized_at",
            "credit_notes",
        )
    } == {
        "id": invoice.pk,
        "number": "INV-2026-000003",
        "customer": "acme",
        "subscription": invoice.subscription_id,
        "reason": "period",
        "status": "finalized",
        "currency": "USD",
        # the span its lines bill: November's usage and December's fee (API.md)
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2027-01-01T00:00:00Z",
        "subtotal": "29.99",
        "credits_applied": "0.00",
        "tax": "0.00",
        "total": "29.99",
        "finalized_at": "2026-12-02T00:00:00Z",
        "credit_notes": [],
    }
    line_ids = list(invoice.lines.order_by("position").values_list("pk", flat=True))
    assert [line.pop("id") for line in body["lines"]] == line_ids
    assert body["lines"] == [
        {
            "kind": "overage",
            "description": "Prompts over 200 included",
            "meter": "prompts",
            "quantity": "200",
            "unit_price": "0.05",
            "per": "1",
            "amount": "10.00",
            "share": None,
        },
        {
            "kind": "base_fee",
            "description": "AI Assistant (Dec 2026)",
            "meter": None,
            "quantity": "1",
            "unit_price": "19.99",
            "per": "1",
            "amount": "19.99",
            "share": None,
        },
    ]


def test_a_draft_has_no_number_yet(api, closed_november):
    body = api.get(f"/api/v1/invoices/{closed_november['beta', 'period'].pk}").json()

    assert (body["status"], body["number"], body["finalized_at"]) == ("draft", None, None)
    assert [(line["kind"], line["amount"]) for line in body["lines"]] == [("base_fee", "19.99")]


def test_a_line_priced_per_million_tokens_says_its_per(api, db):
    # given: 500,000 tokens at 1.25 per 1,000,000, rounded once to 0.63
    line = LineInput(
        "overage",
        "Tokens",
        "tokens",
        Decimal(500_000),
        Decimal("1.25"),
        Decimal("0.63"),
        per=Decimal(1_000_000),
    )
    invoice = period_draft(CustomerFactory(external_id="acme"), [line])

    # when
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()

    # then
    assert InvoiceLine.objects.get(invoice=invoice).per == Decimal(1_000_000)
    ((quantity, unit_price, per, amount),) = [
        (x["quantity"], x["unit_price"], x["per"], x["amount"]) for x in body["lines"]
    ]
    assert (quantity, unit_price, per, amount) == ("500000", "1.25", "1000000", "0.63")


@pytest.mark.parametrize("suffix", ["", "/void"])
def test_an_unknown_invoice_is_not_found(api, closed_november, suffix):
    before = invoice_state()
    missing = max(i.pk for i in closed_november.values()) + 1

    response = (api.post if suffix else api.get)(f"/api/v1/invoices/{missing}{suffix}")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["type"] == "not_found"
    assert invoice_state() == before


# void


def test_voiding_a_finalized_invoice_issues_a_credit_note_for_its_total(api, closed_november):
    # given: acme's November close, finalized: 29.99
    periods_close(as_of=DEC_2)
    invoice = closed_november["acme", "period"]
    before = api.get(f"/api/v1/invoices/{invoice.pk}").json()

    # when
    with time_machine.travel(datetime(2026, 12, 5, 9, 30, tzinfo=UTC), tick=False):
        response = api.post(
            f"/api/v1/invoices/{invoice.pk}/void", {"reason": "billed twice"}, format="json"
        )

    # then: void, its number and lines as they were, a credit note of 29.99
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "void"
    note = CreditNote.objects.get()
    assert body["credit_notes"] == [note.pk]
    credit_note = api.get(f"/api/v1/credit-notes/{note.pk}").json()
    assert {k: credit_note[k] for k in ("number", "total", "memo", "issued_at")} == {
        "number": "CN-2026-000001",
        "total": "29.99",
        "memo": "billed twice",
        "issued_at": "2026-12-05T09:30:00Z",
    }
    assert (before["amount_due"], body["amount_due"]) == ("29.99", "0.00")
    unchanged = {
        k: v
        for k, v in before.items()
        if k not in ("status", "credit_notes", "amount_due", "amount_credited")
    }
    assert {k: v for k, v in body.items() if k in unchanged} == unchanged
    assert body["number"] == "INV-2026-000003"
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json() == body
    assert ids(api.get("/api/v1/invoices?status=void").json()) == [invoice.pk]


def test_a_void_without_a_reason_names_the_invoice(api, closed_november):
    invoice = closed_november["acme", "start"]

    with time_machine.travel(DEC_2, tick=False):
        body = api.post(f"/api/v1/invoices/{invoice.pk}/void").json()

    note = api.get(f"/api/v1/credit-notes/{body['credit_notes'][0]}").json()
    assert (note["memo"], note["total"]) == (f"void of {invoice.number}", "19.99")


def paid(invoice: Invoice) -> Invoice:
    return invoice_mark_paid(invoice=invoice, reference="wire 42", now=DEC_2)


@pytest.mark.parametrize(
    ("which", "prepare"),
    [
        pytest.param(("acme", "period"), lambda invoice: invoice, id="draft"),
        pytest.param(("acme", "start"), paid, id="paid"),
    ],
)
def test_only_a_finalized_invoice_can_be_voided(api, closed_november, which, prepare):
    prepare(closed_november[which])
    before = invoice_state()

    with time_machine.travel(DEC_2, tick=False):
        response = api.post(f"/api/v1/invoices/{closed_november[which].pk}/void")

    assert response.status_code == 409, response.content
    assert response.json()["error"]["type"] == "conflict"
    assert invoice_state() == before


def test_voiding_twice_is_refused(api, closed_november):
    url = f"/api/v1/invoices/{closed_november['acme', 'start'].pk}/void"
    with time_machine.travel(DEC_2, tick=False):
        assert api.post(url).status_code == 200
        before = invoice_state()

        response = api.post(url)

    assert response.status_code == 409, response.content
    assert invoice_state() == before


@pytest.mark.parametrize("body", [{"reason": 7}, {"reason": "x" * 501}])
def test_a_bad_void_reason_is_refused(api, closed_november, body):
    before = invoice_state()

    with time_machine.travel(DEC_2, tick=False):
        response = api.post(
            f"/api/v1/invoices/{closed_november['acme', 'start'].pk}/void", body, format="json"
        )

    assert response.status_code == 400, response.content
    assert "reason" in response.json()["error"]["fields"]
    assert invoice_state() == before


# scopes


def test_a_read_only_key_reads_invoices_but_cannot_void_them(closed_november):
    reader = api_client("read")
    invoice = closed_november["acme", "start"]
    before = invoice_state()

    listed = reader.get("/api/v1/invoices?customer=acme&status=finalized")
    detail = reader.get(f"/api/v1/invoices/{invoice.pk}")
    with time_machine.travel(DEC_2, tick=False):
        voided = reader.post(f"/api/v1/invoices/{invoice.pk}/void")

    assert (listed.status_code, ids(listed.json())) == (200, [invoice.pk])
    assert (detail.status_code, detail.json()["number"]) == (200, invoice.number)
    assert voided.status_code == 403, voided.content
    assert voided.json()["error"]["type"] == "permission_denied"
    assert invoice_state() == before


def test_an_events_key_cannot_read_invoices_and_no_key_is_unauthenticated(closed_november):
    invoice = closed_november["acme", "start"]
    before = invoice_state()

    events_only = api_client("events:write").get(f"/api/v1/invoices/{invoice.pk}")
    anonymous = APIClient().post(f"/api/v1/invoices/{invoice.pk}/void")

    assert events_only.status_code == 403
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_failed"
    assert invoice_state() == before


# numbers


def test_invoice_numbers_follow_the_order_of_finalization_without_gaps(ai_assistant, settings):
    # given: a day's grace; acme from November 1st, closed on December 1st
    settings.BILLING_INVOICE_GRACE_HOURS = 24
    subscribe("acme")
    periods_close(as_of=DEC_1)  # acme's start invoice (written Nov 1) is finalized
    acme_close = Invoice.objects.get(reason="period")
    # and, written after it but dated earlier, beta's backdated start invoice
    subscribe("beta", start=datetime(2026, 11, 15, tzinfo=UTC))
    beta_start = Invoice.objects.get(customer__external_id="beta")
    assert beta_start.pk > acme_close.pk

    # when: runs as each grace ends
    periods_close(as_of=datetime(2026, 12, 1, 6, tzinfo=UTC))
    periods_close(as_of=DEC_2)

    # then: numbered as they were finalized, not as they were written
    numbers = {
        (i.customer.external_id, i.reason): (i.number, i.finalized_at)
        for i in Invoice.objects.select_related("customer")
    }
    assert numbers == {
        ("acme", "start"): ("INV-2026-000001", DEC_1),
        ("beta", "start"): ("INV-2026-000002", datetime(2026, 12, 1, 6, tzinfo=UTC)),
        ("acme", "period"): ("INV-2026-000003", DEC_2),
    }


def test_numbers_restart_each_year_for_invoices_and_credit_notes(api, ai_assistant):
    # given: acme from December 1st, its close finalized on January 1st
    subscribe("acme", start=DEC_1)
    periods_close(as_of=DEC_1)
    periods_close(as_of=datetime(2027, 1, 1, tzinfo=UTC))
    start = Invoice.objects.get(reason="start")
    january = Invoice.objects.get(reason="period")
    assert (start.number, january.number) == ("INV-2026-000001", "INV-2027-000001")

    # when: both voided, one in each year, and a third void in 2027 refused
    def void(invoice: Invoice, at: datetime) -> dict:
        with time_machine.travel(at, tick=False):
            body = api.post(f"/api/v1/invoices/{invoice.pk}/void").json()
        return api.get(f"/api/v1/credit-notes/{body['credit_notes'][0]}").json()

    notes = [
        void(start, datetime(2026, 12, 31, 23, 59, tzinfo=UTC))["number"],
        void(january, datetime(2027, 1, 2, tzinfo=UTC))["number"],
    ]

    # then
    assert notes == ["CN-2026-000001", "CN-2027-000001"]
    # and a void takes no invoice number: the next invoice is the next in its year
    subscribe("beta", start=datetime(2027, 1, 5, tzinfo=UTC))
    periods_close(as_of=datetime(2027, 1, 5, tzinfo=UTC))
    assert Invoice.objects.get(customer__external_id="beta").number == "INV-2027-000002"


def test_credit_notes_are_numbered_in_sequence(api, closed_november):
    periods_close(as_of=DEC_2)
    order = [("beta", "period"), ("acme", "start"), ("acme", "period")]

    with time_machine.travel(datetime(2026, 12, 3, tzinfo=UTC), tick=False):
        ids = [
            api.post(f"/api/v1/invoices/{closed_november[key].pk}/void").json()["credit_notes"][0]
            for key in order
        ]
    notes = [api.get(f"/api/v1/credit-notes/{note_id}").json() for note_id in ids]

    assert [(n["number"], n["total"]) for n in notes] == [
        ("CN-2026-000001", "19.99"),
        ("CN-2026-000002", "19.99"),
        ("CN-2026-000003", "29.99"),
    ]

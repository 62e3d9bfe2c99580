"""Payment terms and payments outside Stripe: an invoice is due its customer's
terms after it is finalized (BILLING_PAYMENT_TERMS_DAYS by default), is past due
only once that date has passed with something left to pay, and a bank transfer is
recorded with POST /invoices/{id}/pay. A refused request changes nothing."""

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from billing.models import WebhookDelivery
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from invoices.services import invoice_finalize, invoice_void
from tests.factories import (
    CustomerFactory,
    SubscriptionFactory,
    ai_assistant_plan,
    api_client,
    prompts_meter,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
# 23:30 on November 30th in Los Angeles (UTC-8): already December 1st in UTC.
NOV_30_LATE_IN_LA = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


@pytest.fixture
def api():
    return api_client("read", "admin")


@pytest.fixture
def plan(db):
    prompts_meter()
    return ai_assistant_plan()


def draft_for(external_id: str, *, terms: int | None, timezone: str = "UTC") -> Invoice:
    """A customer's start invoice (19.99), still a draft."""
    customer = CustomerFactory(
        external_id=external_id, timezone_name=timezone, payment_terms_days=terms
    )
    SubscriptionFactory(customer=customer, plan="ai_assistant", start=NOV_1)
    return Invoice.objects.get(customer=customer)


def finalized(draft: Invoice, now: datetime) -> Invoice:
    """The draft finalized at `now`, the clock moved there: a document is dated
    when it is issued (invoices.issue_dates)."""
    with time_machine.travel(now, tick=False):
        return invoice_finalize(invoice=draft, now=now, collect=False)


def pdf_text(invoice: Invoice) -> str:
    """The PDF's words, whitespace folded."""
    reader = PdfReader(io.BytesIO(render_invoice_pdf(invoice)))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


# Due dates


@pytest.mark.parametrize(
    ("terms", "due_at", "printed"),
    [
        (0, NOV_30_LATE_IN_LA, "Due date 30 Nov 2026"),
        (30, datetime(2026, 12, 31, 7, 30, tzinfo=UTC), "Due date 30 Dec 2026"),
    ],
)
def test_due_date_is_the_terms_after_finalization_in_the_customers_calendar(
    plan, terms, due_at, printed
):
    # given: a Los Angeles customer's invoice finalized late on November 30th, local time
    draft = draft_for("acme", terms=terms, timezone="America/Los_Angeles")

    # when
    invoice = finalized(draft, NOV_30_LATE_IN_LA)

    # then: due `terms` days later; printed as the customer's date, not UTC's
    assert (invoice.finalized_at, invoice.due_at) == (NOV_30_LATE_IN_LA, due_at)
    text = pdf_text(invoice)
    assert "Issue date 30 Nov 2026" in text
    assert printed in text


def test_without_terms_of_its_own_a_customer_gets_the_setting(plan, settings):
    settings.BILLING_PAYMENT_TERMS_DAYS = 14
    draft = draft_for("acme", terms=None)

    invoice = finalized(draft, NOV_1)

    assert invoice.due_at == NOV_1 + timedelta(days=14)


def test_the_api_shows_issue_and_due_dates_and_what_is_due(api, plan):
    draft = draft_for("acme", terms=30)
    finalized(draft, NOV_1)

    body = api.get(f"/api/v1/invoices/{draft.pk}").json()

    assert (body["issued_at"], body["due_at"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert (body["paid_at"], body["payment_reference"]) == (None, None)
    assert (body["total"], body["amount_due"]) == ("19.99", "19.99")


# Past due


def test_an_invoice_is_past_due_only_after_its_due_date(api, plan, admin_client):
    # given: acme's invoice due December 1st, beta's due at once (terms 0)
    finalized(draft_for("acme", terms=30), NOV_1)
    finalized(draft_for("beta", terms=0), NOV_1)

    def past_due_numbers(now: datetime) -> list[str]:
        with time_machine.travel(now, tick=False):
            rows = api.get("/api/v1/invoices?past_due=true").json()["results"]
        return sorted(row["customer"] for row in rows)

    # then
    assert past_due_numbers(NOV_1 + timedelta(days=1)) == ["beta"]
    assert past_due_numbers(datetime(2026, 12, 1, 0, 1, tzinfo=UTC)) == ["acme", "beta"]
    with time_machine.travel(NOV_1 + timedelta(days=1), tick=False):
        not_due = api.get("/api/v1/invoices?past_due=false").json()["results"]
        dashboard = admin_client.get("/admin/").context["dashboard"]
    assert [row["customer"] for row in not_due] == ["acme"]
    past_due_row = next(p for p in dashboard.payment_problems if p.label == "Past due, unpaid")
    assert past_due_row.count == 1


def test_a_paid_or_void_invoice_is_not_past_due(api, plan):
    paid = finalized(draft_for("acme", terms=0), NOV_1)
    void = finalized(draft_for("beta", terms=0), NOV_1)
    api.post(f"/api/v1/invoices/{paid.pk}/pay", {"reference": "wire 1"}, format="json")
    invoice_void(invoice=void, reason="", now=NOV_1)

    with time_machine.travel(NOV_1 + timedelta(days=2), tick=False):
        assert api.get("/api/v1/invoices?past_due=true").json()["results"] == []
    assert api.get(f"/api/v1/invoices/{void.pk}").json()["amount_due"] == "0.00"


@pytest.mark.parametrize("value", ["yes", "1", "TRUE", ""])
def test_a_bad_past_due_filter_is_refused(api, plan, value):
    response = api.get(f"/api/v1/invoices?past_due={value}")

    assert response.status_code == 400
    assert "past_due" in response.json()["error"]["fields"]


# Payments outside Stripe


def test_a_bank_transfer_pays_the_invoice_with_its_reference(api, plan):
    # given: a finalized invoice and an endpoint that takes invoice.paid
    from billing.models import WebhookEndpoint

    WebhookEndpoint.objects.create(url="https://hooks.acme.test/x", event_types=["invoice.paid"])
    invoice = finalized(draft_for("acme", terms=30), NOV_1)

    # when
    with time_machine.travel(datetime(2026, 11, 20, tzinfo=UTC), tick=False):
        response = api.post(
            f"/api/v1/invoices/{invoice.pk}/pay",
            {"reference": "wire 2026-118", "paid_at": "2026-11-18T09:00:00Z"},
            format="json",
        )

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["payment_reference"]) == ("paid", "wire 2026-118")
    assert (body["paid_at"], body["amount_due"]) == ("2026-11-18T09:00:00Z", "0.00")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event_type, delivery.event_id) == (
        "invoice.paid",
        f"evt_invoice_{invoice.pk}_paid",
    )


def test_paid_at_defaults_to_now(api, plan):
    invoice = finalized(draft_for("acme", terms=30), NOV_1)

    with time_machine.travel(datetime(2026, 11, 20, 10, tzinfo=UTC), tick=False):
        body = api.post(
            f"/api/v1/invoices/{invoice.pk}/pay", {"reference": "wire 7"}, format="json"
        ).json()

    assert body["paid_at"] == "2026-11-20T10:00:00Z"


@pytest.mark.parametrize("state", ["draft", "void", "paid"])
def test_only_a_finalized_invoice_can_be_paid(api, plan, state):
    invoice = draft_for("acme", terms=30)
    if state != "draft":
        invoice = finalized(invoice, NOV_1)
    if state == "void":
        invoice_void(invoice=invoice, reason="", now=NOV_1)
    if state == "paid":
        api.post(f"/api/v1/invoices/{invoice.pk}/pay", {"reference": "first"}, format="json")
    before = Invoice.objects.values().get(pk=invoice.pk)

    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/pay", {"reference": "second"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"
    assert Invoice.objects.values().get(pk=invoice.pk) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "reference"),
        ({"reference": ""}, "reference"),
        ({"reference": "x" * 256}, "reference"),
        ({"reference": ["wire"]}, "reference"),
        ({"reference": "wire", "paid_at": "2026-11-18 09:00"}, "paid_at"),
        ({"reference": "wire", "paid_at": "yesterday"}, "paid_at"),
        ({"reference": "wire", "paid_at": 1763456400}, "paid_at"),
        ({"reference": "wire", "paid_at": "2999-01-01T00:00:00Z"}, "paid_at"),
    ],
)
def test_a_bad_payment_is_refused_and_changes_nothing(api, plan, body, field):
    invoice = finalized(draft_for("acme", terms=30), NOV_1)
    before = Invoice.objects.values().get(pk=invoice.pk)

    response = api.post(f"/api/v1/invoices/{invoice.pk}/pay", body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert Invoice.objects.values().get(pk=invoice.pk) == before


def test_paying_needs_the_admin_scope_and_an_existing_invoice(plan):
    invoice = finalized(draft_for("acme", terms=30), NOV_1)

    read_only = api_client("read").post(
        f"/api/v1/invoices/{invoice.pk}/pay", {"reference": "wire"}, format="json"
    )
    missing = api_client("admin").post(
        "/api/v1/invoices/999999/pay", {"reference": "wire"}, format="json"
    )

    assert (read_only.status_code, missing.status_code) == (403, 404)
    assert Invoice.objects.get(pk=invoice.pk).status == "finalized"


# The customer's terms


def test_a_customer_shows_its_terms_or_the_default(api, db, settings):
    settings.BILLING_PAYMENT_TERMS_DAYS = 30
    CustomerFactory(external_id="acme")
    CustomerFactory(external_id="beta", payment_terms_days=0)

    assert api.get("/api/v1/customers/acme").json()["payment_terms_days"] == 30
    assert api.get("/api/v1/customers/beta").json()["payment_terms_days"] == 0
    # null goes back to the default
    response = api.patch("/api/v1/customers/beta", {"payment_terms_days": None}, format="json")
    assert response.json()["payment_terms_days"] == 30


@pytest.mark.parametrize("value", [-1, 366, 1.5, "net 30", True, [30]])
def test_bad_terms_are_refused_and_change_nothing(api, db, value):
    CustomerFactory(external_id="acme", payment_terms_days=10)

    response = api.patch("/api/v1/customers/acme", {"payment_terms_days": value}, format="json")

    assert response.status_code == 400, response.content
    assert "payment_terms_days" in response.json()["error"]["fields"]
    assert api.get("/api/v1/customers/acme").json()["payment_terms_days"] == 10


def test_the_close_gives_period_invoices_the_customers_terms(plan):
    customer = CustomerFactory(external_id="acme", payment_terms_days=15)
    SubscriptionFactory(customer=customer, plan="ai_assistant", start=NOV_1)

    periods_close(as_of=datetime(2026, 12, 1, 0, 5, tzinfo=UTC))

    for invoice in Invoice.objects.filter(customer=customer).exclude(status="draft"):
        assert invoice.due_at == invoice.finalized_at + timedelta(days=15)
    assert Invoice.objects.filter(customer=customer).exclude(status="draft").exists()

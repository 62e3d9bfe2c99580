"""A payment's date: not before its invoice was issued, not in the future,
whichever way it is recorded with a date (the API's pay, the admin's mark paid
with a reference, the settlement service itself); a refusal changes nothing.
Stripe's payments are dated when we learn of them, whatever time Stripe's event
carries."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.journal.models import JournalEntry
from billing.models import WebhookDelivery, WebhookEndpoint
from common.errors import InvalidRequest
from invoices.models import Invoice
from invoices.settlement import invoice_mark_paid
from tests.factories import api_client
from tests.invoices.conftest import acme_december_invoice, stripe_event
from tests.invoices.stripe_fake import Answer

pytestmark = pytest.mark.django_db

ISSUED = datetime(2026, 12, 2, 9, tzinfo=UTC)  # acme_december_invoice's finalization
NOW = datetime(2026, 12, 10, 15, tzinfo=UTC)


@pytest.fixture
def without_stripe(settings, no_network):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_INVOICE_PDFS = False


@pytest.fixture
def invoice(without_stripe, django_capture_on_commit_callbacks):
    """Acme's invoice of 29.99 issued Dec 2 09:00, unpaid; a paid-invoice endpoint;
    the clock on Dec 10 15:00."""
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hooks", event_types=["invoice.paid"])
    issued = acme_december_invoice(django_capture_on_commit_callbacks)
    with time_machine.travel(NOW, tick=False):
        yield issued


def unchanged(invoice: Invoice) -> None:
    """Nothing was recorded: still finalized, no payment, no entry, no announcement."""
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at, invoice.payment_reference) == ("finalized", None, "")
    assert not JournalEntry.objects.filter(document_key=f"payment:{invoice.pk}").exists()
    assert not WebhookDelivery.objects.filter(event_type="invoice.paid").exists()


def payment_entries(invoice: Invoice) -> list[tuple]:
    return list(
        JournalEntry.objects.filter(document_key=f"payment:{invoice.pk}")
        .order_by("line")
        .values_list("date", "kind", "debit", "credit")
    )


def paid_on(invoice: Invoice, moment: datetime) -> None:
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == ("paid", moment)
    assert payment_entries(invoice) == [
        (moment.date(), "payments_clearing", D("29.99"), D(0)),
        (moment.date(), "receivable", D(0), D("29.99")),
    ]


# The API


def pay(invoice: Invoice, paid_at: str):
    return api_client("admin").post(
        f"/api/v1/invoices/{invoice.pk}/pay",
        {"reference": "wire 118", "paid_at": paid_at},
        format="json",
    )


def test_the_api_refuses_a_payment_dated_before_its_invoice_was_issued(invoice):
    response = pay(invoice, "2019-06-01T00:00:00Z")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"paid_at": ["before the invoice was issued"]}
    assert response.json()["error"]["message"] == (
        f"paid_at (2019-06-01T00:00:00+00:00) is before invoice {invoice.number} was "
        "issued (2026-12-02T09:00:00+00:00)"
    )
    unchanged(invoice)


def test_the_api_refuses_a_payment_a_second_before_the_issue(invoice):
    assert pay(invoice, "2026-12-02T08:59:59Z").status_code == 400
    unchanged(invoice)


def test_the_api_refuses_a_payment_dated_in_the_future(invoice):
    response = pay(invoice, "2026-12-10T15:00:01Z")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"paid_at": ["in the future"]}
    unchanged(invoice)


@pytest.mark.parametrize(
    "moment", [ISSUED, datetime(2026, 12, 5, 11, tzinfo=UTC), NOW], ids=["issue", "between", "now"]
)
def test_the_api_takes_a_payment_dated_from_the_issue_to_now(invoice, moment):
    response = pay(invoice, moment.isoformat())

    assert response.status_code == 200, response.content
    assert response.json()["paid_at"] == moment.isoformat().replace("+00:00", "Z")
    paid_on(invoice, moment)


# The service, which every way of paying calls


def test_the_service_refuses_a_date_in_the_future_or_before_the_issue(invoice):
    for moment in (NOW + timedelta(days=400), ISSUED - timedelta(days=2000)):
        with pytest.raises(InvalidRequest):
            invoice_mark_paid(invoice=invoice, reference="wire", now=NOW, paid_at=moment)
    unchanged(invoice)


# The admin: mark paid, with a reference and the day the money arrived


def mark_paid(admin_client, invoice: Invoice, **received):
    return admin_client.post(
        "/admin/invoices/invoice/",
        {
            "action": "mark_paid_with_reference",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "SEPA 2026-118",
            **received,
        },
    )


def test_the_admin_refuses_a_payment_dated_before_the_issue_on_its_field(admin_client, invoice):
    response = mark_paid(admin_client, invoice, paid_at_0="2019-06-01", paid_at_1="10:00")

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "paid_at": [
            f"{invoice.number}: the payment is dated before the invoice was issued "
            "(2 Dec 2026, 09:00 (UTC))"
        ]
    }
    unchanged(invoice)


def test_the_admin_refuses_a_payment_dated_in_the_future_on_its_field(admin_client, invoice):
    response = mark_paid(admin_client, invoice, paid_at_0="2026-12-10", paid_at_1="15:01")

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "paid_at": ["The payment is dated in the future (now: 10 Dec 2026, 15:00 (UTC))."]
    }
    unchanged(invoice)


def test_the_admin_records_a_payment_dated_between_the_issue_and_now(admin_client, invoice):
    response = mark_paid(admin_client, invoice, paid_at_0="2026-12-05", paid_at_1="11:00")

    assert response.status_code == 302
    paid_on(invoice, datetime(2026, 12, 5, 11, tzinfo=UTC))


def test_the_admin_dates_a_payment_now_when_no_date_is_given(admin_client, invoice):
    response = mark_paid(admin_client, invoice, paid_at_0="", paid_at_1="")

    assert response.status_code == 302
    paid_on(invoice, NOW)


# Stripe: dated when we learn of it, whatever its event's time says


@pytest.fixture
def processing(fake_stripe, django_capture_on_commit_callbacks):
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        Answer(body={"id": "pi_slow", "object": "payment_intent", "status": "processing"}),
    )
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    assert (invoice.status, invoice.payment.status) == ("finalized", "processing")
    return invoice


@pytest.mark.parametrize("created", [datetime(2019, 6, 1, tzinfo=UTC), NOW + timedelta(days=400)])
def test_a_stripe_payment_is_dated_when_its_webhook_comes_not_at_the_events_time(
    processing, deliver, created
):
    event = json.loads(
        stripe_event(
            "evt_odd_time",
            "payment_intent.succeeded",
            {
                "id": "pi_slow",
                "object": "payment_intent",
                "amount": 2999,
                "amount_received": 2999,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"payment_id": str(processing.payment.pk)},
            },
        )
    )
    event["created"] = int(created.timestamp())

    with time_machine.travel(NOW, tick=False):
        assert deliver(json.dumps(event)).status_code == 200

    paid_on(processing, NOW)
    assert payment_entries(processing)[0][0] == date(2026, 12, 10)

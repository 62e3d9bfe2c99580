"""Payments whose outcome no webhook brought (an endpoint down, an event never
delivered): the beat asks Stripe about those waiting over an hour and applies
the answer through the webhook's own handlers, so a late event changes nothing
twice. The `stripe` library talks to a fake Stripe on 127.0.0.1."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from customers.services import customer_create
from invoices import tasks
from invoices.models import Invoice, Payment, Purchase
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.beat import scheduled
from tests.invoices.conftest import stripe_event
from tests.invoices.stripe_fake import Answer
from tests.wallets.support import build_catalog, wallet_of
from wallets.models import CreditBlock

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture
def acme(db):
    return customer_create(
        external_id="acme", name="Acme Inc", currency="USD", email="billing@acme.test"
    )


def reconcile(at: datetime, capture) -> int:
    """The beat's task at `at`, and the tasks it sends (run at once)."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        return tasks.reconcile_payments()


def session(purchase: Purchase, **fields) -> dict:
    payment = purchase.payment
    return {
        "id": payment.stripe_checkout_session_id,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 9900,
        "currency": "usd",
        "customer": payment.stripe_customer_id,
        "payment_intent": "pi_checkout",
        "metadata": {"purchase_id": str(purchase.pk), "payment_id": str(payment.pk)},
    } | fields


@pytest.fixture
def checkout(api, acme, fake_stripe, django_capture_on_commit_callbacks) -> Purchase:
    """A pack on a Checkout page, opened at NOW."""
    build_catalog()
    fake_stripe.default_payment_method = None
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/customers/acme/wallets/credits",
            {"pack": "runs_100", "checkout": True},
            format="json",
        )
    assert response.status_code == 202, response.content
    purchase = Purchase.objects.get()
    assert purchase.payment.status == Payment.PROCESSING
    return purchase


def test_a_paid_checkout_whose_webhook_never_came_is_granted(
    checkout, acme, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    path = f"/v1/checkout/sessions/{checkout.payment.stripe_checkout_session_id}"
    fake_stripe.queue("GET", path, Answer(body=session(checkout)))

    # not within the hour a webhook normally takes
    assert reconcile(NOW + timedelta(minutes=59), django_capture_on_commit_callbacks) == 0
    assert not fake_stripe.to("GET", path)

    # after it, Stripe is asked and its answer applied
    assert reconcile(NOW + timedelta(minutes=61), django_capture_on_commit_callbacks) == 1
    checkout.refresh_from_db()
    assert checkout.status == Purchase.PAID
    assert checkout.invoice.status == Invoice.PAID
    assert (checkout.block.amount, wallet_of(acme).balance) == (D(100), D(100))
    assert len(fake_stripe.to("GET", path)) == 1

    # the event delivered late, and the beat running again, change nothing
    with django_capture_on_commit_callbacks(execute=True):
        late = deliver(stripe_event("evt_late", "checkout.session.completed", session(checkout)))
    assert late.status_code == 200
    assert reconcile(NOW + timedelta(hours=3), django_capture_on_commit_callbacks) == 0
    assert CreditBlock.objects.count() == 1
    assert wallet_of(acme).balance == D(100)


def test_an_expired_checkout_is_canceled_and_grants_nothing(
    checkout, fake_stripe, django_capture_on_commit_callbacks
):
    path = f"/v1/checkout/sessions/{checkout.payment.stripe_checkout_session_id}"
    fake_stripe.queue(
        "GET", path, Answer(body=session(checkout, status="expired", payment_status="unpaid"))
    )

    assert reconcile(NOW + timedelta(hours=25), django_capture_on_commit_callbacks) == 1

    checkout.refresh_from_db()
    assert (checkout.status, checkout.payment.status) == (Purchase.CANCELED, Payment.CANCELED)
    assert not CreditBlock.objects.exists()


def test_an_open_checkout_is_asked_about_again_an_hour_later(
    checkout, fake_stripe, django_capture_on_commit_callbacks
):
    path = f"/v1/checkout/sessions/{checkout.payment.stripe_checkout_session_id}"
    still_open = Answer(body=session(checkout, status="open", payment_status="unpaid"))
    fake_stripe.queue("GET", path, still_open, still_open)
    first = NOW + timedelta(minutes=61)

    assert reconcile(first, django_capture_on_commit_callbacks) == 1
    assert reconcile(first + timedelta(minutes=30), django_capture_on_commit_callbacks) == 0
    assert reconcile(first + timedelta(minutes=61), django_capture_on_commit_callbacks) == 1

    checkout.refresh_from_db()
    assert (checkout.status, checkout.payment.status) == (Purchase.PENDING, Payment.PROCESSING)
    assert len(fake_stripe.to("GET", path)) == 2


def test_a_processing_invoice_payment_that_succeeded_pays_the_invoice(
    acme, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        Answer(body={"id": "pi_slow", "object": "payment_intent", "status": "processing"}),
    )
    fake_stripe.queue(
        "GET",
        "/v1/payment_intents/pi_slow",
        Answer(
            body={
                "id": "pi_slow",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 2999,
                "amount_received": 2999,
                "currency": "usd",
            }
        ),
    )
    draft = invoice_write_draft(
        customer=acme,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[LineInput("base_fee", "AI Assistant", None, D(1), D("29.99"), D("29.99"))],
        now=DEC_1,
    )
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        invoice_finalize(invoice=draft, now=NOW)
    assert Payment.objects.get().status == Payment.PROCESSING

    assert reconcile(NOW + timedelta(hours=2), django_capture_on_commit_callbacks) == 1

    invoice = Invoice.objects.get(pk=draft.pk)
    assert (invoice.status, invoice.payment_reference) == (Invoice.PAID, "pi_slow")
    assert invoice.payment.status == Payment.SUCCEEDED


def test_setup_periodic_tasks_schedules_the_reconciliation(db):
    assert scheduled("Ask Stripe about payments no webhook settled") == (
        "invoices.tasks.reconcile_payments",
        30,
        "minutes",
    )


def test_without_stripe_nothing_is_asked(settings, no_network):
    settings.STRIPE_API_KEY = ""
    assert tasks.reconcile_payments() == 0

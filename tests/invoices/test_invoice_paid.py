"""One rule marks an invoice paid (invoices.services.invoice_mark_paid), whichever
way the money came: the admin's two actions, a Stripe charge that succeeded at
once, Stripe's webhook for one that was processing, a purchase paid before it
was invoiced. Each announces `invoice.paid` to the product's webhook endpoints
exactly once, and paying an invoice twice announces the first payment only."""

import json
from datetime import UTC, datetime

import pytest

from billing.models import WebhookDelivery, WebhookEndpoint
from common.admin_forms import money_text
from common.errors import Conflict
from customers.services import customer_create
from invoices.models import Invoice, Payment
from invoices.services import (
    invoice_create_purchase,
    invoice_mark_uncollectible,
    invoice_void,
)
from invoices.settlement import invoice_mark_paid
from tests.invoices.conftest import DECEMBER_LINES, acme_december_invoice, stripe_event
from tests.invoices.stripe_fake import Answer

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 9, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, 9, tzinfo=UTC)


@pytest.fixture
def endpoint(db):
    """The product's endpoint for paid invoices (refused at send time: nothing
    leaves the machine; the deliveries are what the tests read)."""
    return WebhookEndpoint.objects.create(
        url="http://127.0.0.1:9/hooks", event_types=["invoice.paid"]
    )


@pytest.fixture
def without_stripe(settings, no_network):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_INVOICE_PDFS = False


def paid_announcements() -> list[tuple[str, dict]]:
    """The invoice.paid deliveries written: (event id, the event's data)."""
    return [
        (delivery.event_id, json.loads(delivery.body)["data"])
        for delivery in WebhookDelivery.objects.filter(event_type="invoice.paid").order_by("id")
    ]


def announced_once(invoice: Invoice, reference: str) -> list[tuple[str, dict]]:
    return [
        (
            f"evt_invoice_{invoice.pk}_paid",
            {
                "invoice": invoice.pk,
                "number": invoice.number,
                "total": "29.99",
                "currency": "USD",
                "payment_reference": reference,
            },
        )
    ]


def succeeded(invoice: Invoice, event_id: str = "evt_ok") -> str:
    """Stripe's payment_intent.succeeded for the invoice's payment (PaymentIntent pi_slow)."""
    return stripe_event(
        event_id,
        "payment_intent.succeeded",
        {
            "id": "pi_slow",
            "object": "payment_intent",
            "amount": 2999,
            "amount_received": 2999,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {"payment_id": str(invoice.payment.pk), "invoice_id": str(invoice.pk)},
        },
    )


@pytest.fixture
def processing(fake_stripe, django_capture_on_commit_callbacks):
    """A finalized invoice whose PaymentIntent Stripe is still processing."""
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        Answer(body={"id": "pi_slow", "object": "payment_intent", "status": "processing"}),
    )
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    assert (invoice.status, invoice.payment.status) == ("finalized", "processing")
    return invoice


# Each way of paying


def test_the_admins_mark_paid_announces_the_invoice_paid(
    admin_client, endpoint, without_stripe, django_capture_on_commit_callbacks
):
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)

    admin_client.post(
        "/admin/invoices/invoice/", {"action": "mark_paid", "_selected_action": [invoice.pk]}
    )

    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.PAID
    assert paid_announcements() == announced_once(invoice, "admin")


def test_the_admins_mark_paid_with_a_reference_announces_the_invoice_paid(
    admin_client, endpoint, without_stripe, django_capture_on_commit_callbacks
):
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    asked = admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "mark_paid_with_reference", "_selected_action": [invoice.pk]},
    ).content.decode()
    assert f"{invoice.number} (" in asked
    assert f"): {money_text(invoice.total, invoice.currency)}, finalized</li>" in asked
    assert f'name="_selected_action" value="{invoice.pk}"' in asked

    admin_client.post(
        "/admin/invoices/invoice/",
        {
            "action": "mark_paid_with_reference",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "SEPA 2026-118",
        },
    )

    assert Invoice.objects.get(pk=invoice.pk).payment_reference == "SEPA 2026-118"
    assert paid_announcements() == announced_once(invoice, "SEPA 2026-118")


def test_a_stripe_charge_that_succeeds_at_once_announces_the_invoice_paid(
    endpoint, fake_stripe, django_capture_on_commit_callbacks
):
    # when: finalizing enqueues the charge, which the fake Stripe confirms
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)

    # then
    assert (invoice.status, invoice.payment.status) == ("paid", "succeeded")
    assert paid_announcements() == announced_once(invoice, invoice.payment.stripe_payment_intent_id)


def test_stripes_webhook_for_a_processing_payment_announces_the_invoice_paid(
    endpoint, processing, deliver
):
    deliver(succeeded(processing))
    deliver(succeeded(processing, "evt_ok_again"))

    assert Invoice.objects.get(pk=processing.pk).status == Invoice.PAID
    assert paid_announcements() == announced_once(processing, "pi_slow")


def test_a_purchase_paid_through_stripe_announces_its_invoice_paid(endpoint, without_stripe):
    acme = customer_create(external_id="acme", name="Acme Inc", currency="USD")

    invoice = invoice_create_purchase(
        customer=acme, lines=DECEMBER_LINES, now=DEC_2, paid_reference="pi_checkout"
    )

    assert (invoice.status, invoice.payment_reference) == ("paid", "pi_checkout")
    assert paid_announcements() == announced_once(invoice, "pi_checkout")


# Paying twice


def test_marking_an_invoice_paid_twice_is_refused_and_announced_once(
    endpoint, without_stripe, django_capture_on_commit_callbacks
):
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    invoice_mark_paid(invoice=invoice, reference="wire 42", now=DEC_2)

    with pytest.raises(Conflict) as refused:
        invoice_mark_paid(invoice=invoice, reference="wire 43", now=DEC_3)

    assert refused.value.message == (
        f"invoice {invoice.number} is paid; only a finalized or uncollectible invoice can be paid"
    )
    invoice.refresh_from_db()
    assert (invoice.paid_at, invoice.payment_reference) == (DEC_2, "wire 42")
    assert paid_announcements() == announced_once(invoice, "wire 42")


def test_a_stripe_success_after_a_payment_by_hand_is_not_announced_again(
    endpoint, processing, deliver
):
    # given: the money came by wire while Stripe was still processing
    invoice_mark_paid(invoice=processing, reference="wire 42", now=DEC_3)

    # when: Stripe then reports its payment succeeded
    deliver(succeeded(processing))

    # then: the first payment stands, the second is to refund, one announcement
    invoice = Invoice.objects.get(pk=processing.pk)
    assert (invoice.status, invoice.payment_reference) == ("paid", "wire 42")
    assert invoice.payment.status == Payment.SUCCEEDED
    assert invoice.payment.last_error == (
        "paid twice: the invoice was already paid (wire 42); refund pi_slow in Stripe"
    )
    assert paid_announcements() == announced_once(processing, "wire 42")


# Which invoices can be paid


def test_an_uncollectible_invoice_is_paid_by_hand_as_stripe_would(
    endpoint, without_stripe, django_capture_on_commit_callbacks
):
    """Money that arrives after collecting was given up is recorded, as a retry of
    the Stripe payment would record it."""
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    invoice_mark_uncollectible(invoice=invoice, now=DEC_2)

    invoice_mark_paid(invoice=invoice, reference="wire 42", now=DEC_3)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == ("paid", DEC_3)
    assert paid_announcements() == announced_once(invoice, "wire 42")


def test_a_void_invoice_is_not_paid_nor_announced(
    endpoint, without_stripe, django_capture_on_commit_callbacks
):
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    invoice_void(invoice=invoice, reason="issued in error", now=DEC_2)

    with pytest.raises(Conflict):
        invoice_mark_paid(invoice=invoice, reference="wire 42", now=DEC_3)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at, invoice.payment_reference) == ("void", None, "")
    assert paid_announcements() == []

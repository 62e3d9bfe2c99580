"""POST /webhooks/stripe/: signatures verified for real (an HMAC-SHA256 made as
Stripe makes it, checked by the `stripe` library), each event processed once,
out-of-order and repeated deliveries harmless, failures recorded."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from billing.models import Alert, WebhookDelivery, WebhookEndpoint
from invoices import stripe_client, stripe_events
from invoices.models import Invoice, Payment, StripeEvent
from tests.invoices.conftest import acme_december_invoice, signature, stripe_event
from tests.invoices.stripe_fake import Answer

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture
def processing(fake_stripe, django_capture_on_commit_callbacks):
    """A finalized invoice whose PaymentIntent Stripe is still processing: its
    outcome comes by webhook."""
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        Answer(body={"id": "pi_slow", "object": "payment_intent", "status": "processing"}),
    )
    invoice = acme_december_invoice(django_capture_on_commit_callbacks)
    assert (invoice.status, invoice.payment.status) == ("finalized", "processing")
    return invoice


def intent(invoice: Invoice, event_type: str, **fields) -> dict:
    obj = {
        "id": "pi_slow",
        "object": "payment_intent",
        "amount": 2999,
        "amount_received": 2999 if event_type == "payment_intent.succeeded" else 0,
        "currency": "usd",
        "status": "succeeded"
        if event_type == "payment_intent.succeeded"
        else "requires_payment_method",
        "metadata": {"payment_id": str(invoice.payment.pk), "invoice_id": str(invoice.pk)},
    }
    if event_type == "payment_intent.payment_failed":
        obj["last_payment_error"] = {
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        }
    return obj | fields


def succeeded(invoice, event_id="evt_ok") -> str:
    return stripe_event(
        event_id, "payment_intent.succeeded", intent(invoice, "payment_intent.succeeded")
    )


def failed(invoice, event_id="evt_no") -> str:
    return stripe_event(
        event_id, "payment_intent.payment_failed", intent(invoice, "payment_intent.payment_failed")
    )


def test_a_signed_success_marks_the_invoice_paid(processing, deliver):
    response = deliver(succeeded(processing))

    assert (response.status_code, response.json()) == (
        200,
        {"received": "evt_ok", "duplicate": False},
    )
    invoice = Invoice.objects.get(pk=processing.pk)
    assert (invoice.status, invoice.payment_reference) == ("paid", "pi_slow")
    assert invoice.payment.status == Payment.SUCCEEDED
    event = StripeEvent.objects.get()
    assert (event.id, event.type, event.deliveries, event.last_error) == (
        "evt_ok",
        "payment_intent.succeeded",
        1,
        "",
    )
    assert event.processed_at is not None
    assert event.outcome == f"payment {invoice.payment.pk} succeeded"


def test_the_paid_invoice_is_announced_to_the_products_webhook_endpoints(processing, deliver):
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hooks", event_types=["invoice.paid"])

    deliver(succeeded(processing))
    deliver(succeeded(processing, "evt_ok_again"))

    (announced,) = WebhookDelivery.objects.all()
    body = json.loads(announced.body)
    assert (announced.event_id, body["type"], body["customer"]) == (
        f"evt_invoice_{processing.pk}_paid",
        "invoice.paid",
        "acme",
    )
    assert body["data"] == {
        "invoice": processing.pk,
        "number": processing.number,
        "total": "29.99",
        "currency": "USD",
        "payment_reference": "pi_slow",
    }


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda p: signature(p, secret="whsec_someone_else"), id="wrong-secret"),
        pytest.param(lambda p: signature(p + " "), id="other-body"),
        pytest.param(lambda p: signature(p).replace("v1=", "v0="), id="no-v1-signature"),
        pytest.param(lambda p: "t=abc,v1=0123", id="malformed"),
        pytest.param(lambda p: "", id="missing"),
    ],
)
def test_a_request_that_stripe_did_not_sign_is_refused_and_changes_nothing(
    processing, deliver, header
):
    payload = succeeded(processing)

    response = deliver(payload, header(payload))

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert not StripeEvent.objects.exists()
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.FINALIZED


def test_a_signature_older_than_five_minutes_is_refused(processing, deliver):
    payload = succeeded(processing)
    now = int(time.time())

    expired = deliver(payload, signature(payload, at=now - 301))
    assert expired.status_code == 400
    assert "tolerance" in expired.json()["error"]["message"]
    assert not StripeEvent.objects.exists()

    recent = deliver(payload, signature(payload, at=now - 290))
    assert recent.status_code == 200
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.PAID


def test_a_body_that_is_not_an_event_is_refused(processing, deliver):
    assert deliver("[1, 2, 3]").status_code == 400
    assert deliver(json.dumps({"object": "event"})).status_code == 400
    # Signed, and nested deeper than any event (read by no reader that recurses).
    deep = '{"id": "evt_deep", "object": "event", "data": ' + "[" * 10_000 + "]" * 10_000 + "}"
    assert deliver(deep).status_code == 400
    assert not StripeEvent.objects.exists()


def test_without_a_webhook_secret_every_request_is_refused(processing, deliver, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(succeeded(processing))

    assert response.status_code == 400
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]["message"]


def test_the_endpoint_takes_no_csrf_token_and_only_posts(processing):
    payload = succeeded(processing)
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature(payload),
    )

    assert response.status_code == 200
    assert client.get("/webhooks/stripe/").status_code == 405


def test_a_replayed_event_is_processed_once(processing, deliver):
    payload = succeeded(processing)

    first = deliver(payload)
    second = deliver(payload)

    assert first.json() == {"received": "evt_ok", "duplicate": False}
    assert (second.status_code, second.json()) == (200, {"received": "evt_ok", "duplicate": True})
    event = StripeEvent.objects.get()
    assert event.deliveries == 2
    invoice = Invoice.objects.get(pk=processing.pk)
    assert (invoice.status, invoice.payment.status) == ("paid", "succeeded")


def test_an_async_failure_is_recorded_and_retried_per_the_policy(processing, deliver):
    with time_machine.travel(DEC_2 + timedelta(minutes=5), tick=False):
        response = deliver(failed(processing))
        # the same failure delivered again as another event changes nothing more
        deliver(failed(processing, "evt_no_again"))

    assert response.status_code == 200
    payment = Payment.objects.get(pk=processing.payment.pk)
    assert (payment.status, payment.attempts, payment.next_attempt_at) == (
        "pending",
        1,
        DEC_2 + timedelta(minutes=65),
    )
    assert payment.last_error == "card_declined generic_decline: Your card was declined."
    assert Alert.objects.filter(kind="payment_failed").count() == 1
    assert StripeEvent.objects.get(pk="evt_no_again").outcome == (
        f"payment {payment.pk}: nothing to do (pending)"
    )
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.FINALIZED


def test_a_failure_delivered_after_the_success_does_not_undo_paid(processing, deliver):
    # given: Stripe sends the success first and a stale failure after it
    deliver(succeeded(processing))

    # when
    response = deliver(failed(processing))

    # then
    assert response.status_code == 200
    invoice = Invoice.objects.get(pk=processing.pk)
    assert (invoice.status, invoice.payment.status) == ("paid", "succeeded")
    assert not Alert.objects.filter(kind="payment_failed").exists()
    assert StripeEvent.objects.get(pk="evt_no").outcome.endswith("nothing to do (succeeded)")


def test_a_success_delivered_after_the_failures_pays_the_invoice(processing, deliver, settings):
    # given: the policy is spent, the invoice uncollectible
    settings.STRIPE_PAYMENT_RETRY_MINUTES = []
    processing.payment.max_attempts = 1
    processing.payment.save(update_fields=["max_attempts"])
    deliver(failed(processing))
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.UNCOLLECTIBLE

    # when Stripe reports the money received after all
    deliver(succeeded(processing))

    invoice = Invoice.objects.get(pk=processing.pk)
    assert (invoice.status, invoice.payment.status) == ("paid", "succeeded")


def test_a_success_for_another_amount_is_not_applied(processing, deliver):
    obj = intent(processing, "payment_intent.succeeded", amount=100, amount_received=100)

    deliver(stripe_event("evt_odd", "payment_intent.succeeded", obj))

    invoice = Invoice.objects.get(pk=processing.pk)
    assert (invoice.status, invoice.payment.status) == ("finalized", "processing")
    assert invoice.payment.last_error == (
        "Stripe reports 100 usd paid for pi_slow, not 2999 usd: not applied, check it in Stripe"
    )


@pytest.mark.parametrize(
    ("event_type", "obj", "outcome"),
    [
        (
            "customer.created",
            {"id": "cus_1", "object": "customer"},
            "ignored: not an event we act on",
        ),
        (
            "payment_intent.succeeded",
            {"id": "pi_other", "object": "payment_intent", "metadata": {}},
            "ignored: no payment of ours",
        ),
    ],
)
def test_events_of_no_concern_are_acknowledged_and_ignored(
    processing, deliver, event_type, obj, outcome
):
    response = deliver(stripe_event("evt_other", event_type, obj))

    assert response.status_code == 200
    assert StripeEvent.objects.get().outcome == outcome
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.FINALIZED


def test_an_event_that_fails_to_process_is_recorded_and_processed_when_stripe_sends_it_again(
    processing, deliver, monkeypatch
):
    def broken(obj, now):
        raise RuntimeError("database went away")

    monkeypatch.setitem(stripe_events.HANDLERS, "payment_intent.succeeded", broken)
    payload = succeeded(processing)

    response = deliver(payload)

    assert response.status_code == 500
    event = StripeEvent.objects.get()
    assert (event.processed_at, event.last_error) == (None, "RuntimeError: database went away")
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.FINALIZED

    # when Stripe delivers it again, once fixed
    monkeypatch.undo()
    again = deliver(payload)

    assert again.json() == {"received": "evt_ok", "duplicate": False}
    event.refresh_from_db()
    assert (event.deliveries, event.last_error) == (2, "")
    assert event.processed_at is not None
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.PAID


def test_the_stripe_event_and_payment_admin_pages_load(admin_client, processing, deliver):
    deliver(succeeded(processing))
    deliver(stripe_event("evt_x", "customer.created", {"id": "cus_1", "object": "customer"}))

    pages = [
        "/admin/invoices/stripeevent/",
        "/admin/invoices/stripeevent/evt_ok/change/",
        "/admin/invoices/stripeevent/?processed_at__isnull=True",
        "/admin/invoices/payment/",
        f"/admin/invoices/payment/{processing.payment.pk}/change/",
        f"/admin/invoices/invoice/{processing.pk}/change/",
    ]
    for page in pages:
        assert admin_client.get(page).status_code == 200, page
    assert "pi_slow" in admin_client.get(f"/admin/invoices/invoice/{processing.pk}/change/").text


# Bodies too large to read, and signed events that cannot be stored as sent

TWO_MIB = 2 * 1024 * 1024


def test_a_body_over_1_mib_is_a_413_before_any_signature_work(processing, deliver, monkeypatch):
    def signature_work(**kwargs):
        raise AssertionError("an oversized body reached the signature check")

    monkeypatch.setattr(stripe_client, "webhook_event", signature_work)
    payload = json.dumps({"id": "evt_big", "pad": "x" * TWO_MIB})

    unsigned = deliver(payload, "t=1,v1=00")
    signed = deliver(payload)

    for response in (unsigned, signed):
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "payload_too_large"
    assert not StripeEvent.objects.exists()


def test_the_webhook_answers_413_without_the_input_guard_middleware_too(
    processing, deliver, settings
):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("config.middleware")]

    response = deliver(json.dumps({"pad": "x" * TWO_MIB}), "t=1,v1=00")

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert not StripeEvent.objects.exists()


def checkout_completed(invoice, **fields) -> dict:
    return {
        "id": "cs_1",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 2999,
        "currency": "usd",
        "payment_intent": "pi_checkout",
        "customer": "cus_1",
        "metadata": {"payment_id": str(invoice.payment.pk)},
        **fields,
    }


@pytest.mark.parametrize(
    ("event_id", "event_type", "obj", "named"),
    [
        pytest.param("evt_" + "x" * 252, "payment_intent.succeeded", {}, "id", id="event-id"),
        pytest.param(
            "evt_1",
            "payment_intent.succeeded",
            {"id": "pi_" + "x" * 253},
            "data.object.id",
            id="intent-id",
        ),
        pytest.param(
            "evt_1",
            "checkout.session.completed",
            {"payment_intent": "pi_" + "x" * 253},
            "data.object.payment_intent",
            id="checkout-intent-id",
        ),
        pytest.param(
            "evt_1",
            "checkout.session.completed",
            {"payment_intent": {"id": "pi_" + "x" * 253, "object": "payment_intent"}},
            "data.object.payment_intent",
            id="checkout-expanded-intent-id",
        ),
        pytest.param(
            "evt_1",
            "checkout.session.completed",
            {"customer": "cus_" + "x" * 252},
            "data.object.customer",
            id="checkout-customer-id",
        ),
    ],
)
def test_a_signed_event_with_an_id_over_its_column_is_a_400_logged_and_not_stored(
    processing, deliver, caplog, event_id, event_type, obj, named
):
    base = (
        intent(processing, event_type)
        if event_type.startswith("payment_intent")
        else checkout_completed(processing)
    )

    response = deliver(stripe_event(event_id, event_type, base | obj))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert f"{named} is longer than 255 characters" in error["message"]
    assert not StripeEvent.objects.exists()
    payment = Payment.objects.get(pk=processing.payment.pk)
    assert (payment.status, payment.stripe_payment_intent_id) == (Payment.PROCESSING, "pi_slow")
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.FINALIZED
    (warning,) = [r for r in caplog.records if r.name == "invoices.stripe_events"]
    assert warning.levelname == "WARNING"
    assert named in warning.getMessage()


def test_an_event_id_of_exactly_255_characters_is_stored(processing, deliver):
    event_id = "evt_" + "x" * 251

    response = deliver(succeeded(processing, event_id))

    assert response.status_code == 200
    assert StripeEvent.objects.get().id == event_id
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.PAID


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda e: e["data"]["object"].update(description="a\x00b"), id="nul"),
        pytest.param(lambda e: e["data"]["object"].update({"k\x00": 1}), id="nul-in-a-key"),
        pytest.param(lambda e: e.update(created=10**20), id="created-out-of-range"),
        pytest.param(lambda e: e.update(created="yesterday"), id="created-not-a-time"),
        pytest.param(lambda e: e.update(type=["payment_intent.succeeded"]), id="type-a-list"),
    ],
)
def test_a_signed_event_that_cannot_be_stored_is_a_400(processing, deliver, change):
    event = json.loads(succeeded(processing))
    change(event)

    response = deliver(json.dumps(event))

    assert response.status_code == 400
    assert "cannot be stored" in response.json()["error"]["message"]
    assert not StripeEvent.objects.exists()
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.FINALIZED


@pytest.mark.parametrize("payment_id", ["²", "9" * 30, "-1", ""])
def test_a_payment_id_that_is_not_one_of_ours_falls_back_to_the_intent_id(
    processing, deliver, payment_id
):
    obj = intent(processing, "payment_intent.succeeded", metadata={"payment_id": payment_id})

    response = deliver(stripe_event("evt_odd_metadata", "payment_intent.succeeded", obj))

    assert response.status_code == 200
    assert Invoice.objects.get(pk=processing.pk).status == Invoice.PAID

"""Finalized invoices collected through Stripe, for real: the `stripe` library
against a fake Stripe on 127.0.0.1 (tests.invoices.stripe_fake), asserting what
it receives (paths, amounts in minor units, currencies, idempotency keys); the
retry policy of a declined charge; retries of network errors and 5xx answers
only; the Stripe customer created once and updated on change. Without
STRIPE_API_KEY nothing of this happens."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import stripe
import time_machine

from billing.models import Alert
from customers.services import customer_create, customer_update
from invoices import collection, stripe_client, tasks
from invoices.models import Invoice, Payment
from invoices.services import invoice_finalize, invoice_mark_uncollectible, invoice_write_draft
from invoices.settlement import invoice_mark_paid
from plans.rating import LineInput
from tests.beat import scheduled
from tests.invoices.stripe_fake import DROP, Answer, card_declined, stripe_error
from tests.threads import run_at_once

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 9, tzinfo=UTC)

# 19.99 + 3.13 (3.125 rounded half up) + 10.00 = 33.12
USD_LINES = [
    LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("19.99"), D("19.99")),
    LineInput("usage", "GPT-4o input tokens", "gpt4o_in", D(1_250_000), D("0.0000025"), D("3.125")),
    LineInput("overage", "prompts over 200", "prompts", D(200), D("0.05"), D("10.00")),
]


def customer(external_id: str = "acme", currency: str = "USD"):
    return customer_create(
        external_id=external_id,
        name=f"{external_id.title()} Inc",
        currency=currency,
        email=f"billing@{external_id}.test",
        address={"line1": "42 Main Street", "postal_code": "94107", "city": "San Francisco"},
    )


def finalized(
    capture, owner=None, lines=USD_LINES, *, at: datetime = DEC_2, execute: bool = True
) -> Invoice:
    """A draft finalized at `at`, and what its commit enqueues run (the
    collection, eagerly) at that time."""
    draft = invoice_write_draft(
        customer=owner or customer(),
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=lines,
        now=DEC_1,
    )
    with time_machine.travel(at, tick=False), capture(execute=execute):
        invoice_finalize(invoice=draft, now=at)
    return Invoice.objects.get(pk=draft.pk)


def run_collection(payment: Payment, at: datetime, capture):
    """The worker's task at `at`, with what it enqueues on commit."""
    with time_machine.travel(at, tick=False), capture(execute=True):
        return tasks.collect_payment(payment.pk)


def test_without_stripe_a_finalized_invoice_waits_to_be_marked_paid(
    django_capture_on_commit_callbacks, settings, no_network
):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_INVOICE_PDFS = False

    invoice = finalized(django_capture_on_commit_callbacks)

    assert invoice.status == Invoice.FINALIZED
    assert not Payment.objects.exists()
    assert tasks.collect_due_payments() == 0
    invoice_mark_paid(invoice=invoice, reference="wire 42", now=DEC_2)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_reference) == ("paid", "wire 42")


def test_a_finalized_usd_invoice_is_charged_in_cents_off_session(
    fake_stripe, django_capture_on_commit_callbacks
):
    # when
    invoice = finalized(django_capture_on_commit_callbacks)

    # then: the Stripe customer is created once, its default method read, then charged
    assert [(r.method, r.path) for r in fake_stripe.requests] == [
        ("POST", "/v1/customers"),
        ("GET", f"/v1/customers/{invoice.customer.stripe_customer_id}"),
        ("POST", "/v1/payment_intents"),
    ]
    created, _, charge = fake_stripe.requests
    assert created.idempotency_key == f"customer-{invoice.customer_id}-create"
    assert created.form == {
        "name": "Acme Inc",
        "email": "billing@acme.test",
        "address[line1]": "42 Main Street",
        "address[postal_code]": "94107",
        "address[city]": "San Francisco",
        "metadata[billing_customer_id]": str(invoice.customer_id),
        "metadata[external_id]": "acme",
    }
    assert charge.headers["authorization"] == "Bearer sk_test_fake"
    assert charge.idempotency_key == f"invoice-{invoice.pk}-collect-1"
    assert charge.form == {
        "amount": "3312",
        "currency": "usd",
        "customer": invoice.customer.stripe_customer_id,
        "payment_method": "pm_card_visa",
        "off_session": "true",
        "confirm": "true",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
        "description": f"Invoice {invoice.number}",
        "metadata[payment_id]": str(invoice.payment.pk),
        "metadata[invoice_id]": str(invoice.pk),
        "metadata[invoice_number]": invoice.number,
    }
    payment = invoice.payment
    assert (invoice.status, invoice.paid_at, invoice.payment_reference) == (
        "paid",
        DEC_2,
        payment.stripe_payment_intent_id,
    )
    assert (payment.status, payment.attempts, payment.amount, payment.currency) == (
        "succeeded",
        1,
        D("33.12"),
        "USD",
    )
    assert payment.stripe_payment_intent_id.startswith("pi_fake_")


def test_a_jpy_invoice_is_charged_in_yen_without_decimals(
    fake_stripe, django_capture_on_commit_callbacks
):
    lines = [LineInput("base_fee", "Plan", None, D(1), D(500), D(500))]

    invoice = finalized(django_capture_on_commit_callbacks, customer("kaisha", "JPY"), lines)

    (charge,) = fake_stripe.to("POST", "/v1/payment_intents")
    assert (charge.form["amount"], charge.form["currency"]) == ("500", "jpy")
    assert invoice.status == Invoice.PAID


def test_the_stripe_customer_is_created_once_and_updated_on_change(
    fake_stripe, django_capture_on_commit_callbacks
):
    acme = customer()
    finalized(django_capture_on_commit_callbacks, acme)
    finalized(django_capture_on_commit_callbacks, acme, at=DEC_2 + timedelta(hours=1))
    acme.refresh_from_db()
    assert len(fake_stripe.to("POST", "/v1/customers")) == 1
    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 2

    # when the customer's details change
    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=acme, name="Acme Corporation", email="ap@acme.test")

    # then
    (update,) = fake_stripe.to("POST", f"/v1/customers/{acme.stripe_customer_id}")
    version = acme.history.order_by("-history_id").first().history_id
    assert update.idempotency_key == f"customer-{acme.pk}-update-{version}"
    assert update.form["name"] == "Acme Corporation"
    assert update.form["email"] == "ap@acme.test"
    # the same version sent twice (a task run twice) is the same request
    tasks.sync_stripe_customer(acme.pk)
    again = fake_stripe.to("POST", f"/v1/customers/{acme.stripe_customer_id}")
    assert [r.idempotency_key for r in again] == [update.idempotency_key] * 2
    assert again[0].form == again[1].form


def test_a_declined_charge_is_tried_again_per_the_policy_then_uncollectible(
    fake_stripe, django_capture_on_commit_callbacks, mailoutbox
):
    # given: every charge is declined
    fake_stripe.queue(
        "POST", "/v1/payment_intents", *[card_declined(f"pi_no_{n}") for n in (1, 2, 3)]
    )

    # when: finalized, then the worker runs as the retries come due
    invoice = finalized(django_capture_on_commit_callbacks)
    payment = invoice.payment

    # then: the first attempt failed, the next is in an hour
    assert (payment.status, payment.attempts, payment.next_attempt_at) == (
        "pending",
        1,
        DEC_2 + timedelta(minutes=60),
    )
    assert payment.stripe_payment_intent_id == "pi_no_1"
    assert (
        "card_declined insufficient_funds: Your card has insufficient funds." in payment.last_error
    )
    assert invoice.status == Invoice.FINALIZED

    # not before it is due: running the task again sends nothing (safe twice)
    assert (
        run_collection(payment, DEC_2 + timedelta(minutes=59), django_capture_on_commit_callbacks)
        is None
    )
    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 1

    assert (
        run_collection(payment, DEC_2 + timedelta(minutes=60), django_capture_on_commit_callbacks)
        == "pending"
    )
    payment.refresh_from_db()
    assert payment.next_attempt_at == DEC_2 + timedelta(minutes=60 + 1440)

    third = DEC_2 + timedelta(minutes=60 + 1440)
    assert run_collection(payment, third, django_capture_on_commit_callbacks) == "failed"

    charges = fake_stripe.to("POST", "/v1/payment_intents")
    assert [c.idempotency_key for c in charges] == [
        f"invoice-{invoice.pk}-collect-1",
        f"invoice-{invoice.pk}-collect-2",
        f"invoice-{invoice.pk}-collect-3",
    ]
    assert {c.form["amount"] for c in charges} == {"3312"}
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert (payment.status, payment.attempts, payment.next_attempt_at) == ("failed", 3, None)
    assert invoice.status == Invoice.UNCOLLECTIBLE
    # one alert per failed attempt, emailed to the customer
    alerts = Alert.objects.filter(kind="payment_failed").order_by("id")
    assert [a.key for a in alerts] == [f"payment:{payment.pk}:attempt:{n}" for n in (1, 2, 3)]
    assert alerts[0].payload["next_attempt_at"] == "2026-12-02T10:00:00Z"
    assert alerts[2].payload["next_attempt_at"] is None
    assert alerts[2].payload["amount"] == "33.12"
    assert [m.subject for m in mailoutbox] == ["A payment failed"] * 3
    # and nothing more is attempted
    assert (
        run_collection(payment, third + timedelta(days=7), django_capture_on_commit_callbacks)
        is None
    )


def test_a_declined_charge_is_a_row_the_beat_sends_once_when_due(
    fake_stripe, django_capture_on_commit_callbacks, delayed_sends
):
    # given: the first charge is declined, the next succeeds
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined("pi_no_1"))

    # when: finalized (the first attempt)
    invoice = finalized(django_capture_on_commit_callbacks)

    # then: the retry is the payment's row, due in an hour, and nothing waits in the
    # broker for it
    payment = invoice.payment
    assert (payment.status, payment.next_attempt_at) == ("pending", DEC_2 + timedelta(minutes=60))
    assert delayed_sends == []

    def sweep(at: datetime) -> int:
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            return tasks.collect_due_payments()

    # the beat's sweep (every minute) sends nothing before it is due
    assert sweep(DEC_2 + timedelta(minutes=60) - timedelta(seconds=1)) == 0
    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 1
    # and sends it once it is, at once (no grace: no task was sent for it)
    assert sweep(DEC_2 + timedelta(minutes=60)) == 1
    # run again, it finds nothing more to send
    assert sweep(DEC_2 + timedelta(minutes=60)) == 0
    assert sweep(DEC_2 + timedelta(days=2)) == 0

    keys = [c.idempotency_key for c in fake_stripe.to("POST", "/v1/payment_intents")]
    assert keys == [f"invoice-{invoice.pk}-collect-1", f"invoice-{invoice.pk}-collect-2"]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment.status, invoice.payment.attempts) == (
        "paid",
        "succeeded",
        2,
    )
    assert delayed_sends == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_sweeps_at_once_charge_a_due_retry_once(
    fake_stripe, django_capture_on_commit_callbacks
):
    # given: a payment whose first charge was declined, its retry due in an hour
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined("pi_no_1"))
    invoice = finalized(django_capture_on_commit_callbacks)
    assert invoice.payment.next_attempt_at == DEC_2 + timedelta(minutes=60)

    # when: four beats sweep at the same moment once it is due (each sends what it
    # finds to a worker, here run where it is sent)
    with time_machine.travel(DEC_2 + timedelta(minutes=60), tick=False):
        run_at_once(lambda index: tasks.collect_due_payments())

    # then: one charge for the retry, the invoice paid
    keys = [c.idempotency_key for c in fake_stripe.to("POST", "/v1/payment_intents")]
    assert keys == [f"invoice-{invoice.pk}-collect-1", f"invoice-{invoice.pk}-collect-2"]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment.status, invoice.payment.attempts) == (
        "paid",
        "succeeded",
        2,
    )


def test_the_sweep_leaves_an_attempt_under_way_to_its_worker(
    fake_stripe, django_capture_on_commit_callbacks
):
    # given: an attempt claimed by a worker, which has not reported yet
    invoice = finalized(django_capture_on_commit_callbacks, execute=False)
    with time_machine.travel(DEC_2, tick=False):
        claimed = collection._claim(invoice.payment.pk, DEC_2)
    assert claimed.status == "attempting"

    # when: the beat sweeps while it is under way, to the end of its lease
    with time_machine.travel(DEC_2 + collection.ATTEMPT_LEASE - timedelta(seconds=1), tick=False):
        assert tasks.collect_due_payments() == 0

    # then: nothing was charged beside it
    assert fake_stripe.to("POST", "/v1/payment_intents") == []


def test_marking_an_invoice_uncollectible_stops_its_collection(
    fake_stripe, django_capture_on_commit_callbacks
):
    # given: the first charge was declined, the next attempt is due in an hour
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined())
    invoice = finalized(django_capture_on_commit_callbacks)
    assert (invoice.payment.status, invoice.payment.attempts) == ("pending", 1)

    # when: finance gives up on it before then
    invoice_mark_uncollectible(invoice=invoice, now=DEC_2 + timedelta(minutes=5))

    # then: the payment is canceled, and the due time charges nothing
    invoice.refresh_from_db()
    payment = invoice.payment
    assert (invoice.status, payment.status, payment.next_attempt_at) == (
        "uncollectible",
        "canceled",
        None,
    )
    assert payment.last_error == "not collected: the invoice was marked uncollectible"
    assert (
        run_collection(payment, DEC_2 + timedelta(minutes=60), django_capture_on_commit_callbacks)
        is None
    )
    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 1


def test_a_retry_from_the_admin_collects_an_uncollectible_invoice(
    fake_stripe, django_capture_on_commit_callbacks, settings
):
    settings.STRIPE_PAYMENT_RETRY_MINUTES = []
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined())
    invoice = finalized(django_capture_on_commit_callbacks)
    assert (invoice.status, invoice.payment.status) == ("uncollectible", "failed")

    with (
        time_machine.travel(DEC_2 + timedelta(days=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert collection.payment_retry_now(payment=invoice.payment, now=DEC_2 + timedelta(days=1))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment.status, invoice.payment.attempts) == (
        "paid",
        "succeeded",
        2,
    )
    assert fake_stripe.to("POST", "/v1/payment_intents")[-1].idempotency_key == (
        f"invoice-{invoice.pk}-collect-2"
    )


def test_a_customer_without_a_default_payment_method_is_not_charged(
    fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.default_payment_method = None

    invoice = finalized(django_capture_on_commit_callbacks)

    assert fake_stripe.to("POST", "/v1/payment_intents") == []
    assert invoice.payment.status == "pending"
    assert invoice.payment.last_error == "the customer has no default payment method in Stripe"
    assert Alert.objects.get(kind="payment_failed").payload["attempt"] == 1


def test_an_invoice_paid_by_hand_before_the_attempt_is_not_charged(
    fake_stripe, django_capture_on_commit_callbacks
):
    # given: finalized, its collection not run yet
    invoice = finalized(django_capture_on_commit_callbacks, execute=False)
    invoice_mark_paid(invoice=invoice, reference="wire 42", now=DEC_2)

    # when the worker gets to it
    assert run_collection(invoice.payment, DEC_2, django_capture_on_commit_callbacks) == "canceled"

    assert fake_stripe.requests == []
    invoice.refresh_from_db()
    assert (invoice.payment_reference, invoice.payment.last_error) == (
        "wire 42",
        "not collected: the invoice is paid",
    )


def test_an_invoice_of_zero_is_not_collected(fake_stripe, django_capture_on_commit_callbacks):
    lines = [LineInput("base_fee", "Trial", None, D(1), D(0), D(0))]

    invoice = finalized(django_capture_on_commit_callbacks, lines=lines)

    assert (invoice.status, fake_stripe.requests) == ("finalized", [])
    assert not Payment.objects.exists()


def test_5xx_answers_are_retried_with_the_same_idempotency_key(
    fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        stripe_error(500, "api_error", "Something went wrong on Stripe's end."),
        stripe_error(503, "api_error", "Service unavailable."),
    )

    invoice = finalized(django_capture_on_commit_callbacks)

    charges = fake_stripe.to("POST", "/v1/payment_intents")
    assert len(charges) == 3
    assert {c.idempotency_key for c in charges} == {f"invoice-{invoice.pk}-collect-1"}
    assert (invoice.status, invoice.payment.attempts) == ("paid", 1)


def test_a_network_error_and_a_timeout_are_retried(
    fake_stripe, django_capture_on_commit_callbacks, settings
):
    settings.STRIPE_TIMEOUT_SECONDS = 1
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        Answer(action=DROP),
        Answer(
            delay=1.5, body={"id": "pi_too_late", "object": "payment_intent", "status": "succeeded"}
        ),
    )

    invoice = finalized(django_capture_on_commit_callbacks)

    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 3
    assert (invoice.status, invoice.payment.attempts) == ("paid", 1)


def test_a_4xx_answer_is_not_retried(fake_stripe, django_capture_on_commit_callbacks):
    fake_stripe.queue(
        "POST",
        "/v1/payment_intents",
        stripe_error(400, "invalid_request_error", "Invalid currency: xxx", param="currency"),
    )

    invoice = finalized(django_capture_on_commit_callbacks)

    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 1
    payment = invoice.payment
    assert (payment.status, payment.attempts) == ("pending", 1)
    assert payment.last_error == "InvalidRequestError HTTP 400: Invalid currency: xxx"


@pytest.mark.parametrize(
    ("status", "retried"),
    [(409, False), (429, False), (402, False), (500, True), (502, True)],
)
def test_only_network_errors_and_5xx_are_retried_by_the_client(fake_stripe, status, retried):
    fake_stripe.queue("POST", "/v1/customers", *[stripe_error(status, "api_error", "no")] * 3)

    with pytest.raises(stripe.StripeError):
        stripe_client.customer_create(params={"name": "x"}, idempotency_key="customer-1-create")

    assert len(fake_stripe.to("POST", "/v1/customers")) == (3 if retried else 1)


def test_a_5xx_stripe_says_not_to_retry_is_not_retried(fake_stripe):
    answer = stripe_error(500, "api_error", "no")
    answer.headers["Stripe-Should-Retry"] = "false"
    fake_stripe.queue("POST", "/v1/customers", answer)

    with pytest.raises(stripe.APIError):
        stripe_client.customer_create(params={"name": "x"}, idempotency_key="customer-1-create")

    assert len(fake_stripe.to("POST", "/v1/customers")) == 1


def test_the_beat_sends_a_payment_whose_enqueue_was_lost(
    fake_stripe, django_capture_on_commit_callbacks
):
    # given: finalized, but the broker lost the task
    invoice = finalized(django_capture_on_commit_callbacks, execute=False)

    # when: the beat runs past the grace
    with (
        time_machine.travel(DEC_2 + timedelta(minutes=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.collect_due_payments() == 1

    invoice.refresh_from_db()
    assert invoice.status == Invoice.PAID


def test_an_attempt_whose_worker_died_is_made_again_with_the_same_key(
    fake_stripe, django_capture_on_commit_callbacks, monkeypatch
):
    # given: the worker dies once the PaymentIntent is created, before recording it
    invoice = finalized(django_capture_on_commit_callbacks, execute=False)
    real_charge = collection._charge

    def dies(payment):
        real_charge(payment)
        raise SystemExit("worker killed")

    monkeypatch.setattr(collection, "_charge", dies)
    with pytest.raises(SystemExit), time_machine.travel(DEC_2, tick=False):
        tasks.collect_payment(invoice.payment.pk)
    monkeypatch.setattr(collection, "_charge", real_charge)
    payment = Payment.objects.get(pk=invoice.payment.pk)
    assert (payment.status, payment.attempts) == ("attempting", 1)

    # when: its lease runs out and the beat sends it again
    later = DEC_2 + collection.ATTEMPT_LEASE + collection.SWEEP_GRACE
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        tasks.collect_due_payments()

    # then: the same attempt, the same key (Stripe answers it once)
    keys = [c.idempotency_key for c in fake_stripe.to("POST", "/v1/payment_intents")]
    assert keys == [f"invoice-{invoice.pk}-collect-1"] * 2
    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == ("succeeded", 1)


# The admin


def test_mark_paid_with_a_reference_asks_for_it_then_records_it(
    admin_client, django_capture_on_commit_callbacks, settings, no_network
):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_INVOICE_PDFS = False
    invoice = finalized(django_capture_on_commit_callbacks)
    chosen = {"action": "mark_paid_with_reference", "_selected_action": [invoice.pk]}

    page = admin_client.post("/admin/invoices/invoice/", chosen)
    assert page.status_code == 200
    assert "A payment received outside Stripe" in page.text
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED

    blank = admin_client.post("/admin/invoices/invoice/", chosen | {"apply": "1", "reference": ""})
    assert "This field is required." in blank.text
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED

    admin_client.post(
        "/admin/invoices/invoice/", chosen | {"apply": "1", "reference": "SEPA 2026-118"}
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_reference) == ("paid", "SEPA 2026-118")


def test_the_payment_admin_retries_now_and_stops_collecting(
    admin_client, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined(), card_declined())
    first = finalized(django_capture_on_commit_callbacks)
    second = finalized(django_capture_on_commit_callbacks, customer("globex"))
    assert (first.payment.status, second.payment.status) == ("pending", "pending")

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/invoices/payment/",
            {"action": "retry_now", "_selected_action": [first.payment.pk]},
        )
        admin_client.post(
            "/admin/invoices/payment/",
            {"action": "stop_collecting", "_selected_action": [second.payment.pk]},
        )

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.payment.status, first.payment.attempts) == ("paid", "succeeded", 2)
    assert (second.status, second.payment.status) == ("finalized", "canceled")
    assert second.payment.last_error == "canceled in the admin"
    listing = admin_client.get("/admin/invoices/payment/")
    assert listing.status_code == 200
    assert "canceled in the admin" in listing.text


def test_setup_periodic_tasks_schedules_the_payment_safety_net(db):
    assert scheduled("Send overdue Stripe payment attempts") == (
        "invoices.tasks.collect_due_payments",
        1,
        "minutes",
    )

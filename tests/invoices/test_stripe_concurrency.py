"""Stripe webhooks under concurrency, for real on PostgreSQL: Stripe delivering
the same event twice at once (a retry racing the first delivery) processes it
once; two different events about one payment grant its purchase once."""

import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import close_old_connections, connection, transaction

from customers.services import customer_create
from invoices import checkout, stripe_events
from invoices.models import Invoice, Purchase, StripeEvent
from plans.services import credit_pack_create
from tests.invoices.conftest import signature, stripe_event
from wallets.models import CreditBlock, Wallet

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def at_once(*calls) -> list:
    """Run the calls in threads released together; their results (or errors)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # reported to the test
            results[index] = error
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def pending_checkout(fake_stripe):
    """A pack sold through Checkout, waiting for its payment (no session needed:
    the events name the payment in their metadata)."""
    acme = customer_create(external_id="acme", name="Acme Inc", currency="USD")
    pack = credit_pack_create(code="runs_100", credits=D(100), price=D("99.00"), currency="USD")
    with transaction.atomic():
        purchase = checkout.purchase_create(
            customer=acme,
            kind=Purchase.CREDIT_PACK,
            channel=Purchase.CHECKOUT,
            pack=pack,
            credits=pack.credits,
            amount=D("99.00"),
            now=NOW,
        )
    return purchase


def receive(payload: str):
    return lambda: stripe_events.stripe_event_receive(
        payload=payload.encode(), signature=signature(payload), now=NOW
    )


def paid_session(purchase: Purchase) -> dict:
    return {
        "id": "cs_race",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 9900,
        "currency": "usd",
        "payment_intent": "pi_race",
        "metadata": {"purchase_id": str(purchase.pk), "payment_id": str(purchase.payment.pk)},
    }


def test_one_event_delivered_twice_at_once_is_processed_once(pending_checkout):
    payload = stripe_event("evt_race", "checkout.session.completed", paid_session(pending_checkout))

    results = at_once(receive(payload), receive(payload))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(duplicate for _, duplicate in results) == [False, True]
    event = StripeEvent.objects.get()
    assert (event.deliveries, event.last_error) == (2, "")
    assert CreditBlock.objects.count() == 1
    assert Wallet.objects.get().balance == 100
    assert Invoice.objects.get().status == Invoice.PAID


def test_two_events_of_one_payment_at_once_grant_it_once(pending_checkout):
    session = stripe_event(
        "evt_session", "checkout.session.completed", paid_session(pending_checkout)
    )
    intent = stripe_event(
        "evt_intent",
        "payment_intent.succeeded",
        {
            "id": "pi_race",
            "object": "payment_intent",
            "status": "succeeded",
            "amount": 9900,
            "amount_received": 9900,
            "currency": "usd",
            "metadata": paid_session(pending_checkout)["metadata"],
        },
    )

    results = at_once(receive(session), receive(intent))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 2
    assert CreditBlock.objects.count() == 1
    assert Wallet.objects.get().balance == 100
    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.payment.status) == ("paid", "succeeded")

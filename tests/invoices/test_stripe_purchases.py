"""Credit packs and money top-ups paid through Stripe before anything is granted:
a Checkout link (API and admin) or the saved payment method charged at once;
auto top-up charging the saved payment method off-session after the ingest
commits. The `stripe` library talks to a fake Stripe on 127.0.0.1; webhooks are
signed for real."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.models import Alert
from customers.services import customer_create
from invoices import tasks
from invoices.models import Invoice, Payment, Purchase, StripeEvent
from plans.models import CreditPack
from plans.services import credit_pack_create, tax_rate_create
from tests.factories import subscribe
from tests.invoices.conftest import stripe_event
from tests.invoices.stripe_fake import card_declined, stripe_error
from tests.wallets.support import (
    assert_all_wallets_consistent,
    build_catalog,
    ingest,
    repeat,
    state,
    wallet_of,
)
from wallets.ledger import credits_grant
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage, Wallet
from wallets.purchases import auto_top_up_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
BASE = "/api/v1/customers/acme/wallets"


@pytest.fixture
def acme(db):
    return customer_create(
        external_id="acme", name="Acme Inc", currency="USD", email="billing@acme.test"
    )


@pytest.fixture(scope="module")
def _catalog_once(module_transaction):
    return module_transaction.once(build_catalog, "catalog")


@pytest.fixture
def catalog(_catalog_once, db):
    """build_catalog's plans and packs, made once for this module (tests/shared_rows.py)."""
    return _catalog_once.for_test()


@pytest.fixture(autouse=True)
def _wallets_stay_consistent(db):
    yield
    assert_all_wallets_consistent()


def post(api, capture, path: str, body: dict, *, at: datetime = NOW, execute: bool = True):
    """POST to the wallet API at `at`, then run what its commit enqueued."""
    with time_machine.travel(at, tick=False), capture(execute=execute):
        return api.post(f"{BASE}{path}", body, format="json")


def completed(purchase: Purchase, *, amount: int, currency: str, intent="pi_checkout") -> dict:
    payment = Payment.objects.get(purchase=purchase)
    return {
        "id": payment.stripe_checkout_session_id,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": amount,
        "currency": currency,
        "customer": payment.stripe_customer_id,
        "payment_intent": intent,
        "client_reference_id": str(purchase.pk),
        "metadata": {"purchase_id": str(purchase.pk), "payment_id": str(payment.pk)},
    }


def test_a_pack_bought_on_a_checkout_page_is_granted_when_paid(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    fake_stripe.default_payment_method = None

    # when: the product asks for a Checkout link
    response = post(
        api,
        django_capture_on_commit_callbacks,
        "/credits",
        {"pack": "runs_100", "checkout": True, "cancel_url": "https://app.example.test/shop"},
    )

    # then: 202, a link, nothing granted yet
    assert response.status_code == 202, response.content
    purchase = Purchase.objects.get()
    session_id = purchase.payment.stripe_checkout_session_id
    assert response.json() == {
        "purchase": {
            "id": purchase.pk,
            "kind": "credit_pack",
            "channel": "checkout",
            "status": "pending",
            "pack": "runs_100",
            "credits": "100",
            "applies_to": [],
            "amount": "99.00",
            "currency": "USD",
            "checkout_url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "invoice": None,
            "error": None,
            "created_at": "2026-11-10T12:00:00Z",
            "paid_at": None,
        }
    }
    assert not CreditBlock.objects.exists()
    assert not Invoice.objects.exists()
    assert [(r.method, r.path) for r in fake_stripe.requests] == [
        ("POST", "/v1/customers"),
        ("POST", "/v1/checkout/sessions"),
    ]
    session = fake_stripe.to("POST", "/v1/checkout/sessions")[0]
    acme.refresh_from_db()
    assert session.idempotency_key == f"purchase-{purchase.pk}-checkout"
    assert session.form == {
        "mode": "payment",
        "customer": acme.stripe_customer_id,
        "client_reference_id": str(purchase.pk),
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "9900",
        "line_items[0][price_data][product_data][name]": "runs_100: 100 credits",
        "payment_intent_data[setup_future_usage]": "off_session",
        "payment_intent_data[description]": "runs_100: 100 credits",
        "payment_intent_data[metadata][purchase_id]": str(purchase.pk),
        "payment_intent_data[metadata][payment_id]": str(purchase.payment.pk),
        "metadata[purchase_id]": str(purchase.pk),
        "metadata[payment_id]": str(purchase.payment.pk),
        "success_url": "https://app.example.test/paid",
        "cancel_url": "https://app.example.test/shop",
    }

    # when: Stripe reports the session paid
    with django_capture_on_commit_callbacks(execute=True):
        answer = deliver(
            stripe_event(
                "evt_paid",
                "checkout.session.completed",
                completed(purchase, amount=9900, currency="usd"),
            )
        )

    # then: the credits, a paid purchase invoice, and the card kept for next time
    assert answer.status_code == 200
    purchase.refresh_from_db()
    block = purchase.block
    assert (purchase.status, block.amount, block.source, block.price_paid) == (
        "paid",
        D(100),
        "pack",
        D("99.00"),
    )
    invoice = purchase.invoice
    assert (invoice.status, invoice.total, invoice.payment_reference) == (
        "paid",
        D("99.00"),
        "pi_checkout",
    )
    assert [(li.kind, li.amount) for li in invoice.lines.all()] == [("credit_pack", D("99.00"))]
    assert wallet_of(acme).balance == 100
    assert LedgerEntry.objects.get().kind == "purchase"
    # the paid invoice is not collected again
    assert not Payment.objects.filter(invoice=invoice).exists()
    remember = fake_stripe.requests[2:]
    assert [(r.method, r.path) for r in remember] == [
        ("GET", f"/v1/customers/{acme.stripe_customer_id}"),
        ("GET", "/v1/payment_intents/pi_checkout"),
        ("POST", f"/v1/customers/{acme.stripe_customer_id}"),
    ]
    assert remember[2].form == {"invoice_settings[default_payment_method]": "pm_saved_by_checkout"}
    assert remember[2].idempotency_key == f"payment-{purchase.payment.pk}-default-method"


def checkout_pack(api, capture) -> Purchase:
    """acme orders the 99.00 pack runs_100 on a Checkout page: the purchase, pending."""
    response = post(
        api,
        capture,
        "/credits",
        {"pack": "runs_100", "checkout": True, "cancel_url": "https://app.example.test/shop"},
    )
    assert response.status_code == 202, response.content
    return Purchase.objects.get()


def checkout_paid(deliver, capture, purchase: Purchase, *, cents: int) -> None:
    """Stripe reports the purchase's Checkout session paid, `cents` collected."""
    with capture(execute=True):
        deliver(
            stripe_event(
                "evt_paid",
                "checkout.session.completed",
                completed(purchase, amount=cents, currency="usd"),
            )
        )


def test_a_taxed_customer_pays_the_tax_at_checkout_and_its_invoice_says_so(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    # given: acme is charged a VAT of 20 %
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)

    # when: it buys the 99.00 pack on a Checkout page, and pays
    purchase = checkout_pack(api, django_capture_on_commit_callbacks)
    checkout_paid(deliver, django_capture_on_commit_callbacks, purchase, cents=11880)

    # then: Stripe was asked for 99.00 + 19.80, and the paid invoice totals what it collected
    session = fake_stripe.to("POST", "/v1/checkout/sessions")[0]
    assert session.form["line_items[0][price_data][unit_amount]"] == "11880"
    assert Payment.objects.get(purchase=purchase).amount == D("118.80")
    invoice = Purchase.objects.get().invoice
    assert (invoice.status, invoice.subtotal, invoice.tax, invoice.total) == (
        "paid",
        D("99.00"),
        D("19.80"),
        D("118.80"),
    )
    assert [(t.code, t.amount) for t in invoice.tax_lines.all()] == [("vat", D("19.80"))]


def test_a_purchase_is_taxed_at_the_rates_it_was_charged_at_when_the_payment_arrives(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    """Rule: the paid invoice of a purchase is taxed at the rates recorded when it
    was ordered (what Stripe charged), not at the customer's rates when the
    payment arrives."""
    # given: acme charged a VAT of 20 % orders the 99.00 pack on a Checkout page
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    tax_rate_create(code="vat_21", name="VAT", percentage=D("21"))
    purchase = checkout_pack(api, django_capture_on_commit_callbacks)
    assert (purchase.tax, purchase.tax_rate_codes) == (D("19.80"), ["vat"])

    # when: acme is given a rate of 21 % before it pays the 118.80
    response = api.patch("/api/v1/customers/acme", {"tax_rates": ["vat_21"]}, format="json")
    assert response.status_code == 200, response.content
    checkout_paid(deliver, django_capture_on_commit_callbacks, purchase, cents=11880)

    # then: its invoice is taxed at 20 %, the 118.80 Stripe collected
    invoice = Purchase.objects.get().invoice
    assert (invoice.status, invoice.tax, invoice.total) == ("paid", D("19.80"), D("118.80"))
    assert [(t.code, t.percentage, t.amount) for t in invoice.tax_lines.all()] == [
        ("vat", D("20"), D("19.80"))
    ]


def test_a_pending_purchase_keeps_the_rate_archived_under_it(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    # given: acme holds a VAT of 20 % as its own, and orders the 99.00 pack (118.80)
    tax_rate_create(code="vat", name="VAT", percentage=D("20"))
    tax_rate_create(code="vat_2027", name="VAT", percentage=D("21"))
    response = api.patch("/api/v1/customers/acme", {"tax_rates": ["vat"]}, format="json")
    assert response.status_code == 200, response.content
    purchase = checkout_pack(api, django_capture_on_commit_callbacks)

    # when: the rate is archived, acme moved to 21 %, before the payment arrives
    response = api.patch(
        "/api/v1/tax-rates/vat", {"active": False, "replaced_by": "vat_2027"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert api.get("/api/v1/customers/acme").json()["tax_rates"] == ["vat_2027"]
    checkout_paid(deliver, django_capture_on_commit_callbacks, purchase, cents=11880)

    # then: the purchase's invoice is taxed at the archived 20 %, as it was charged
    invoice = Purchase.objects.get().invoice
    assert (invoice.status, invoice.tax, invoice.total) == ("paid", D("19.80"), D("118.80"))
    assert [(t.code, t.amount) for t in invoice.tax_lines.all()] == [("vat", D("19.80"))]


def test_a_replayed_checkout_completion_grants_once(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    post(
        api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100", "checkout": True}
    )
    purchase = Purchase.objects.get()
    payload = stripe_event(
        "evt_paid", "checkout.session.completed", completed(purchase, amount=9900, currency="usd")
    )

    # Stripe delivers it twice, and the PaymentIntent's own success too
    deliver(payload)
    deliver(payload)
    intent = {
        "id": "pi_checkout",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 9900,
        "amount_received": 9900,
        "currency": "usd",
        "metadata": completed(purchase, amount=9900, currency="usd")["metadata"],
    }
    deliver(stripe_event("evt_intent", "payment_intent.succeeded", intent))

    assert CreditBlock.objects.count() == 1
    assert Invoice.objects.count() == 1
    assert wallet_of(acme).balance == 100
    assert StripeEvent.objects.get(pk="evt_paid").deliveries == 2


def test_a_yen_top_up_on_a_checkout_page(
    api, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    kaisha = customer_create(external_id="kaisha", name="Kaisha KK", currency="JPY")

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/customers/kaisha/wallets/money",
            {"amount": "5000", "currency": "JPY", "checkout": True},
            format="json",
        )

    assert response.status_code == 202, response.content
    assert response.json()["purchase"]["amount"] == "5000"
    (session,) = fake_stripe.to("POST", "/v1/checkout/sessions")
    assert session.form["line_items[0][price_data][unit_amount]"] == "5000"
    assert session.form["line_items[0][price_data][currency]"] == "jpy"
    assert session.form["line_items[0][price_data][product_data][name]"] == (
        "Prepaid balance top-up (JPY)"
    )
    assert not Wallet.objects.filter(balance__gt=0).exists()

    purchase = Purchase.objects.get()
    deliver(
        stripe_event(
            "evt_yen",
            "checkout.session.completed",
            completed(purchase, amount=5000, currency="jpy"),
        )
    )

    wallet = wallet_of(kaisha, Wallet.MONEY, "JPY")
    assert wallet.balance == 5000
    assert LedgerEntry.objects.get(wallet=wallet).kind == "top_up"
    assert Purchase.objects.get().invoice.total == 5000


def test_a_checkout_that_expires_grants_nothing_and_a_late_expiry_changes_nothing(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    post(
        api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100", "checkout": True}
    )
    post(
        api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100", "checkout": True}
    )
    first, second = Purchase.objects.order_by("id")
    session = completed(first, amount=9900, currency="usd") | {
        "status": "expired",
        "payment_status": "unpaid",
    }

    deliver(stripe_event("evt_expired", "checkout.session.expired", session))
    # the second is paid, then (out of order) reported expired
    deliver(
        stripe_event(
            "evt_paid", "checkout.session.completed", completed(second, amount=9900, currency="usd")
        )
    )
    late = completed(second, amount=9900, currency="usd") | {"status": "expired"}
    deliver(stripe_event("evt_late", "checkout.session.expired", late))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.payment.status, first.block_id) == ("canceled", "canceled", None)
    assert first.payment.last_error == "the Checkout session expired unpaid"
    assert (second.status, second.payment.status) == ("paid", "succeeded")
    assert wallet_of(acme).balance == 100


def test_a_decline_on_the_checkout_page_is_noted_and_the_buyer_may_try_again(
    api, acme, catalog, fake_stripe, deliver, django_capture_on_commit_callbacks
):
    post(
        api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100", "checkout": True}
    )
    purchase = Purchase.objects.get()
    declined = {
        "id": "pi_checkout",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "metadata": {"purchase_id": str(purchase.pk), "payment_id": str(purchase.payment.pk)},
        "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
    }

    deliver(stripe_event("evt_declined", "payment_intent.payment_failed", declined))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.payment.status) == ("pending", "processing")
    assert purchase.payment.last_error == "card_declined: Your card was declined."

    deliver(
        stripe_event(
            "evt_paid",
            "checkout.session.completed",
            completed(purchase, amount=9900, currency="usd"),
        )
    )
    purchase.refresh_from_db()
    assert purchase.status == "paid"


def test_a_pack_charged_at_once_to_the_saved_payment_method(
    api, acme, catalog, fake_stripe, django_capture_on_commit_callbacks
):
    response = post(api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100"})

    # the answer comes before the charge: pending
    assert response.status_code == 202, response.content
    assert (response.json()["purchase"]["channel"], response.json()["purchase"]["status"]) == (
        "charge",
        "pending",
    )
    purchase = Purchase.objects.get()
    (charge,) = fake_stripe.to("POST", "/v1/payment_intents")
    assert charge.idempotency_key == f"purchase-{purchase.pk}-charge-1"
    assert (charge.form["amount"], charge.form["currency"], charge.form["off_session"]) == (
        "9900",
        "usd",
        "true",
    )
    assert charge.form["metadata[purchase_id]"] == str(purchase.pk)
    assert (purchase.status, purchase.invoice.status, wallet_of(acme).balance) == (
        "paid",
        "paid",
        100,
    )


def test_a_purchase_is_charged_from_the_urgent_queue(
    api, acme, catalog, fake_stripe, monkeypatch, django_capture_on_commit_callbacks
):
    # The tasks' queues are config.celery's (tests/billing/test_urgent_queue.py).
    queued = []
    for task in (tasks.collect_payment, tasks.collect_purchase_payment):
        monkeypatch.setattr(
            task,
            "apply_async",
            lambda args, kwargs=None, name=task.name, **options: queued.append((name, args)),
        )

    response = post(api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100"})

    assert response.status_code == 202, response.content
    payment = Payment.objects.get()
    assert queued == [("invoices.tasks.collect_purchase_payment", (payment.pk,))]


def test_a_pack_charged_at_once_and_declined_grants_nothing_and_is_not_retried(
    api, acme, catalog, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined())

    post(api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100"})

    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.payment.status, purchase.payment.attempts) == (
        "failed",
        "failed",
        1,
    )
    assert not CreditBlock.objects.exists()
    assert not Invoice.objects.exists()
    assert Alert.objects.get(kind="payment_failed").payload["purchase"] == purchase.pk


def test_checkout_when_stripe_is_down_is_a_409_and_the_purchase_failed(
    api, acme, catalog, fake_stripe, django_capture_on_commit_callbacks
):
    fake_stripe.queue(
        "POST",
        "/v1/checkout/sessions",
        *[stripe_error(503, "api_error", "Service unavailable.")] * 3,
    )

    response = post(
        api, django_capture_on_commit_callbacks, "/credits", {"pack": "runs_100", "checkout": True}
    )

    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "Stripe Checkout could not be opened: APIError HTTP 503: Service unavailable."
    )
    assert len(fake_stripe.to("POST", "/v1/checkout/sessions")) == 3
    purchase = Purchase.objects.get()
    assert (purchase.status, purchase.payment.status) == ("failed", "failed")
    assert purchase.payment.last_error == "APIError HTTP 503: Service unavailable."
    assert not CreditBlock.objects.exists()


def test_checkout_without_stripe_is_refused_and_changes_nothing(api, acme, catalog, settings):
    settings.STRIPE_API_KEY = ""
    before = state()

    with time_machine.travel(NOW, tick=False):
        response = api.post(
            f"{BASE}/credits", {"pack": "runs_100", "checkout": True}, format="json"
        )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "checkout": ["Stripe payments are not configured"]
    }
    assert state() == before
    assert not Purchase.objects.exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"credits": "10", "checkout": True}, {"checkout": ["Checkout sells a pack"]}),
        (
            {"pack": "runs_100", "checkout": True, "success_url": "not a url"},
            {"success_url": ["Enter a valid URL."]},
        ),
    ],
)
def test_a_bad_checkout_request_is_a_400(api, acme, catalog, fake_stripe, body, fields):
    with time_machine.travel(NOW, tick=False):
        response = api.post(f"{BASE}/credits", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == fields
    assert not Purchase.objects.exists()
    assert fake_stripe.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "Infinity", "currency": "USD"},
        {"amount": "-5.00", "currency": "USD", "checkout": True},
        {"amount": "10.001", "currency": "USD", "checkout": True},
        {"amount": "10.00", "currency": "EUR", "checkout": True},
    ],
)
def test_a_bad_top_up_with_stripe_is_a_400_and_asks_stripe_nothing(
    api, acme, catalog, fake_stripe, body
):
    before = state()

    with time_machine.travel(NOW, tick=False):
        response = api.post(f"{BASE}/money", body, format="json")

    assert response.status_code == 400, response.content
    assert state() == before
    assert not Purchase.objects.exists()
    assert fake_stripe.requests == []


def test_a_checkout_needs_somewhere_to_send_the_buyer_back(
    api, acme, catalog, fake_stripe, settings
):
    settings.STRIPE_CHECKOUT_SUCCESS_URL = ""

    with time_machine.travel(NOW, tick=False):
        response = api.post(
            f"{BASE}/credits", {"pack": "runs_100", "checkout": True}, format="json"
        )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"success_url": ["required"]}
    assert not Purchase.objects.exists()


def test_a_promotional_grant_is_not_paid_and_stays_immediate_with_stripe(
    api, acme, catalog, fake_stripe
):
    with time_machine.travel(NOW, tick=False):
        response = api.post(f"{BASE}/credits", {"credits": "10"}, format="json")

    assert response.status_code == 201
    assert wallet_of(acme).balance == 10
    assert fake_stripe.requests == []


# The admin


def test_the_admin_sells_a_pack_with_a_checkout_link(
    admin_client, acme, catalog, fake_stripe, django_capture_on_commit_callbacks
):
    pack = CreditPack.objects.get(code="runs_100")
    assert admin_client.get("/admin/invoices/purchase/add/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/invoices/purchase/add/",
            {
                "customer": acme.pk,
                "pack": pack.pk,
                "top_up": "",
                "pay_by": "checkout",
                "success_url": "",
            },
            follow=True,
        )

    assert response.status_code == 200
    purchase = Purchase.objects.get()
    assert (purchase.channel, purchase.status, purchase.amount) == (
        "checkout",
        "pending",
        D("99.00"),
    )
    assert purchase.payment.checkout_url in response.text
    assert not CreditBlock.objects.exists()
    for page in ["/admin/invoices/purchase/", f"/admin/invoices/purchase/{purchase.pk}/change/"]:
        assert admin_client.get(page).status_code == 200, page


def test_the_admin_form_refuses_a_pack_and_an_amount_together(
    admin_client, acme, catalog, fake_stripe
):
    pack = CreditPack.objects.get(code="runs_100")

    response = admin_client.post(
        "/admin/invoices/purchase/add/",
        {"customer": acme.pk, "pack": pack.pk, "top_up": "10.00", "pay_by": "checkout"},
    )

    assert response.status_code == 200
    assert "Choose a pack, or give a money top-up amount." in response.text
    assert not Purchase.objects.exists()


def test_without_stripe_the_admin_sells_no_purchase(admin_client, db, settings):
    settings.STRIPE_API_KEY = ""

    assert admin_client.get("/admin/invoices/purchase/add/").status_code == 403
    assert admin_client.get("/admin/invoices/purchase/").status_code == 200


# Auto top-up


def runs(count: int, *, prefix: str, at: datetime = NOW) -> None:
    ingest(repeat(count, "agent.run", at, prefix=prefix), now=at)


@pytest.fixture
def runner(acme, catalog):
    """acme on `runner` (2 credits a run) with 30 credits, and auto top-up of one
    runs_100 pack (100 credits for 99.00) at 20 credits."""
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(30), now=NOV_1)
    auto_top_up_set(
        customer=acme, enabled=True, threshold=D(20), pack=CreditPack.objects.get(code="runs_100")
    )
    return acme


def test_auto_top_up_charges_after_the_ingest_commits_and_grants_when_paid(
    runner, fake_stripe, django_capture_on_commit_callbacks
):
    # when: 10 runs take the balance from 30 to 10, across the threshold
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks() as enqueued:
        runs(10, prefix="a")

    # then: in the ingest, no call to Stripe and nothing granted
    assert fake_stripe.requests == []
    assert wallet_of(runner).balance == 10
    purchase = Purchase.objects.get()
    assert (purchase.channel, purchase.status, purchase.credits) == (
        "auto_top_up",
        "pending",
        D(100),
    )

    # once it commits, the worker charges the saved payment method
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        for callback in enqueued:
            callback()

    (charge,) = fake_stripe.to("POST", "/v1/payment_intents")
    assert charge.idempotency_key == f"purchase-{purchase.pk}-charge-1"
    assert (charge.form["amount"], charge.form["payment_method"]) == ("9900", "pm_card_visa")
    purchase.refresh_from_db()
    assert purchase.status == "paid"
    block = purchase.block
    assert (block.source, block.amount, block.price_paid) == ("auto_top_up", D(100), D("99.00"))
    assert wallet_of(runner).balance == 110
    assert wallet_of(runner).ledger.order_by("-id").first().kind == "auto_top_up"
    alert = Alert.objects.get(kind="auto_top_up")
    assert (alert.key, alert.period_start) == (f"block:{block.pk}", NOV_1)
    # As when a pack is paid at ingestion (wallets.alerts), with the period.
    assert alert.payload == {
        "pack": "runs_100",
        "credits": "100",
        "price": "99.00",
        "currency": "USD",
        "invoice": purchase.invoice.number,
        "balance": "110",
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
        "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
    }
    assert purchase.invoice.status == "paid"


def test_usage_while_the_top_up_is_pending_stays_uncovered(
    runner, fake_stripe, django_capture_on_commit_callbacks
):
    # given: the charge has not run yet when more usage comes
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks() as enqueued:
        runs(20, prefix="a")  # 30 credits pay 15 runs; 5 runs (10 credits) short
        runs(5, prefix="b")  # all 5 short; the pending purchase is not asked for again

    assert Purchase.objects.count() == 1
    assert wallet_of(runner).balance == 0
    assert sorted(UncoveredUsage.objects.values_list("quantity", flat=True)) == [D(5), D(5)]

    # when the charge succeeds
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        for callback in enqueued:
            callback()

    # then: the pack pays for what comes next, not for what was short before
    assert wallet_of(runner).balance == 100
    assert sorted(UncoveredUsage.objects.values_list("quantity", flat=True)) == [D(5), D(5)]
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        runs(1, prefix="c")
    assert wallet_of(runner).balance == 98
    assert Purchase.objects.count() == 1


def test_a_failed_auto_top_up_grants_nothing_alerts_and_is_retried_then_fails(
    runner, fake_stripe, django_capture_on_commit_callbacks, mailoutbox
):
    fake_stripe.queue(
        "POST", "/v1/payment_intents", *[card_declined(f"pi_no_{n}") for n in (1, 2, 3)]
    )

    # when: the threshold is crossed, and the charge is declined
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        runs(10, prefix="a")

    # then: nothing granted, an alert, a retry in an hour
    purchase = Purchase.objects.get()
    payment = purchase.payment
    assert (purchase.status, payment.status, payment.attempts, payment.next_attempt_at) == (
        "pending",
        "pending",
        1,
        NOW + timedelta(minutes=60),
    )
    assert wallet_of(runner).balance == 10
    assert not CreditBlock.objects.filter(kind="paid").exists()
    assert not Invoice.objects.filter(reason="purchase").exists()
    alert = Alert.objects.get(kind="payment_failed")
    assert (alert.payload["purchase"], alert.payload["attempt"], alert.payload["attempts"]) == (
        purchase.pk,
        1,
        3,
    )
    (message,) = [m for m in mailoutbox if m.subject == "A payment failed"]
    assert message.body == (
        "Hello,\n\nThe payment of 99.00\xa0USD for a purchase failed (attempt 1 of 3).\n\n"
        "Reason: CardError HTTP 402 card_declined insufficient_funds: "
        "Your card has insufficient funds.\n\nIt will be tried again on 10 Nov 2026, 13:00 UTC.\n"
    )

    # while it waits, more usage asks for no second pack
    with (
        time_machine.travel(NOW + timedelta(minutes=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        runs(10, prefix="b")
    assert Purchase.objects.count() == 1
    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == 1

    # when the retries come due and are declined too
    # (the beat sends them: a retry is the payment's row, no task waits for it)
    for minutes in (60 + 3, 60 + 3 + 1440 + 3):
        with (
            time_machine.travel(NOW + timedelta(minutes=minutes), tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            assert tasks.collect_due_payments() == 1

    # then: the purchase failed, nothing granted, three alerts
    purchase.refresh_from_db()
    assert (purchase.status, purchase.payment.status, purchase.payment.attempts) == (
        "failed",
        "failed",
        3,
    )
    assert [c.idempotency_key for c in fake_stripe.to("POST", "/v1/payment_intents")] == [
        f"purchase-{purchase.pk}-charge-{n}" for n in (1, 2, 3)
    ]
    assert Alert.objects.filter(kind="payment_failed").count() == 3
    assert not CreditBlock.objects.filter(kind="paid").exists()
    assert wallet_of(runner).balance == 0

    # and the next crossing asks for a pack again
    credits_grant(customer=runner, credits=D(30), now=NOW + timedelta(days=2))
    with (
        time_machine.travel(NOW + timedelta(days=2), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        runs(10, prefix="c", at=NOW + timedelta(days=2))
    assert Purchase.objects.filter(status="pending").count() == 0
    assert Purchase.objects.filter(status="paid").count() == 1


def test_a_free_pack_is_granted_at_once_even_with_stripe(
    acme, catalog, fake_stripe, django_capture_on_commit_callbacks
):
    free = credit_pack_create(code="free_10", credits=D(10), price=D(0), currency="USD")
    subscribe(acme, "runner", NOV_1)
    auto_top_up_set(customer=acme, enabled=True, threshold=D(5), pack=free)

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        runs(1, prefix="a")

    assert wallet_of(acme).balance == 8
    assert not Purchase.objects.exists()
    assert fake_stripe.requests == []

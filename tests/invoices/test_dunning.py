"""Dunning and account standing (issue 53, SCENARIOS.md S28): a policy's steps
run on the beat on the exact days in the customer's zone, reminders in the
customer's language with the PDF attached, Stripe retried once and not after a
hard decline, `check` refusing metered usage while restricted and features too
while suspended, back to good at once when paid, standing changes announced once."""

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client

from billing.models import STANDING_CHANGED, WebhookDelivery, WebhookEndpoint
from customers.models import Customer
from invoices import tasks
from invoices.dunning_models import DunningPolicy, DunningRun
from invoices.dunning_policies import StepInput, policy_save
from invoices.models import Invoice
from invoices.pay_links import pay_path
from invoices.services import invoice_finalize
from invoices.settlement import invoice_mark_paid
from plans.features import feature_create
from plans.rating import LineInput
from tests.factories import MeterFactory, api_client, period_draft
from tests.invoices.conftest import stripe_event
from tests.invoices.stripe_fake import card_declined

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")
S28_STEPS = [
    StepInput(-3, "remind"),
    StepInput(1, "remind"),
    StepInput(1, "retry_payment"),
    StepInput(7, "restrict"),
    StepInput(14, "suspend"),
]


def paris(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def api():
    return api_client()


@pytest.fixture
def standard(db):
    return policy_save(code="standard", name="Standard", is_default=True, steps=S28_STEPS)


@pytest.fixture
def acme(api, standard):
    """A French customer in Paris on a plan with a metered charge and a feature,
    its start invoice paid."""
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    body = {
        "code": "pro",
        "name": "Pro",
        "currency": "EUR",
        "base_fee": "10.00",
        "publish": True,
        "charges": [{"meter": "prompts", "model": "overage", "included_units": "100"}],
        "features": [{"feature": "sso", "value": True}],
    }
    body["charges"][0]["pricing"] = {"scheme": "per_unit", "unit_price": "0.01"}
    assert api.post("/api/v1/plans", body, format="json").status_code == 201
    with time_machine.travel(paris(11, 1), tick=False):
        made = api.post(
            "/api/v1/customers",
            {
                "external_id": "acme",
                "name": "Acme SARL",
                "currency": "EUR",
                "timezone": "Europe/Paris",
                "locale": "fr",
                "email": "compta@acme.test",
                "payment_terms_days": 30,
            },
            format="json",
        )
        assert made.status_code == 201, made.content
        subscribed = api.post(
            "/api/v1/subscriptions",
            {"customer": "acme", "plan": "pro", "start": "2026-11-01T00:00:00+01:00"},
            format="json",
        )
        assert subscribed.status_code == 201, subscribed.content
        for invoice in Invoice.objects.filter(customer__external_id="acme"):
            if invoice.status == Invoice.DRAFT:
                invoice = invoice_finalize(invoice=invoice, now=paris(11, 1))
            invoice_mark_paid(invoice=invoice, reference="paid", now=paris(11, 1))
    return Customer.objects.get(external_id="acme")


def invoice_of_100(customer, *, at: datetime) -> Invoice:
    """An invoice of 100.00 finalized at `at` (due 30 days later, the customer's terms)."""
    line = LineInput("usage", "Prompts", None, D(1), D("100.00"), D("100.00"))
    draft = period_draft(customer, [line], start=paris(10, 1), end=paris(11, 1))
    return invoice_finalize(invoice=draft, now=at)


def beat(start: datetime, end: datetime, *, every=timedelta(hours=1)):
    """Run the dunning task as the beat does, at each step from start to end."""
    moment = start
    while moment <= end:
        with time_machine.travel(moment, tick=False):
            tasks.run_dunning()
        yield moment
        moment += every


def check(api, **asked) -> dict:
    response = api.post("/api/v1/customers/acme/check", asked, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def emails_on(settings):
    settings.BILLING_INVOICE_EMAILS = True


def test_s28_reminders_retry_and_restriction_on_the_exact_days(
    api, acme, fake_stripe, settings, emails_on
):
    # given: every off-session charge is declined (not for good), and the
    # policy of Stripe retries gives up after the first
    settings.STRIPE_PAYMENT_RETRY_MINUTES = []
    fake_stripe.queue(
        "POST", "/v1/payment_intents", *[card_declined(f"pi_no_{n}") for n in range(1, 6)]
    )
    WebhookEndpoint.objects.create(url="https://hooks.example.test/billing", secret="whsec_test")
    with time_machine.travel(paris(11, 1), tick=False):
        invoice = invoice_of_100(acme, at=paris(11, 1))
    assert invoice.due_at == paris(12, 1)
    charges_before = len(fake_stripe.to("POST", "/v1/payment_intents"))
    mail.outbox.clear()

    # when: the beat runs every three hours from Nov 26 to Dec 9
    emailed, charged = [], []
    for moment in beat(paris(11, 26), paris(12, 9, 21), every=timedelta(hours=3)):
        # The reminders (the invoice attached): the payment_failed alert is emailed too.
        emailed += [(moment, message) for message in mail.outbox if message.attachments]
        mail.outbox.clear()
        charges = fake_stripe.to("POST", "/v1/payment_intents")[charges_before:]
        charged += [moment] * len(charges)
        charges_before += len(charges)
        if moment == paris(12, 8, 3):
            on_dec_8 = (check(api, meter="prompts", quantity="1"), check(api, feature="sso"))

    # then: reminders on Nov 28 and Dec 2 (the first beat of the day in Paris), in French
    assert [moment for moment, _ in emailed] == [paris(11, 28), paris(12, 2)]
    before, after = (message for _, message in emailed)
    seller = "Usage Billing Inc."
    assert before.subject == f"Rappel : la facture {invoice.number} de {seller} arrive à échéance"
    assert after.subject == f"En retard : facture {invoice.number} de {seller}"
    assert before.to == ["compta@acme.test"]
    number = invoice.number
    assert before.body.splitlines()[:4] == [
        "Bonjour Acme SARL,",
        "",
        f"La facture {number} de 100,00\xa0EUR est due le 1 déc. 2026.",
        "La facture est jointe.",
    ]
    assert after.body.splitlines()[2] == (
        f"La facture {number} de 100,00\xa0EUR était due le 1 déc. 2026 et reste impayée."
    )
    # the pay link opens the invoice's payment page
    (link,) = re.findall(r"http://127\.0\.0\.1:8000(/pay/\S+/)", after.body)
    page = Client().get(link)
    assert page.status_code == 200
    assert "100,00\xa0EUR" in page.content.decode()
    for message in (before, after):
        (name, content, kind) = message.attachments[0]
        assert (name, kind) == (f"{invoice.number}.pdf", "application/pdf")
        assert content.startswith(b"%PDF")
    # one retry, on Dec 2, with a key of its own
    assert charged == [paris(12, 2)]
    retry = fake_stripe.to("POST", "/v1/payment_intents")[-1]
    assert retry.idempotency_key.startswith(f"invoice-{invoice.pk}-collect-")
    # restricted on Dec 8: metered usage refused, features still allowed
    metered, feature = on_dec_8
    assert (metered["allowed"], metered["reason"]) == (False, "account_restricted")
    assert (feature["allowed"], feature["reason"]) == (True, "ok")
    acme.refresh_from_db()
    assert (acme.standing, acme.standing_since, acme.standing_invoice_id) == (
        "restricted",
        paris(12, 8),
        invoice.pk,
    )

    # when: paid on Dec 10 through the API
    with time_machine.travel(paris(12, 10, 9), tick=False):
        paid = api.post(
            f"/api/v1/invoices/{invoice.pk}/pay", {"reference": "bank 123"}, format="json"
        )
        assert paid.status_code == 200, paid.content
        # then: good at once, metered usage allowed
        assert check(api, meter="prompts", quantity="1")["allowed"] is True
    acme.refresh_from_db()
    assert (acme.standing, acme.standing_since) == ("good", paris(12, 10, 9))
    # and nothing more: no suspension on Dec 15, no reminder
    list(beat(paris(12, 10, 10), paris(12, 20), every=timedelta(hours=6)))
    assert [message for message in mail.outbox if message.attachments] == []
    assert not DunningRun.objects.filter(action="suspend").exists()
    acme.refresh_from_db()
    assert acme.standing == "good"
    # each standing change announced once: past due, restricted, good
    changes = [
        (json.loads(d.body)["data"]["previous"], json.loads(d.body)["data"]["standing"])
        for d in WebhookDelivery.objects.filter(event_type=STANDING_CHANGED).order_by("id")
    ]
    assert changes == [("good", "past_due"), ("past_due", "restricted"), ("restricted", "good")]


def run_dunning_at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        return tasks.run_dunning()


def test_a_hard_decline_stops_retries_and_not_reminders(api, acme, fake_stripe, emails_on):
    # given: a policy retrying twice; the card is reported stolen at the first charge
    policy_save(
        code="standard",
        name="Standard",
        is_default=True,
        steps=[
            StepInput(1, "remind"),
            StepInput(1, "retry_payment"),
            StepInput(3, "remind"),
            StepInput(3, "retry_payment"),
        ],
        policy=DunningPolicy.objects.get(code="standard"),
    )
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined("pi_stolen", "stolen_card"))
    with time_machine.travel(paris(11, 1), tick=False):
        invoice = invoice_of_100(acme, at=paris(11, 1))
    invoice.refresh_from_db()
    # the retry policy gives up at once: the invoice is uncollectible
    assert (invoice.payment.status, invoice.payment.decline_code) == ("failed", "stolen_card")
    assert invoice.status == Invoice.UNCOLLECTIBLE
    charges = len(fake_stripe.to("POST", "/v1/payment_intents"))
    mail.outbox.clear()

    # when: the steps of Dec 2 and Dec 4 fall due
    run_dunning_at(paris(12, 2, 1))
    run_dunning_at(paris(12, 4, 1))

    # then: no more charges, both reminders sent, the retries recorded as skipped
    assert len(fake_stripe.to("POST", "/v1/payment_intents")) == charges
    assert len([m for m in mail.outbox if m.attachments]) == 2
    retries = DunningRun.objects.filter(invoice=invoice, action="retry_payment")
    assert {(r.days_after_due, r.outcome, r.detail) for r in retries} == {
        (1, "skipped", "not tried again: the card was declined (stolen_card)"),
        (3, "skipped", "not tried again: the card was declined (stolen_card)"),
    }


def test_a_pause_holds_every_step_until_its_date(api, acme, emails_on):
    with time_machine.travel(paris(11, 1), tick=False):
        invoice = invoice_of_100(acme, at=paris(11, 1))
    mail.outbox.clear()
    # given: dunning paused until Dec 10, 12:00 through the API
    with time_machine.travel(paris(11, 20), tick=False):
        paused = api.post(
            "/api/v1/customers/acme/dunning/pause",
            {"until": "2026-12-10T12:00:00+01:00"},
            format="json",
        )
    assert paused.status_code == 200, paused.content
    assert paused.json()["until"] == "2026-12-10T11:00:00Z"
    assert paused.json()["by"].startswith("API key ")

    # when: the beat runs through the pause
    for day in range(27, 31):
        run_dunning_at(paris(11, day, 1))
    for day in range(1, 11):
        run_dunning_at(paris(12, day, 1))

    # then: nothing was done, the customer is past due only
    assert not DunningRun.objects.exists()
    assert [m for m in mail.outbox if m.attachments] == []
    acme.refresh_from_db()
    assert acme.standing == "past_due"

    # when: the pause ends
    run_dunning_at(paris(12, 10, 12, 15))

    # then: the held steps run, one reminder for the two due
    runs = {
        (r.action, r.days_after_due): r.outcome for r in DunningRun.objects.filter(invoice=invoice)
    }
    assert runs == {
        ("remind", -3): "skipped",
        ("remind", 1): "done",
        ("retry_payment", 1): "skipped",  # Stripe is not configured
        ("restrict", 7): "done",
    }
    assert len([m for m in mail.outbox if m.attachments]) == 1
    acme.refresh_from_db()
    assert acme.standing == "restricted"


def test_two_invoices_past_due_restrict_until_both_are_settled_then_suspend(api, acme):
    WebhookEndpoint.objects.create(url="https://hooks.example.test/billing", secret="whsec_test")
    with time_machine.travel(paris(11, 1), tick=False):
        first = invoice_of_100(acme, at=paris(11, 1))
    with time_machine.travel(paris(11, 3), tick=False):
        second = invoice_of_100(acme, at=paris(11, 3))
    assert (first.due_at, second.due_at) == (paris(12, 1), paris(12, 3))

    run_dunning_at(paris(12, 10, 1))
    acme.refresh_from_db()
    # restricted by both; the first due names the standing
    assert (acme.standing, acme.standing_invoice_id) == ("restricted", first.pk)

    # when: the first is paid
    with time_machine.travel(paris(12, 10, 9), tick=False):
        paid = api.post(f"/api/v1/invoices/{first.pk}/pay", {"reference": "bank 1"}, format="json")
        assert paid.status_code == 200, paid.content
    acme.refresh_from_db()
    # then: still restricted, by the second
    assert (acme.standing, acme.standing_invoice_id) == ("restricted", second.pk)

    # when: the second reaches its suspension day
    run_dunning_at(paris(12, 17, 1))
    acme.refresh_from_db()
    assert acme.standing == "suspended"
    with time_machine.travel(paris(12, 17, 2), tick=False):
        feature = check(api, feature="sso")
        entitlements = api.get("/api/v1/customers/acme/entitlements").json()
    assert (feature["allowed"], feature["reason"]) == (False, "account_suspended")
    assert entitlements["standing"] == "suspended"
    assert entitlements["features"] == {}
    assert entitlements["meters"]["prompts"]["allowed"] is False

    # when: the second is credited in full
    with time_machine.travel(paris(12, 18), tick=False):
        credited = api.post(f"/api/v1/invoices/{second.pk}/void", {}, format="json")
    assert credited.status_code in (200, 201), credited.content
    acme.refresh_from_db()
    assert acme.standing == "good"
    with time_machine.travel(paris(12, 18, 1), tick=False):
        assert check(api, feature="sso")["allowed"] is True
    # and a second run changes nothing more, announcing nothing twice
    run_dunning_at(paris(12, 18, 2))
    changes = [
        json.loads(d.body)["data"]["standing"]
        for d in WebhookDelivery.objects.filter(event_type=STANDING_CHANGED).order_by("id")
    ]
    # each change once: restricted (past due and restricted in one run), suspended, good
    assert changes == ["restricted", "suspended", "good"]
    acme.refresh_from_db()
    assert acme.standing == "good"


def test_the_pay_page_opens_stripe_checkout_and_the_webhook_pays_and_restores(
    api, acme, fake_stripe, deliver
):
    # given: a restricted customer whose invoice's off-session charge was declined
    fake_stripe.queue("POST", "/v1/payment_intents", card_declined("pi_no"))
    with time_machine.travel(paris(11, 1), tick=False):
        invoice = invoice_of_100(acme, at=paris(11, 1))
    run_dunning_at(paris(12, 9))
    acme.refresh_from_db()
    assert acme.standing == "restricted"

    # when: the customer opens the pay link and pays by card
    with time_machine.travel(paris(12, 9, 10), tick=False):
        link = pay_path(invoice_id=invoice.pk, now=datetime.now(UTC))
        client = Client()
        page = client.get(link)
        assert 'id="pay-card"' in page.content.decode()
        opened = client.post(link)
    # then: to Stripe Checkout, for what is due, with a key of its own
    assert opened.status_code == 302
    (session,) = fake_stripe.to("POST", "/v1/checkout/sessions")
    assert session.form["line_items[0][price_data][unit_amount]"] == "10000"
    assert session.form["metadata[invoice_id]"] == str(invoice.pk)
    assert session.idempotency_key.startswith(f"invoice-{invoice.pk}-checkout-")
    invoice.refresh_from_db()
    assert opened["Location"] == invoice.payment.checkout_url

    # when: Stripe reports the session paid
    with time_machine.travel(paris(12, 9, 11), tick=False):
        completed = stripe_event(
            "evt_checkout_paid",
            "checkout.session.completed",
            {
                "id": invoice.payment.stripe_checkout_session_id,
                "object": "checkout.session",
                "payment_status": "paid",
                "payment_intent": "pi_paid",
                "amount_total": 10000,
                "currency": "eur",
                "metadata": {"payment_id": str(invoice.payment.pk)},
            },
        )
        assert deliver(completed).status_code == 200
    # then: the invoice is paid and the customer back in good standing
    invoice.refresh_from_db()
    acme.refresh_from_db()
    assert (invoice.status, invoice.payment_reference) == ("paid", "pi_paid")
    assert acme.standing == "good"

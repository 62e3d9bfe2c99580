"""A payment received outside Stripe (issue 76): a bank transfer, a cheque, cash,
recorded with the day the money arrived, whole or in parts, through the API's
POST /invoices/{id}/payments or the invoice's admin page. The amount due falls
by each part; the part that leaves nothing due makes the invoice paid on its
day; the journal books each on the day it was received, in the seller's books.
Whatever is refused records nothing, and two payments at once never take more
than is due (for real on PostgreSQL)."""

import html
from datetime import UTC, date, datetime
from decimal import Decimal as D
from importlib import import_module

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.journal.models import JournalEntry
from common.errors import Conflict
from config.user_language import user_language_set
from customers.services import customer_create
from invoices.admin.record_payment import received_moment
from invoices.credit_balance import credit_balance
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import Invoice, Payment, ReceivedPayment
from invoices.payments_received import invoice_payment_record
from invoices.pdf import invoice_pdf_context
from invoices.services import invoice_finalize, invoice_void
from invoices.settlement import invoice_mark_paid
from plans.rating import LineInput
from tests.factories import CustomerFactory, api_client, period_draft
from tests.invoices.conftest import base_fee_lines
from tests.journal.books_support import NOV_5, s32_rates, sellers
from tests.threads import run_at_once

pytestmark = pytest.mark.django_db

received_migration = import_module("invoices.migrations.0033_received_payments")

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
ISSUED = datetime(2026, 11, 2, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 15, tzinfo=UTC)


def issued_invoice(customer=None, *, amount: str = "100.00") -> Invoice:
    """An October invoice of `amount` USD, issued Nov 2 09:00 (not collected), the
    clock moved there: a document is dated when it is issued (invoices.issue_dates)."""
    customer = customer or customer_create(
        external_id="acme", name="Acme Inc", currency="USD", email="billing@acme.test"
    )
    draft = period_draft(customer, base_fee_lines(amount), start=OCT_1, end=NOV_1)
    with time_machine.travel(ISSUED, tick=False):
        return invoice_finalize(invoice=draft, now=ISSUED, collect=False)


@pytest.fixture
def invoice(settings):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_INVOICE_PDFS = False
    issued = issued_invoice()
    with time_machine.travel(NOW, tick=False):
        yield issued


def record(invoice: Invoice, **body):
    payment = {
        "amount": "40.00",
        "received_at": "2026-11-20T00:00:00Z",
        "method": "bank_transfer",
        "reference": "BANK-TRF-4471",
        **body,
    }
    payment = {key: value for key, value in payment.items() if value is not None}
    return api_client("admin").post(
        f"/api/v1/invoices/{invoice.pk}/payments", payment, format="json"
    )


def entries(document_key: str) -> list[tuple]:
    return list(
        JournalEntry.objects.filter(document_key=document_key)
        .order_by("line")
        .values_list("date", "kind", "debit", "credit")
    )


def payment_documents(invoice: Invoice) -> list[str]:
    keys = JournalEntry.objects.filter(document_key__startswith=f"payment:{invoice.pk}")
    return sorted(set(keys.values_list("document_key", flat=True)))


# The API


def test_a_part_then_the_rest_each_booked_on_the_day_it_arrived(invoice):
    first = record(invoice)

    assert first.status_code == 201, first.content
    part = ReceivedPayment.objects.get()
    assert first.json() == {
        "id": part.pk,
        "invoice": invoice.pk,
        "amount": "40.00",
        "currency": "USD",
        "method": "bank_transfer",
        "reference": "BANK-TRF-4471",
        "received_at": "2026-11-20T00:00:00Z",
        "recorded_at": "2026-11-25T15:00:00Z",
        "completed_invoice": False,
        "invoice_status": "finalized",
        "invoice_amount_due": "60.00",
    }
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (
        "finalized",
        D("40.00"),
        D("60.00"),
    )
    assert invoice.paid_at is None
    assert entries(f"payment:{invoice.pk}:{part.pk}") == [
        (date(2026, 11, 20), "payments_clearing", D("40.00"), D(0)),
        (date(2026, 11, 20), "receivable", D(0), D("40.00")),
    ]

    rest = record(invoice, amount="60.00", received_at="2026-11-24T10:30:00Z", reference="TRF-2")

    assert rest.status_code == 201, rest.content
    assert rest.json()["completed_invoice"] is True
    assert rest.json()["invoice_status"] == "paid"
    assert rest.json()["invoice_amount_due"] == "0.00"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at, invoice.payment_reference) == (
        "paid",
        datetime(2026, 11, 24, 10, 30, tzinfo=UTC),
        "TRF-2",
    )
    assert invoice.amount_paid == D("100.00")
    # The payment that completes the invoice is its `payment:<invoice>` document.
    assert entries(f"payment:{invoice.pk}") == [
        (date(2026, 11, 24), "payments_clearing", D("60.00"), D(0)),
        (date(2026, 11, 24), "receivable", D(0), D("60.00")),
    ]
    listed = api_client("read").get(f"/api/v1/invoices/{invoice.pk}/payments").json()
    assert [(p["amount"], p["received_at"], p["reference"]) for p in listed["results"]] == [
        ("40.00", "2026-11-20T00:00:00Z", "BANK-TRF-4471"),
        ("60.00", "2026-11-24T10:30:00Z", "TRF-2"),
    ]
    detail = api_client("read").get(f"/api/v1/invoices/{invoice.pk}").json()
    assert (detail["amount_paid"], detail["amount_due"]) == ("100.00", "0.00")


def test_a_part_leaves_an_invoice_past_due_until_the_rest_arrives(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(due_at=datetime(2026, 11, 10, tzinfo=UTC))
    record(invoice, amount="99.99")

    listed = api_client("read").get("/api/v1/invoices?past_due=true").json()["results"]
    assert [(i["id"], i["amount_due"], i["amount_paid"]) for i in listed] == [
        (invoice.pk, "0.01", "99.99")
    ]
    record(invoice, amount="0.01")
    assert api_client("read").get("/api/v1/invoices?past_due=true").json()["results"] == []


def test_pay_still_takes_the_whole_amount_due_now_after_a_part(invoice):
    record(invoice, amount="25.50")

    response = api_client("admin").post(
        f"/api/v1/invoices/{invoice.pk}/pay", {"reference": "wire 118"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["amount_due"]) == ("paid", "0.00")
    rest = ReceivedPayment.objects.get(completed_invoice=True)
    assert (rest.amount, rest.method, rest.reference, rest.received_at) == (
        D("74.50"),
        "other",
        "wire 118",
        NOW,
    )
    assert entries(f"payment:{invoice.pk}") == [
        (date(2026, 11, 25), "payments_clearing", D("74.50"), D(0)),
        (date(2026, 11, 25), "receivable", D(0), D("74.50")),
    ]


def nothing_recorded(invoice: Invoice, status: str = "finalized") -> None:
    invoice.refresh_from_db()
    assert not ReceivedPayment.objects.exists()
    assert (invoice.status, invoice.amount_paid, invoice.paid_at) == (status, D(0), None)
    assert payment_documents(invoice) == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"amount": "100.01"}, 409, "amount"),
        ({"amount": "0"}, 400, "amount"),
        ({"amount": "0.00"}, 400, "amount"),
        ({"amount": "-5.00"}, 400, "amount"),
        ({"amount": "NaN"}, 400, "amount"),
        ({"amount": "Infinity"}, 400, "amount"),
        ({"amount": "-Infinity"}, 400, "amount"),
        ({"amount": "forty"}, 400, "amount"),
        ({"amount": True}, 400, "amount"),
        ({"amount": "40.001"}, 400, "amount"),
        ({"currency": "EUR"}, 400, "currency"),
        ({"received_at": "2026-11-25T15:00:01Z"}, 400, "received_at"),
        ({"received_at": "2026-11-02T08:59:59Z"}, 400, "received_at"),
        ({"received_at": "2026-13-01T00:00:00Z"}, 400, "received_at"),
        ({"received_at": "2026-11-20"}, 400, "received_at"),
        ({"received_at": "yesterday"}, 400, "received_at"),
        ({"received_at": None}, 400, "received_at"),
        ({"method": "stripe"}, 400, "method"),
        ({"method": "bitcoin"}, 400, "method"),
        ({"recieved_at": "2026-11-20T00:00:00Z"}, 400, "recieved_at"),
    ],
)
def test_a_refused_payment_says_why_and_records_nothing(invoice, body, status, field):
    response = record(invoice, **body)

    assert response.status_code == status, response.content
    assert field in response.json()["error"]["fields"]
    nothing_recorded(invoice)


def test_the_invoices_own_currency_may_be_named(invoice):
    assert record(invoice, currency="USD").status_code == 201


def test_a_json_nan_is_refused_before_it_is_read(invoice):
    response = api_client("admin").post(
        f"/api/v1/invoices/{invoice.pk}/payments",
        '{"amount": NaN, "received_at": "2026-11-20T00:00:00Z", "method": "cash"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    nothing_recorded(invoice)


def test_a_draft_a_void_or_a_paid_invoice_takes_no_payment(invoice):
    draft = period_draft(invoice.customer, base_fee_lines("10.00"), start=NOV_1, end=NOW)
    assert record(draft).status_code == 409
    invoice_void(invoice=invoice, reason="duplicate", now=NOW)
    response = record(invoice)
    assert response.status_code == 409
    assert "void" in response.json()["error"]["message"]
    nothing_recorded(invoice, status="void")

    paid = issued_invoice(invoice.customer, amount="10.00")
    invoice_mark_paid(invoice=paid, reference="wire", now=NOW)
    assert record(paid, amount="1.00").status_code == 409
    assert list(ReceivedPayment.objects.values_list("invoice", "amount")) == [(paid.pk, D("10.00"))]


def test_more_than_is_left_after_a_part_is_refused_naming_what_is_due(invoice):
    record(invoice, amount="70.00")

    response = record(invoice, amount="30.01")

    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"amount": ["more than the amount due (30.00)"]}
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.amount_due) == (D("70.00"), D("30.00"))


def test_a_part_is_booked_in_the_sellers_currency_and_the_rest_with_its_exchange_difference(
    settings,
):
    """A USD invoice of the EUR seller, booked at 0.90 (90.00 EUR): 40 USD received
    at 0.90, then 60 USD at 0.92 settles the 54.00 EUR left of the receivable for
    55.20 EUR, a gain of 1.20 EUR."""
    settings.STRIPE_API_KEY = ""
    s32_rates()
    sellers()
    ny = CustomerFactory(external_id="ny", name="New York Inc", billing_entity="sas")
    draft = period_draft(
        ny,
        [LineInput("usage", "API calls", "api_calls", D(1000), D("0.1"), D("100.00"))],
        start=OCT_1,
        end=NOV_1,
    )
    with time_machine.travel(NOV_5, tick=False):
        issued = invoice_finalize(invoice=draft, now=NOV_5, collect=False)

    part = invoice_payment_record(
        invoice=issued,
        amount=D("40.00"),
        received_at=datetime(2026, 11, 9, 10, tzinfo=UTC),
        method="bank_transfer",
        reference="P1",
        now=NOW,
    ).payment
    invoice_payment_record(
        invoice=issued,
        amount=D("60.00"),
        received_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
        method="bank_transfer",
        reference="P2",
        now=NOW,
    )

    def functional(key):
        return list(
            JournalEntry.objects.filter(document_key=key)
            .order_by("line")
            .values_list("date", "kind", "functional_debit", "functional_credit", "rate")
        )

    assert functional(f"payment:{issued.pk}:{part.pk}") == [
        (date(2026, 11, 9), "payments_clearing", D("36.00"), D(0), D("0.9")),
        (date(2026, 11, 9), "receivable", D(0), D("36.00"), D("0.9")),
    ]
    assert functional(f"payment:{issued.pk}") == [
        (date(2026, 11, 20), "payments_clearing", D("55.20"), D(0), D("0.92")),
        (date(2026, 11, 20), "receivable", D(0), D("54.00"), D("0.92")),
        (date(2026, 11, 20), "exchange_differences", D(0), D("1.20"), D("0.92")),
    ]


# Two payments at once, for real on PostgreSQL


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_payments_at_once_never_take_more_than_is_due(settings):
    settings.STRIPE_API_KEY = ""
    settings.BILLING_INVOICE_PDFS = False
    invoice = issued_invoice()

    def pay(index: int):
        try:
            return invoice_payment_record(
                invoice=invoice,
                amount=D("60.00"),
                received_at=datetime(2026, 11, 20, tzinfo=UTC),
                method="bank_transfer",
                reference=f"TRF-{index}",
                now=NOW,
            ).payment.reference
        except Conflict as refused:
            return refused.fields

    results = run_at_once(pay, clients=2)

    # One is recorded; the other, behind its lock, finds 40.00 due and is refused.
    recorded = [result for result in results if isinstance(result, str)]
    refused = [result for result in results if not isinstance(result, str)]
    assert len(recorded) == 1
    assert refused == [{"amount": ["more than the amount due (40.00)"]}]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (
        "finalized",
        D("60.00"),
        D("40.00"),
    )
    assert ReceivedPayment.objects.count() == 1
    assert len(payment_documents(invoice)) == 1


# The invoice's admin page


def test_the_invoice_page_records_a_part_on_the_day_typed(invoice, admin_client):
    page = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    form_url = f"/admin/invoices/invoice/{invoice.pk}/record-payment/"
    assert form_url in page

    form = admin_client.get(form_url).content.decode()
    assert 'value="100.00"' in form
    assert "Date received (UTC)" in form
    response = admin_client.post(
        form_url,
        {
            "amount": "40.00",
            "received_on": "2026-11-20",
            "method": "bank_transfer",
            "reference": "BANK-TRF-4471",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/admin/invoices/invoice/{invoice.pk}/change/"
    part = ReceivedPayment.objects.get()
    assert (part.amount, part.received_at, part.method, part.reference) == (
        D("40.00"),
        datetime(2026, 11, 20, 12, tzinfo=UTC),
        "bank_transfer",
        "BANK-TRF-4471",
    )
    invoice.refresh_from_db()
    assert invoice.amount_due == D("60.00")
    shown = admin_client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    assert "40.00 USD received for" in shown
    assert "Amount due:" in shown
    listed = admin_client.get(form_url).content.decode()
    assert "Bank transfer; Reference: BANK-TRF-4471" in listed
    assert 'value="60.00"' in listed


def test_the_invoice_page_refuses_a_payment_before_the_issue_saying_why(invoice, admin_client):
    response = admin_client.post(
        f"/admin/invoices/invoice/{invoice.pk}/record-payment/",
        {"amount": "40.00", "received_on": "2026-11-01", "method": "cash", "reference": ""},
    )

    assert response.status_code == 200
    assert (
        "The payment is dated before the invoice was issued (2 Nov 2026, 09:00 (UTC))."
        in html.unescape(response.content.decode())
    )
    nothing_recorded(invoice)


def test_a_french_user_reads_the_form_and_its_refusals_in_french(invoice, client):
    user = User.objects.create_superuser("comptable", password="x")
    user_language_set(user=user, language="fr")
    client.force_login(user)
    url = f"/admin/invoices/invoice/{invoice.pk}/record-payment/"

    form = html.unescape(client.get(url).content.decode())
    refused = " ".join(
        html.unescape(
            client.post(
                url, {"amount": "100,01", "received_on": "2026-11-20", "method": "bank_transfer"}
            ).content.decode()
        ).split()
    )

    assert "Date de réception (UTC)" in form
    assert 'value="100,00"' in form
    assert "Virement bancaire" in form
    assert "100,01 USD dépasse le montant dû (100,00 USD)." in refused
    nothing_recorded(invoice)


def test_a_day_typed_is_midday_but_not_before_the_issue_nor_after_now(invoice):
    invoice.finalized_at = datetime(2026, 11, 2, 15, tzinfo=UTC)
    morning = datetime(2026, 11, 25, 8, tzinfo=UTC)

    assert received_moment(invoice, date(2026, 11, 20), morning) == datetime(
        2026, 11, 20, 12, tzinfo=UTC
    )
    assert received_moment(invoice, date(2026, 11, 2), morning) == invoice.finalized_at
    assert received_moment(invoice, date(2026, 11, 25), morning) == morning


def test_the_issue_day_and_today_can_be_typed(invoice, admin_client):
    url = f"/admin/invoices/invoice/{invoice.pk}/record-payment/"
    for day, amount in (("2026-11-02", "10.00"), ("2026-11-25", "20.00")):
        admin_client.post(url, {"amount": amount, "received_on": day, "method": "check"})

    assert list(ReceivedPayment.objects.values_list("received_at", flat=True)) == [
        datetime(2026, 11, 2, 12, tzinfo=UTC),
        datetime(2026, 11, 25, 12, tzinfo=UTC),
    ]


def test_recording_a_payment_needs_the_mark_paid_permission(invoice):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client = Client()
    client.force_login(user)

    page = client.get(f"/admin/invoices/invoice/{invoice.pk}/change/").content.decode()
    posted = client.post(
        f"/admin/invoices/invoice/{invoice.pk}/record-payment/",
        {"amount": "40.00", "received_on": "2026-11-20", "method": "cash"},
    )

    assert "record-payment" not in page
    assert posted.status_code == 403
    nothing_recorded(invoice)


def test_the_lists_mark_paid_still_pays_the_whole_amount_due(invoice, admin_client):
    record(invoice, amount="40.00")

    admin_client.post(
        "/admin/invoices/invoice/", {"action": "mark_paid", "_selected_action": [invoice.pk]}
    )

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.paid_at) == ("paid", D("100.00"), NOW)
    assert list(ReceivedPayment.objects.values_list("amount", "method")) == [
        (D("40.00"), "bank_transfer"),
        (D("60.00"), "other"),
    ]


# With credit notes, and the payments of invoices paid before parts existed


def test_a_credit_note_after_a_part_takes_off_what_is_left_and_credits_the_rest(invoice):
    record(invoice, amount="60.00")

    note = credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice.lines.get().pk, D("50.00"))],
        reason="other",
        now=NOW,
    )

    invoice.refresh_from_db()
    assert (note.to_amount_due, note.paid_back) == (D("40.00"), D("10.00"))
    assert (invoice.amount_paid, invoice.amount_due) == (D("60.00"), D(0))
    assert credit_balance(invoice.customer) == D("10.00")
    assert record(invoice, amount="0.01").status_code == 409


def test_the_migration_gives_each_invoice_paid_before_it_its_payment(invoice):
    invoice_mark_paid(
        invoice=invoice,
        reference="wire 9",
        now=NOW,
        paid_at=datetime(2026, 11, 3, tzinfo=UTC),
    )
    ReceivedPayment.objects.all().delete()
    Invoice.objects.filter(pk=invoice.pk).update(amount_paid=0)

    received_migration.paid_invoices_received(apps, None)

    payment = ReceivedPayment.objects.get()
    assert (payment.amount, payment.method, payment.reference, payment.received_at) == (
        D("100.00"),
        "other",
        "wire 9",
        datetime(2026, 11, 3, tzinfo=UTC),
    )
    assert payment.completed_invoice
    assert Invoice.objects.get(pk=invoice.pk).amount_paid == D("100.00")


def stripe_collection(invoice: Invoice, status: str) -> Payment:
    return Payment.objects.create(
        customer=invoice.customer,
        invoice=invoice,
        amount=D("100.00"),
        currency="USD",
        status=status,
        max_attempts=3,
        next_attempt_at=NOW,
        created_at=ISSUED,
        updated_at=ISSUED,
    )


def test_a_part_asks_a_waiting_stripe_payment_for_what_is_left(invoice):
    waiting = stripe_collection(invoice, Payment.PENDING)

    assert record(invoice, amount="40.00").status_code == 201

    waiting.refresh_from_db()
    assert (waiting.status, waiting.amount) == (Payment.PENDING, D("60.00"))


def test_a_part_waits_while_a_stripe_payment_is_under_way(invoice):
    under_way = stripe_collection(invoice, Payment.PROCESSING)

    response = record(invoice, amount="40.00")

    assert response.status_code == 409
    assert "under way at Stripe" in response.json()["error"]["message"]
    nothing_recorded(invoice)
    under_way.refresh_from_db()
    assert under_way.amount == D("100.00")


def test_a_pdf_rendered_after_a_part_shows_what_was_paid_and_what_is_left(invoice):
    record(invoice, amount="40.00")
    invoice.refresh_from_db()

    totals = [(row.label, row.value) for row in invoice_pdf_context(invoice)["totals"]]

    assert totals[-2:] == [("Amount paid", "-40.00"), ("Amount due USD", "60.00")]

"""S33 (SCENARIOS.md): documents dated when they are issued, credits as credit
notes. A French seller's customer Lumière (Europe/Paris, EUR, VAT 20 %, 30 days)
subscribes on 27 Nov at 10:00 UTC from 1 Nov at 39.90 a month; at 10:05 a close
back-dated to 1 Nov closes another customer's October; at 12:00 Lumière cancels
now. Driven through the API and the close command, the clock moved by
time_machine."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.core.management import call_command

from billing.journal.models import JournalEntry
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from customers.services import customer_create
from invoices.models import CreditNote, Invoice
from plans.tax_rates import tax_rate_create
from tests.factories import api_client, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_26_NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)
NOV_27_0900 = datetime(2026, 11, 27, 9, tzinfo=UTC)
NOV_27_1000 = datetime(2026, 11, 27, 10, tzinfo=UTC)
NOV_27_1005 = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)
NOV_27_1200 = datetime(2026, 11, 27, 12, tzinfo=UTC)
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0


def french_seller() -> BillingEntity:
    return billing_entity_save(
        entity=BillingEntity(
            code="sas",
            legal_name="Usage Billing SAS",
            address_lines="5 rue de la Paix\n75002 Paris",
            country="FR",
            tax_id="FR40303265045",
            email="factures@example.fr",
            invoice_prefix="FR",
            credit_note_prefix="AV",
            functional_currency="EUR",
            timezone="Europe/Paris",
        )
    )


def lumiere():
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20.00"), country="FR")
    return customer_create(
        external_id="lumiere",
        name="Lumière SARL",
        currency="EUR",
        timezone_name="Europe/Paris",
        locale="fr",
        address={"line1": "1 quai Voltaire", "city": "Paris", "country": "FR"},
        tax_id="FR83404833048",
        payment_terms_days=30,
        tax_rates=["fr_vat"],
        billing_entity="sas",
    )


def up_to_the_close(client) -> int:
    """S33 up to the back-dated close at 10:05; Lumière's subscription id."""
    french_seller()
    published_version("studio", base_fee=D("39.90"), currency="EUR")
    published_version("octo_plan", base_fee=D("10.00"))
    # Issued before: another customer's start invoice, on 26 Nov.
    with time_machine.travel(NOV_26_NOON, tick=False):
        early = customer_create(external_id="early", name="Early Ltd", currency="USD")
        subscribe(early, "octo_plan", start=NOV_26_NOON)
        call_command("close_periods")
    # Octo's October is still open on the 27th (subscribed that morning, back-dated).
    with time_machine.travel(NOV_27_0900, tick=False):
        octo = customer_create(external_id="octo", name="Octo Inc", currency="USD")
        subscribe(octo, "octo_plan", start=OCT_1)
    lumiere()
    with time_machine.travel(NOV_27_1000, tick=False):
        created = client.post(
            "/api/v1/subscriptions",
            {"customer": "lumiere", "plan": "studio", "start": "2026-11-01T00:00:00+01:00"},
            format="json",
        )
        assert created.status_code == 201, created.content
    return created.json()["id"]


def the_story(client) -> dict:
    """Everything up to the cancel at 12:00, as S33 tells it; the cancel's answer."""
    subscription_id = up_to_the_close(client)
    with time_machine.travel(NOV_27_1005, tick=False):
        call_command("close_periods", "--as-of", "2026-11-01T00:00:00Z")
    with time_machine.travel(NOV_27_1200, tick=False):
        cancelled = client.post(
            f"/api/v1/subscriptions/{subscription_id}/cancel",
            {"effective": "immediate"},
            format="json",
        )
        assert cancelled.status_code == 200, cancelled.content
    return cancelled.json()


def test_s33_a_back_dated_close_dates_what_it_issues_today_and_leaves_other_drafts():
    client = api_client()
    up_to_the_close(client)
    draft = Invoice.objects.get(customer__external_id="lumiere")
    # The draft bills 1-30 Nov in Paris and says when it was written.
    body = client.get(f"/api/v1/invoices/{draft.pk}").json()
    assert (body["status"], body["total"], body["issued_at"]) == ("draft", "47.88", None)
    assert body["written_at"] == "2026-11-27T10:00:00Z"
    assert (body["period_start"], body["period_end"]) == (
        "2026-10-31T23:00:00Z",
        "2026-11-30T23:00:00Z",
    )

    with time_machine.travel(NOV_27_1005, tick=False):
        call_command("close_periods", "--as-of", "2026-11-01T00:00:00Z")

    issued = list(
        Invoice.objects.exclude(status=Invoice.DRAFT)
        .order_by("finalized_at", "number")
        .values_list("number", "customer__external_id", "finalized_at")
    )
    # Octo's October (its start invoice) and the close's draft (November's fee in
    # advance): numbered after the one issued on the 26th, dated 27 Nov 10:05.
    assert issued == [
        ("INV-2026-000001", "early", NOV_26_NOON),
        ("INV-2026-000002", "octo", NOV_27_1005),
        ("INV-2026-000003", "octo", NOV_27_1005),
    ]
    # Nothing prints 1 Nov: due dates and the journal follow the issue date.
    octo_invoices = Invoice.objects.filter(customer__external_id="octo")
    assert {invoice.due_at.date().isoformat() for invoice in octo_invoices} == {"2026-12-27"}
    assert set(
        JournalEntry.objects.filter(document__startswith="INV-2026-00000")
        .exclude(document="INV-2026-000001")
        .values_list("date", flat=True)
    ) == {NOV_27_1005.date()}
    # Lumière's draft bills from before 1 Nov but belongs to a period the run did
    # not close: left to its own schedule.
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.DRAFT, None)


def test_s33_a_cancellation_credits_the_start_invoice_with_a_credit_note():
    client = api_client()
    answer = the_story(client)

    start = Invoice.objects.get(customer__external_id="lumiere", reason=Invoice.START)
    # Finalized by the cancel, before the note that credits it, at the real moment.
    assert (start.number, start.finalized_at, start.total) == (
        "FR-2026-000001",
        NOV_27_1200,
        D("47.88"),
    )
    # No invoice for the cancel: it has nothing to bill (no usage); never negative.
    assert answer["invoice"] is None
    assert not Invoice.objects.filter(customer__external_id="lumiere", reason=Invoice.CANCEL)
    assert not Invoice.objects.filter(total__lt=0).exists()

    note = answer["credit_note"]
    assert (note["number"], note["invoice_number"], note["reason"]) == (
        "AV-2026-000001",
        "FR-2026-000001",
        "order_change",
    )
    assert (note["subtotal"], note["tax"], note["total"]) == ("4.60", "0.92", "5.52")
    assert note["applied_to"] == "invoice"
    assert note["to_amount_due"] == "5.52"
    assert note["issued_at"] == "2026-11-27T12:00:00Z"
    assert len(note["lines"]) == 1
    assert note["lines"][0]["amount"] == "4.60"
    # The memo in the customer's language.
    assert CreditNote.objects.get().memo == "Temps non utilisé, abonnement résilié"

    invoice = client.get(f"/api/v1/invoices/{start.pk}").json()
    assert (invoice["amount_due"], invoice["credit_notes"]) == ("42.36", [note["id"]])

    # The journal: the start invoice and the note, both dated 27 Nov, balanced.
    entries = JournalEntry.objects.filter(customer__external_id="lumiere")
    by_document = {}
    for entry in entries:
        debit, credit = by_document.get(entry.document, (D(0), D(0)))
        by_document[entry.document] = (debit + entry.debit, credit + entry.credit)
        assert entry.date.isoformat() == "2026-11-27"
    assert by_document == {
        "FR-2026-000001": (D("47.88"), D("47.88")),
        "AV-2026-000001": (D("5.52"), D("5.52")),
    }


def test_s33_a_bank_transfer_received_on_the_29th_is_dated_then():
    client = api_client()
    the_story(client)
    start = Invoice.objects.get(customer__external_id="lumiere", reason=Invoice.START)

    # when: 42.36 received on 29 Nov, recorded on 2 Dec
    with time_machine.travel(datetime(2026, 12, 2, 9, tzinfo=UTC), tick=False):
        answer = client.post(
            f"/api/v1/invoices/{start.pk}/payments",
            {
                "amount": "42.36",
                "received_at": "2026-11-29T00:00:00Z",
                "method": "bank_transfer",
                "reference": "VIR-LUMIERE-1129",
            },
            format="json",
        )
    assert answer.status_code == 201, answer.content

    # then: the invoice is paid, on the day received
    invoice = client.get(f"/api/v1/invoices/{start.pk}").json()
    assert (invoice["status"], invoice["amount_due"], invoice["paid_at"]) == (
        "paid",
        "0.00",
        "2026-11-29T00:00:00Z",
    )
    # and the journal dates the payment 29 Nov: the receivable cleared by 42.36
    payment = JournalEntry.objects.filter(
        customer__external_id="lumiere", document_type="payment"
    )
    assert {entry.date.isoformat() for entry in payment} == {"2026-11-29"}
    assert sum(e.debit for e in payment) == sum(e.credit for e in payment) == D("42.36")
    receivable = JournalEntry.objects.filter(customer__external_id="lumiere", kind="receivable")
    assert sum(e.debit - e.credit for e in receivable) == D("0.00")

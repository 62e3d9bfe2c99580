"""Which sequence and which year number a document (issue 91):

- a credit note is numbered by the seller that issued the invoice it credits
  (its credit note sequence, its name on the note), even after the customer
  moved to another seller;
- a document finalized alone (an invoice by hand, a credit note) takes its number
  from the year it is issued, not from the moment it was asked for or bills;
- a subscription's earlier drafts (its start invoice, its last close's) are
  numbered before its plan change's or its cancellation's invoice, which
  credits the fees they charged, whether that invoice is finalized alone or by
  the beat.

Numbers are read back from the documents and from their PDFs."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
import time_machine
from pypdf import PdfReader

from billing.invoicing.close import drafts_finalize, periods_close
from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_cancel, subscription_change_plan
from billing.usage.ingestion import events_ingest
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity, Customer
from customers.services import customer_create, customer_update
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.pdf import render_credit_note_pdf, render_invoice_pdf
from invoices.services import invoice_finalize
from plans.rating import LineInput
from tests.factories import (
    CustomerFactory,
    default_seller,
    overage,
    period_draft,
    prompts_meter,
    published_version,
)
from tests.factories import subscribe as subscribed

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)
DEC_9 = datetime(2026, 12, 9, tzinfo=UTC)
DEC_31_2300 = datetime(2026, 12, 31, 23, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
JAN_2 = datetime(2027, 1, 2, 10, tzinfo=UTC)
LINES = [LineInput("base_fee", "Plan (Dec 2026)", None, D(1), D("100.00"), D("100.00"))]


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


@pytest.fixture
def berlin() -> BillingEntity:
    """The default seller, numbering INV- and CN-."""
    return default_seller(
        {
            "name": "Example Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin"],
            "email": "invoices@example.de",
            "tax_id": "DE811907980",
            "country": "DE",
            "bank": {"bank_name": "Berliner Bank", "iban": "DE89370400440532013000"},
        }
    )


def paris() -> BillingEntity:
    """A second seller, numbering FR- and AV-."""
    return billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            address_lines="5 rue de la Paix\n75002 Paris",
            country="FR",
            tax_id="FR40303265045",
            email="factures@example.fr",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )


def client() -> Customer:
    return customer_create(
        external_id="client",
        name="Client SARL",
        currency="EUR",
        address={"line1": "1 Road", "postal_code": "75001", "city": "Paris", "country": "FR"},
    )


def finalized(customer, *, start=NOV_1, end=DEC_1, now=DEC_2) -> Invoice:
    invoice = invoice_finalize(invoice=period_draft(customer, LINES, start=start, end=end), now=now)
    return Invoice.objects.get(pk=invoice.pk)


def credited(invoice: Invoice, amount: str, *, now: datetime) -> CreditNote:
    line = invoice.lines.get()
    return credit_note_issue(
        invoice=invoice,
        lines=[CreditLineInput(invoice_line=line.pk, amount=D(amount))],
        reason=CreditNote.OTHER,
        now=now,
    )


# A credit note's seller.


def test_a_credit_note_is_numbered_by_the_seller_of_the_invoice_it_credits(berlin):
    # given: an invoice issued by Berlin, then the customer moved to Paris,
    # which issues its next invoice
    owner = client()
    issued = finalized(owner)
    paris()
    customer_update(customer=owner, billing_entity="example_sas")
    moved = finalized(Customer.objects.get(pk=owner.pk), start=DEC_1, end=JAN_1, now=DEC_9)
    assert (issued.number, moved.number) == ("INV-2026-000001", "FR-2026-000001")

    # when: each invoice is credited, Berlin's after the move
    with time_machine.travel(DEC_9, tick=False):
        berlin_note = credited(issued, "10.00", now=DEC_9)
        paris_note = credited(moved, "20.00", now=DEC_9)

    # then: each note in its invoice's seller's credit note sequence, in its name
    assert (berlin_note.number, paris_note.number) == ("CN-2026-000001", "AV-2026-000001")
    assert berlin_note.billing_entity == berlin
    assert berlin_note.seller_snapshot["name"] == "Example Billing GmbH"
    printed = pdf_text(render_credit_note_pdf(berlin_note))
    assert "CN-2026-000001" in printed and "INV-2026-000001" in printed
    assert "Example Billing GmbH" in printed and "Example SAS" not in printed
    assert paris_note.billing_entity.code == "example_sas"


# A document finalized alone: the year it is issued.


def test_an_invoice_finalized_alone_is_numbered_in_the_year_it_is_issued(berlin):
    # given: December's draft, finalized by hand on 2 January, asked as of
    # 31 December (the moment its period ended)
    draft = period_draft(client(), LINES, start=DEC_1, end=JAN_1)

    # when
    with time_machine.travel(JAN_2, tick=False):
        invoice = invoice_finalize(invoice=draft, now=DEC_31_2300)

    # then: numbered and dated in 2027, the year it is issued
    invoice.refresh_from_db()
    assert (invoice.number, invoice.finalized_at) == ("INV-2027-000001", JAN_2)
    printed = pdf_text(render_invoice_pdf(invoice))
    assert "INV-2027-000001" in printed and "2 Jan 2027" in printed


def test_a_credit_note_is_numbered_in_the_year_it_is_issued(berlin):
    # given: a 2026 invoice, credited on 2 January, asked as of 31 December
    invoice = finalized(client())

    # when
    with time_machine.travel(JAN_2, tick=False):
        note = credited(invoice, "10.00", now=DEC_31_2300)

    # then
    assert (note.number, note.created_at) == ("CN-2027-000001", JAN_2)
    printed = pdf_text(render_credit_note_pdf(note))
    assert "CN-2027-000001" in printed and "2 Jan 2027" in printed


# The year of a number is the seller's: its sequence turns over at the seller's
# new year, in the seller's zone, whatever zone the machine or the customer is in.

NEW_YEAR_IN_BERLIN = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 Jan there
NEW_YEAR_IN_UTC = datetime(2027, 1, 1, 5, tzinfo=UTC)  # 21:00 on 31 Dec in Los Angeles


def in_zone(entity: BillingEntity, name: str) -> BillingEntity:
    entity.timezone = name
    return billing_entity_save(entity=entity)


def test_an_invoice_issued_after_the_sellers_new_year_takes_the_new_year(berlin):
    in_zone(berlin, "Europe/Berlin")
    draft = period_draft(client(), LINES, start=DEC_1, end=JAN_1)

    with time_machine.travel(NEW_YEAR_IN_BERLIN, tick=False):
        invoice = invoice_finalize(invoice=draft, now=NEW_YEAR_IN_BERLIN)

    assert invoice.number == "INV-2027-000001"


def test_a_credit_note_issued_after_the_sellers_new_year_takes_the_new_year(berlin):
    in_zone(berlin, "Europe/Berlin")
    invoice = finalized(client())

    with time_machine.travel(NEW_YEAR_IN_BERLIN, tick=False):
        note = credited(invoice, "10.00", now=NEW_YEAR_IN_BERLIN)

    assert note.number == "CN-2027-000001"


def test_the_beat_numbers_in_each_sellers_year(berlin, settings):
    # given: a seller in Los Angeles, still on 31 December there, and the
    # default one in Berlin, already in 2027; a draft of each
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    in_zone(berlin, "Europe/Berlin")
    west = paris()
    west.timezone, west.invoice_prefix = "America/Los_Angeles", "US"
    billing_entity_save(entity=west)
    here = client()
    there = customer_create(external_id="there", name="There Inc", currency="EUR")
    customer_update(customer=there, billing_entity="example_sas")
    for customer in (here, Customer.objects.get(pk=there.pk)):
        period_draft(customer, LINES, start=DEC_1, end=JAN_1)

    # when: the beat finalizes both at 05:00 UTC on 1 January
    with time_machine.travel(NEW_YEAR_IN_UTC, tick=False):
        drafts_finalize(as_of=NEW_YEAR_IN_UTC)

    # then
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [
        "INV-2027-000001",
        "US-2026-000001",
    ]


# A subscription's earlier drafts before the invoice that credits their fees.


@pytest.fixture
def plans(db):
    """basic (usage only: 0.05 a prompt) and pro (50.00 a month). On basic no fee
    is charged in advance, so a change credits no earlier invoice (which
    billing.invoicing.unused_time would finalize first for its credit note): the
    earlier drafts are numbered first by the finalization's own rule
    (invoices.services._earlier_drafts) and by the beat's order alone."""
    prompts_meter()
    return {
        "basic": published_version("basic", base_fee=D(0), charges=[overage("prompts", 0, "0.05")]),
        "pro": published_version("pro", base_fee=D("50.00")),
    }


def prompts(customer: str, at: datetime, count: int) -> None:
    events = [
        {
            "id": f"{customer}-{at:%d}-{n}",
            "customer": customer,
            "event_name": "prompt",
            "timestamp": at.isoformat(),
        }
        for n in range(count)
    ]
    assert events_ingest(events=events, now=at).accepted == count


def in_grace(plans, settings) -> Subscription:
    """acme on basic from 1 November, 10 prompts in November: with two hours of
    grace, December's close writes its period draft (0.50), still a draft at
    01:00, beside a second customer's; acme's start invoice was finalized
    before. Then acme sends a prompt in December (what its change bills)."""
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    acme = subscribed(CustomerFactory(external_id="acme"), "basic", NOV_1)
    periods_close(as_of=NOV_1)
    settings.BILLING_INVOICE_GRACE_HOURS = 2
    other = subscribed(CustomerFactory(external_id="other"), "basic", NOV_1)
    for customer in ("acme", "other"):
        prompts(customer, datetime(2026, 11, 20, tzinfo=UTC), 10)
    periods_close(as_of=DEC_1)
    assert list(
        Invoice.objects.filter(subscription__in=[acme, other])
        .order_by("pk")
        .values_list("customer__external_id", "reason", "status", "total")
    ) == [
        ("acme", "start", "finalized", 0),
        ("other", "start", "finalized", 0),
        ("acme", "period", "draft", D("0.50")),
        ("other", "period", "draft", D("0.50")),
    ]
    prompts("acme", datetime(2026, 12, 1, 0, 30, tzinfo=UTC), 1)
    return acme


def numbered(subscription: Subscription) -> list[tuple[str, str]]:
    return list(
        Invoice.objects.filter(subscription=subscription)
        .order_by("number")
        .values_list("number", "reason")
    )


CHANGES = {
    "plan_change": lambda s, plans, at: subscription_change_plan(
        subscription=s, version=plans["pro"], effective="immediate", at=at
    ),
    "cancel": lambda s, plans, at: subscription_cancel(
        subscription=s, effective="immediate", at=at
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_finalized_alone_numbers_the_last_close_draft_first(plans, settings, change):
    acme = in_grace(plans, settings)
    at = datetime(2026, 12, 1, 1, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        _, invoice = CHANGES[change](acme, plans, at)
        assert invoice.status == Invoice.DRAFT
        assert Invoice.objects.get(subscription=acme, reason="period").status == Invoice.DRAFT

        # when: an operator finalizes the change's invoice alone
        invoice_finalize(invoice=invoice, now=at)

    # then: December's draft, whose fee it credits, is numbered first; the other
    # customer's draft, though written earlier, is left to the beat
    assert numbered(acme) == [
        ("INV-2026-000001", "start"),
        ("INV-2026-000003", "period"),
        ("INV-2026-000004", change),
    ]
    assert Invoice.objects.get(customer__external_id="other", reason="period").number is None


@pytest.mark.parametrize("change", CHANGES)
def test_the_beat_numbers_a_change_after_the_last_close_draft(plans, settings, change):
    acme = in_grace(plans, settings)
    at = datetime(2026, 12, 1, 1, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        CHANGES[change](acme, plans, at)

    # when: the beat finalizes every draft past its grace
    later = datetime(2026, 12, 1, 3, tzinfo=UTC)
    with time_machine.travel(later, tick=False):
        drafts_finalize(as_of=later)

    # then
    reasons = [reason for _, reason in numbered(acme)]
    assert reasons == ["start", "period", change]
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [
        f"INV-2026-00000{n}" for n in range(1, 6)
    ]

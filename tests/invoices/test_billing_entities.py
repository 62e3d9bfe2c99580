"""Billing entities (sellers): each customer's invoices and credit notes carry its
entity's name, VAT number and bank details, numbered in the entity's own
sequences; a document keeps the seller it was issued with; an EU business in
another member state is not invoiced by an entity without a VAT number; the
first entity comes from the BILLING_SELLER_* settings. PDFs are read back."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import BytesIO

import pytest
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from PIL import Image
from pypdf import PdfReader

from common.errors import Conflict, InvalidRequest
from customers.billing_entities import billing_entity_save, default_billing_entity
from customers.models import BillingEntity, Customer
from customers.services import customer_create, customer_update
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import Invoice, InvoiceSequence
from invoices.pdf import render_credit_note_pdf, render_invoice_pdf
from invoices.services import invoice_finalize, invoices_finalize_due
from plans.rating import LineInput
from tests.factories import api_client, default_seller, period_draft

pytestmark = pytest.mark.django_db

DEC_2 = datetime(2026, 12, 2, tzinfo=UTC)
DEC_9 = datetime(2026, 12, 9, tzinfo=UTC)
LINES = [LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("100.00"), D("100.00"))]
REFUSED = (
    "Acme GmbH is billed by Example SAS, which has no VAT number: add it on the billing "
    "entity before finalizing"
)


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False


@pytest.fixture
def gmbh() -> BillingEntity:
    """The default entity, in Berlin."""
    return default_seller(
        {
            "name": "Example Billing GmbH",
            "address": ["Hauptstraße 1", "10115 Berlin"],
            "email": "invoices@example.de",
            "tax_id": "DE811907980",
            "country": "DE",
            "bank": {
                "bank_name": "Berliner Bank",
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX",
            },
        }
    )


def sas(**changes) -> BillingEntity:
    """A second entity, in Paris, numbering FR- and AV-."""
    fields = {
        "code": "example_sas",
        "legal_name": "Example SAS",
        "address_lines": "5 rue de la Paix\n75002 Paris",
        "country": "FR",
        "tax_id": "FR40303265045",
        "registration_id": "RCS Paris 303 265 045",
        "bank_name": "Banque de Paris",
        "iban": "FR76 3000 6000 0112 3456 7890 189",
        "bic": "AGRIFRPPXXX",
        "email": "factures@example.fr",
        "invoice_prefix": "FR",
        "credit_note_prefix": "AV",
        "invoice_footer": "SAS au capital de 10 000 EUR",
    } | changes
    return billing_entity_save(entity=BillingEntity(**fields))


def customer(external_id: str, *, name: str, country: str, entity=None, tax_id: str = ""):
    return customer_create(
        external_id=external_id,
        name=name,
        currency="EUR",
        address={"line1": "1 Road", "postal_code": "10000", "city": "Town", "country": country},
        tax_id=tax_id,
        billing_entity=entity.code if entity else None,
    )


def finalized(owner, now=DEC_2) -> Invoice:
    invoice = invoice_finalize(invoice=period_draft(owner, LINES), now=now)
    return Invoice.objects.get(pk=invoice.pk)


def text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def test_customers_of_two_entities_get_their_entitys_seller_and_numbers(gmbh):
    # given a customer of each entity (the first names none: the default bills it)
    paris = sas()
    berlin_customer = customer("kunde", name="Kunde AG", country="DE")
    paris_customer = customer("client", name="Client SARL", country="FR", entity=paris)

    # when each is invoiced, the German customer twice
    first, second = finalized(berlin_customer), finalized(berlin_customer)
    french = finalized(paris_customer)

    # then each entity numbers in its own sequence, gap-free, from 1
    assert [first.number, second.number, french.number] == [
        "INV-2026-000001",
        "INV-2026-000002",
        "FR-2026-000001",
    ]
    german_pdf, french_pdf = text(render_invoice_pdf(first)), text(render_invoice_pdf(french))
    for printed in ("Example Billing GmbH", "DE811907980", "Berliner Bank"):
        assert printed in german_pdf
    assert "DE89 3704 0044 0532 0130 00" in german_pdf and "COBADEFFXXX" in german_pdf
    for printed in (
        "Example SAS",
        "FR40303265045",
        "RCS Paris 303 265 045",
        "Banque de Paris",
        "FR76 3000 6000 0112 3456 7890 189",
        "AGRIFRPPXXX",
        "SAS au capital de 10 000 EUR",
    ):
        assert printed in french_pdf
    assert "Example SAS" not in german_pdf and "FR40303265045" not in german_pdf
    assert "Example Billing GmbH" not in french_pdf and "DE811907980" not in french_pdf
    assert first.billing_entity == gmbh and french.billing_entity == paris


def test_editing_an_entity_changes_the_next_pdf_not_those_issued(gmbh):
    paris = sas()
    owner = customer("client", name="Client SARL", country="FR", entity=paris)
    issued = finalized(owner)
    before = render_invoice_pdf(issued)

    # when Finance renames the entity and moves its account
    paris.legal_name = "Example France SAS"
    paris.iban = "FR1420041010050500013M02606"
    billing_entity_save(entity=paris)
    later = finalized(owner, now=DEC_9)
    note = credit_note_issue(
        invoice=issued,
        lines=[CreditLineInput(issued.lines.get().pk, D("10.00"))],
        reason="other",
        memo="",
        now=DEC_9,
    )

    # then the invoice issued before prints the seller it was issued with (its PDF
    # now also lists the credit note)
    again = text(render_invoice_pdf(Invoice.objects.get(pk=issued.pk)))
    assert "Example SAS" in text(before) and "FR76 3000 6000 0112 3456 7890 189" in text(before)
    assert "Example SAS" in again and "FR76 3000 6000 0112 3456 7890 189" in again
    assert "Example France SAS" not in again and "FR14 2004 1010 0505 0001 3M02 606" not in again
    # and the documents issued since carry the entity as it is now
    later_pdf = text(render_invoice_pdf(later))
    assert "Example France SAS" in later_pdf and "FR14 2004 1010 0505 0001 3M02 606" in later_pdf
    assert note.number == "AV-2026-000001"
    assert "Example France SAS" in text(render_credit_note_pdf(note))


def test_an_eu_business_abroad_is_not_invoiced_by_an_entity_without_a_vat_number(gmbh):
    # given Example SAS (France) without a VAT number, and Acme GmbH (Germany) with one
    paris = sas(tax_id="")
    owner = customer("acme", name="Acme GmbH", country="DE", entity=paris, tax_id="DE811907980")
    draft = period_draft(owner, LINES)

    # when it is finalized, alone or by the run that finalizes due drafts
    with pytest.raises(Conflict) as refused:
        invoice_finalize(invoice=draft, now=DEC_2)
    assert invoices_finalize_due(cutoff=DEC_2, now=DEC_2) == 0

    # then it says why, and nothing changed: a draft, no number taken, no seller
    assert refused.value.message == REFUSED
    assert refused.value.status_code == 409
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.seller_snapshot) == (Invoice.DRAFT, None, {})
    assert draft.billing_entity_id is None
    assert not InvoiceSequence.objects.filter(name="FR-2026").exclude(next_number=1).exists()

    # and once Finance adds the VAT number, it is finalized, numbered from 1
    paris.tax_id = "FR40303265045"
    billing_entity_save(entity=paris)
    assert invoices_finalize_due(cutoff=DEC_2, now=DEC_2) == 1
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.FINALIZED, "FR-2026-000001")


@pytest.mark.parametrize(
    ("country", "tax_id"),
    [("FR", "FR83404833048"), ("DE", ""), ("US", "US-123")],
    ids=["same-country business", "EU consumer", "business outside the EU"],
)
def test_other_customers_are_invoiced_by_an_entity_without_a_vat_number(gmbh, country, tax_id):
    paris = sas(tax_id="")
    owner = customer("acme", name="Acme", country=country, entity=paris, tax_id=tax_id)

    assert finalized(owner).number == "FR-2026-000001"


def test_the_api_answers_the_vat_rule_in_its_error_envelope_and_changes_nothing(gmbh):
    paris = sas(tax_id="")
    customer("acme", name="Acme GmbH", country="DE", entity=paris, tax_id="DE811907980")

    response = api_client("admin").post(
        "/api/v1/customers/acme/wallets/money",
        {"amount": "100.00", "currency": "EUR"},
        format="json",
    )

    assert response.status_code == 409, response.content
    assert response.json()["error"]["type"] == "conflict"
    assert response.json()["error"]["message"] == REFUSED
    assert not Invoice.objects.exists()


def test_the_customer_api_takes_and_shows_the_billing_entity_by_code(gmbh):
    sas()
    api = api_client("admin")
    body = {"external_id": "client", "name": "Client SARL", "currency": "EUR"}

    created = api.post("/api/v1/customers", body | {"billing_entity": "example_sas"}, "json")
    unknown = api.post("/api/v1/customers", body | {"billing_entity": "nope"}, "json")
    default = api.post("/api/v1/customers", body | {"external_id": "other"}, "json")

    assert created.status_code == 201, created.content
    assert created.json()["billing_entity"] == "example_sas"
    assert default.json()["billing_entity"] is None
    assert unknown.status_code == 400
    assert "unknown billing entity 'nope'" in unknown.json()["error"]["fields"]["billing_entity"][0]
    assert (
        not Customer.objects.filter(external_id="client")
        .exclude(billing_entity__code="example_sas")
        .exists()
    )
    # PATCH: back to the default, and the other fields untouched
    patched = api.patch("/api/v1/customers/client", {"billing_entity": None}, "json")
    assert patched.status_code == 200, patched.content
    assert (patched.json()["billing_entity"], patched.json()["name"]) == (None, "Client SARL")
    untouched = api.patch("/api/v1/customers/other", {"name": "Other"}, "json")
    assert untouched.json()["billing_entity"] is None


def test_exactly_one_entity_is_the_default(gmbh):
    # a second default is refused by the database
    with pytest.raises(IntegrityError), transaction.atomic():
        BillingEntity.objects.create(
            code="x",
            legal_name="X",
            country="FR",
            invoice_prefix="X",
            credit_note_prefix="XC",
            is_default=True,
        )
    # made the default through the service, it takes over
    paris = sas(is_default=True)
    gmbh.refresh_from_db()
    assert not gmbh.is_default and default_billing_entity() == paris
    # and the default cannot just stop being it
    paris.is_default = False
    with pytest.raises(Conflict):
        billing_entity_save(entity=paris)
    assert BillingEntity.objects.get(is_default=True) == paris


def test_a_prefix_numbers_one_entitys_documents_only(gmbh):
    with pytest.raises(InvalidRequest) as taken:
        sas(invoice_prefix="INV")
    with pytest.raises(InvalidRequest) as crossed:
        sas(invoice_prefix="CN")
    with pytest.raises(InvalidRequest) as malformed:
        sas(invoice_prefix="fr-1")

    assert "INV already numbers the documents of Example Billing GmbH" in taken.value.message
    assert "CN already numbers" in crossed.value.message
    assert "capital letters or digits" in malformed.value.message
    assert BillingEntity.objects.count() == 1


def test_a_customer_moved_to_another_entity_keeps_its_issued_invoices_seller(gmbh):
    paris = sas()
    owner = customer("client", name="Client SARL", country="FR")
    issued = finalized(owner)

    customer_update(customer=owner, billing_entity="example_sas")
    moved = finalized(Customer.objects.get(pk=owner.pk), now=DEC_9)

    assert issued.number.startswith("INV-") and moved.number == "FR-2026-000001"
    assert "Example Billing GmbH" in text(render_invoice_pdf(issued))
    assert "Example SAS" in text(render_invoice_pdf(moved))
    assert moved.billing_entity == paris


@pytest.mark.django_db(transaction=True)
def test_the_migration_seeds_the_first_entity_from_the_settings_and_numbering_goes_on(settings):
    # given a database before billing entities, with an invoice numbered INV-2026-000007
    settings.BILLING_SELLER = {
        "name": "Seeded Ltd",
        "address": ["1 High Street", "London EC1A 1AA"],
        "email": "ar@seeded.test",
        "tax_id": "GB123456789",
        "country": "GB",
        "bank": {"bank_name": "Bank of Seeds", "iban": "GB29NWBK60161331926819", "bic": ""},
        "payment_instructions": "Pay by transfer.",
    }
    before = [("customers", "0006_tax_rates"), ("invoices", "0014_invoice_breakdown")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    OldCustomer = apps.get_model("customers", "Customer")
    OldInvoice = apps.get_model("invoices", "Invoice")
    apps.get_model("invoices", "InvoiceSequence").objects.create(name="INV-2026", next_number=8)
    old = OldCustomer.objects.create(external_id="acme", name="Acme", currency="EUR")
    OldInvoice.objects.create(
        customer=old,
        reason="period",
        status="finalized",
        number="INV-2026-000007",
        currency="EUR",
        period_start=DEC_2,
        period_end=DEC_9,
        created_at=DEC_9,
        finalized_at=DEC_9,
    )

    # when the migrations run
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then one entity, the default, says what the settings said; no customer names it
    entity = BillingEntity.objects.get()
    assert (entity.legal_name, entity.address, entity.country, entity.tax_id) == (
        "Seeded Ltd",
        ["1 High Street", "London EC1A 1AA"],
        "GB",
        "GB123456789",
    )
    assert (entity.iban, entity.email, entity.payment_instructions) == (
        "GB29NWBK60161331926819",
        "ar@seeded.test",
        "Pay by transfer.",
    )
    assert entity.is_default and entity.history.count() == 1
    assert Customer.objects.get().billing_entity is None
    # the invoice issued before keeps the seller as it was, whatever the entity becomes
    issued = Invoice.objects.get()
    assert issued.seller_snapshot["name"] == "Seeded Ltd"
    # and the next invoice goes on counting in INV-2026
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    entity.legal_name = "Seeded Holdings Ltd"
    billing_entity_save(entity=entity)
    nxt = finalized(Customer.objects.get(), now=DEC_9)
    assert nxt.number == "INV-2026-000008"
    assert "Seeded Holdings Ltd" in text(render_invoice_pdf(nxt))
    assert "Seeded Holdings Ltd" not in text(render_invoice_pdf(issued))


def test_the_entitys_logo_is_printed_from_the_copy_the_invoice_keeps(gmbh):
    # given a logo uploaded on the entity (a 40x20 red PNG)
    image = BytesIO()
    Image.new("RGB", (40, 20), (200, 0, 0)).save(image, format="PNG")
    gmbh.logo.save("logo.png", ContentFile(image.getvalue()), save=False)
    billing_entity_save(entity=gmbh)
    issued = finalized(customer("kunde", name="Kunde AG", country="DE"))

    # when the entity's logo is replaced, then removed
    gmbh.logo.save("other.png", ContentFile(image.getvalue()), save=False)
    gmbh.logo = ""
    billing_entity_save(entity=gmbh)

    # then the issued invoice still prints the logo it was issued with, 40x20
    assert issued.seller_snapshot["logo"].startswith("billing_entities/logo")
    reader = PdfReader(BytesIO(render_invoice_pdf(issued)))
    assert [(i.image.width, i.image.height) for i in reader.pages[0].images] == [(40, 20)]
    later = finalized(customer("kunde2", name="Kunde 2 AG", country="DE"), now=DEC_9)
    assert len(PdfReader(BytesIO(render_invoice_pdf(later))).pages[0].images) == 0


def test_the_invoice_and_credit_note_pages_name_their_seller(gmbh, admin_client):
    paris = sas()
    owner = customer("client", name="Client SARL", country="FR", entity=paris)
    issued = finalized(owner)
    draft = period_draft(owner, LINES)
    note = credit_note_issue(
        invoice=issued,
        lines=[CreditLineInput(issued.lines.get().pk, D("10.00"))],
        reason="other",
        memo="",
        now=DEC_9,
    )
    # the entity is renamed after the invoice and the note were issued
    paris.legal_name = "Example France SAS"
    paris.save()

    def seller(url: str) -> str:
        page = admin_client.get(url)
        assert page.status_code == 200
        fields = page.context["adminform"]
        return next(
            line.contents()
            for fieldset in fields
            for row in fieldset
            for line in row
            if line.field["name"] == "seller_display"
        )

    assert seller(f"/admin/invoices/invoice/{issued.pk}/change/") == "Example SAS"
    assert seller(f"/admin/invoices/invoice/{draft.pk}/change/") == (
        "Example France SAS (when issued: the customer&#x27;s billing entity now)"
    )
    assert seller(f"/admin/invoices/creditnote/{note.pk}/change/") == "Example SAS"


def test_the_invoice_list_filters_by_billing_entity_drafts_by_their_customers_now(
    gmbh, admin_client
):
    paris = sas()
    german = customer("kunde", name="Kunde AG", country="DE")  # names none: the default
    french = customer("client", name="Client SARL", country="FR", entity=paris)
    german_issued, french_issued = finalized(german), finalized(french)
    german_draft, french_draft = period_draft(german, LINES), period_draft(french, LINES)
    # a customer moved to Paris keeps its issued invoice under Berlin
    customer_update(customer=german, billing_entity="example_sas")
    moved_draft = Invoice.objects.get(pk=german_draft.pk)

    def listed(code: str) -> set[int]:
        page = admin_client.get("/admin/invoices/invoice/", {"billing_entity": code})
        assert page.status_code == 200
        return {invoice.pk for invoice in page.context["cl"].result_list}

    assert listed(gmbh.code) == {german_issued.pk}
    assert listed("example_sas") == {french_issued.pk, french_draft.pk, moved_draft.pk}
    page = admin_client.get("/admin/invoices/invoice/").content.decode()
    assert "By billing entity" in page and "Example SAS" in page

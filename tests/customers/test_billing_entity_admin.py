"""The billing entities' admin pages (add, change, history), a customer's
entity picked on its page, and the invoice admin's Finalize saying why the
EU VAT-number rule refuses it."""

from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity, Customer
from customers.services import customer_create
from invoices.models import Invoice
from plans.rating import LineInput
from tests.factories import period_draft

pytestmark = pytest.mark.django_db

ADD = "/admin/customers/billingentity/add/"


def change_url(entity: BillingEntity) -> str:
    return f"/admin/customers/billingentity/{entity.pk}/change/"


def form(**changes) -> dict:
    return {
        "code": "example_sas",
        "legal_name": "Example SAS",
        "address_lines": "5 rue de la Paix\r\n75002 Paris",
        "country": "FR",
        "tax_id": "FR40303265045",
        "registration_id": "RCS Paris 303 265 045",
        "bank_name": "Banque de Paris",
        "iban": "FR76 3000 6000 0112 3456 7890 189",
        "bic": "agrifrppxxx",
        "email": "factures@example.fr",
        "sender_email": "",
        "payment_instructions": "",
        "invoice_footer": "",
        "invoice_prefix": "fr",
        "credit_note_prefix": "AV",
        "functional_currency": "EUR",
        "timezone": "Europe/Paris",
    } | changes


@pytest.fixture
def default() -> BillingEntity:
    return BillingEntity.objects.get(is_default=True)


def test_the_add_page_creates_an_entity_with_its_history(admin_client, default):
    assert admin_client.get(ADD).status_code == 200

    response = admin_client.post(ADD, form())

    assert response.status_code == 302, response.context["adminform"].form.errors
    entity = BillingEntity.objects.get(code="example_sas")
    assert (entity.iban, entity.bic, entity.invoice_prefix) == (
        "FR7630006000011234567890189",
        "AGRIFRPPXXX",
        "FR",
    )
    assert entity.address == ["5 rue de la Paix", "75002 Paris"]
    assert not entity.is_default
    assert entity.history.get().history_user.username == "admin"


def test_the_change_page_edits_it_and_making_it_the_default_takes_over(admin_client, default):
    entity = billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )
    page = admin_client.get(change_url(entity))
    assert page.status_code == 200
    assert "already issued keep the seller they were issued with" in page.content.decode()

    response = admin_client.post(
        change_url(entity), form(legal_name="Example France SAS", is_default="on")
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    entity.refresh_from_db()
    default.refresh_from_db()
    assert entity.legal_name == "Example France SAS" and entity.is_default
    assert not default.is_default
    history = admin_client.get(f"/admin/customers/billingentity/{entity.pk}/history/")
    assert history.status_code == 200
    assert entity.history.count() == 2
    assert default.history.filter(is_default=False).exists()


def test_the_page_refuses_a_taken_prefix_and_unsetting_the_default(admin_client, default):
    taken = admin_client.post(ADD, form(invoice_prefix="INV"))
    unset = admin_client.post(
        change_url(default),
        form(
            code=default.code,
            legal_name=default.legal_name,
            invoice_prefix="INV",
            credit_note_prefix="CN",
        ),
    )

    assert taken.status_code == 200
    assert "INV already numbers the documents of" in taken.content.decode()
    assert unset.status_code == 200
    assert "one billing entity is always the default" in unset.content.decode()
    assert BillingEntity.objects.count() == 1
    default.refresh_from_db()
    assert default.is_default and default.code == "default"


def test_the_default_entity_offers_no_delete(admin_client, default):
    page = admin_client.get(change_url(default)).content.decode()

    assert "deletelink" not in page
    refused = admin_client.post(f"/admin/customers/billingentity/{default.pk}/delete/")
    assert refused.status_code == 409
    assert "is the default billing entity: make another one the default first" in (
        refused.content.decode()
    )
    assert BillingEntity.objects.filter(pk=default.pk).exists()


def test_an_entity_that_bills_customers_offers_no_delete_and_says_why(admin_client, default):
    # given an entity with one customer, and one with none
    entity = billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )
    unused = billing_entity_save(
        entity=BillingEntity(
            code="spare",
            legal_name="Spare Ltd",
            country="GB",
            invoice_prefix="SP",
            credit_note_prefix="SPC",
        )
    )
    customer_create(external_id="acme", name="Acme", currency="EUR", billing_entity="example_sas")

    # when the superuser opens its page and its delete URL
    page = admin_client.get(change_url(entity)).content.decode()
    refused = admin_client.post(f"/admin/customers/billingentity/{entity.pk}/delete/")

    # then no Delete button, a page in words, and nothing deleted
    assert "deletelink" not in page
    assert refused.status_code == 409
    assert "Example SAS has 1 customer: it stays, for them" in refused.content.decode()
    assert BillingEntity.objects.filter(pk=entity.pk).exists()
    # while the unused one still offers Delete
    assert "deletelink" in admin_client.get(change_url(unused)).content.decode()


def test_the_customer_page_picks_its_entity(admin_client, default):
    entity = billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )
    acme = customer_create(external_id="acme", name="Acme", currency="EUR")
    url = f"/admin/customers/customer/{acme.pk}/change/"
    page = admin_client.get(url)
    assert "Billed by" in page.content.decode()

    response = admin_client.post(
        url,
        {
            "name": "Acme",
            "email": "",
            "timezone": "UTC",
            "spend_limit_mode": "hard",
            "locale": "en",
            "tax_exempt": "none",
            "billing_entity": entity.pk,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Customer.objects.get(pk=acme.pk).billing_entity == entity


def test_finalize_in_the_admin_says_why_the_vat_rule_refuses(admin_client, settings):
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    paris = billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )
    acme = customer_create(
        external_id="acme",
        name="Acme GmbH",
        currency="EUR",
        address={"city": "Berlin", "country": "DE"},
        tax_id="DE811907980",
        billing_entity=paris.code,
    )
    line = LineInput("base_fee", "Base", None, D(1), D("10.00"), D("10.00"))
    draft = period_draft(acme, [line])

    response = admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "finalize", "_selected_action": [draft.pk]},
        follow=True,
    )

    assert (
        "Acme GmbH is billed by Example SAS, which has no VAT number: add it on the billing "
        "entity before finalizing" in response.content.decode()
    )
    assert Invoice.objects.get(pk=draft.pk).status == Invoice.DRAFT


def test_finance_edits_entities_and_operations_only_sees_them(client):
    call_command("setup_roles", verbosity=0)
    finance = User.objects.create_user("finance", password="x", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    ops = User.objects.create_user("ops", password="x", is_staff=True)
    ops.groups.add(Group.objects.get(name="Operations"))

    client.force_login(finance)
    assert client.get(ADD).status_code == 200
    client.force_login(ops)
    assert client.get(ADD).status_code == 403
    assert client.get("/admin/customers/billingentity/").status_code == 200


def test_the_entity_and_customer_pages_say_whose_invoices_wait_for_its_vat_number(admin_client):
    paris = billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    )

    def client_of_paris(external_id: str, name: str, country: str, tax_id: str) -> Customer:
        return customer_create(
            external_id=external_id,
            name=name,
            currency="EUR",
            address={"city": "Town", "country": country},
            tax_id=tax_id,
            billing_entity=paris.code,
        )

    acme = client_of_paris("acme", "Acme GmbH", "DE", "DE811907980")
    client_of_paris("kunde", "Kunde AG", "AT", "ATU13585627")
    french = client_of_paris("client", "Client SARL", "FR", "FR40303265045")  # same country
    client_of_paris("person", "Jo Person", "DE", "")  # not a business

    def warnings(url: str) -> list[str]:
        page = admin_client.get(url)
        assert page.status_code == 200
        return [str(message) for message in page.context["messages"]]

    assert warnings(change_url(paris)) == [
        "2 customers of Example SAS are EU businesses in another country (Acme GmbH, "
        "Kunde AG): their invoices wait for this entity's VAT number (drafts are not "
        "finalized and threshold invoices are not written). Add the VAT number under Tax "
        "and registration."
    ]
    assert warnings(f"/admin/customers/customer/{acme.pk}/change/") == [
        "Acme GmbH is an EU business in another country than its billing entity, Example "
        "SAS, which has no VAT number: its invoices wait for it (drafts are not finalized "
        "and threshold invoices are not written). Add the VAT number on the billing "
        "entity's page."
    ]
    assert warnings(f"/admin/customers/customer/{french.pk}/change/") == []

    # once the entity has its VAT number, nothing waits
    paris.tax_id = "FR40303265045"
    paris.save()
    assert warnings(change_url(paris)) == []
    assert warnings(f"/admin/customers/customer/{acme.pk}/change/") == []

"""The customer form of the admin in ops' words: currency and country picked from
lists, the address in its own fields (stored with the API's keys), alert
thresholds and invoice recipients typed as comma-separated lists, each refusal
on its field."""

from decimal import Decimal as D

import pytest

from common.admin_fields import country_choices, currency_choices
from customers.admin.customer_form import ADDRESS_FIELDS, CustomerForm
from customers.models import Customer
from plans.validation import ADDRESS_KEYS
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/customers/customer/add/"


def customer_form(**changes) -> dict:
    """The add form as ops fill it in."""
    return {
        "external_id": "acme",
        "name": "Acme Inc",
        "email": "",
        "currency": "USD",
        "timezone": "UTC",
        "address_line1": "",
        "address_line2": "",
        "address_city": "",
        "address_postal_code": "",
        "address_state": "",
        "address_country": "",
        "tax_id": "",
        "spend_limit": "",
        "spend_limit_mode": "hard",
        "alert_thresholds": "",
        "payment_terms_days": "",
        "locale": "en",
        "tax_exempt": "none",
        "invoice_emails": "",
        **changes,
    }


HARBOUR_ROAD = {
    "address_line1": "42 Harbour Road",
    "address_line2": "",
    "address_city": "Seattle",
    "address_postal_code": "98101",
    "address_state": "WA",
    "address_country": "US",
}


def test_the_form_has_a_field_for_each_key_of_the_apis_address():
    assert set(ADDRESS_FIELDS) == set(ADDRESS_KEYS)


def test_currencies_offer_usd_eur_gbp_first_then_the_rest_by_code():
    choices = currency_choices()

    assert choices[:4] == [
        ("USD", "USD — US Dollar"),
        ("EUR", "EUR — Euro"),
        ("GBP", "GBP — British Pound"),
        ("AED", "AED — United Arab Emirates Dirham"),
    ]
    codes = [code for code, _ in choices]
    assert codes[3:] == sorted(codes[3:])
    assert "JPY" in codes and "CHF" in codes
    # Historic currencies are not offered; a stored one is kept.
    assert "FRF" not in codes
    assert currency_choices(current="FRF")[-1] == ("FRF", "FRF — French Franc")


def test_countries_are_offered_by_name():
    choices = dict(country_choices())

    assert (choices["DE"], choices["US"], choices["GB"]) == (
        "Germany",
        "United States",
        "United Kingdom",
    )
    names = [name for _, name in country_choices()]
    assert names == sorted(names, key=str.casefold)
    assert len(names) == 249


def test_a_structured_address_is_saved_with_the_apis_keys(admin_client):
    response = admin_client.post(ADD_URL, customer_form(**HARBOUR_ROAD))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Customer.objects.get().address == {
        "line1": "42 Harbour Road",
        "city": "Seattle",
        "postal_code": "98101",
        "state": "WA",
        "country": "US",
    }


def test_a_stored_address_loads_into_its_fields(admin_client):
    customer = CustomerFactory(
        external_id="acme",
        name="Acme Inc",
        address={
            "line1": "3 Rue de la Paix",
            "line2": None,
            "city": "Paris",
            "postal_code": "75002",
            "country": "FR",
        },
    )

    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")

    form = response.context["adminform"].form
    assert {name: form[name].value() for name, _ in ADDRESS_FIELDS.values()} == {
        "address_line1": "3 Rue de la Paix",
        "address_line2": "",
        "address_city": "Paris",
        "address_postal_code": "75002",
        "address_state": "",
        "address_country": "FR",
    }
    html = response.content.decode()
    assert '<option value="FR" selected>France</option>' in html
    # No JSON box: the address is in its fields only.
    assert 'name="address"' not in html


def test_an_unchanged_address_is_kept_as_the_api_wrote_it(admin_client):
    stored = {"line1": "3 Rue de la Paix", "line2": None, "city": "Paris", "country": "FR"}
    customer = CustomerFactory(external_id="acme", name="Acme Inc", address=stored)
    form = customer_form(
        address_line1="3 Rue de la Paix", address_city="Paris", address_country="FR"
    )

    response = admin_client.post(f"/admin/customers/customer/{customer.pk}/change/", form)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.address == stored


def test_an_unknown_country_is_refused_on_its_field(admin_client):
    response = admin_client.post(
        ADD_URL, customer_form(**{**HARBOUR_ROAD, "address_country": "XX"})
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "address_country": ["Pick a country from the list."]
    }
    assert not Customer.objects.exists()


def test_a_stored_country_that_is_none_is_shown_and_refused_on_its_field(admin_client):
    customer = CustomerFactory(external_id="acme", name="Acme Inc")
    Customer.objects.filter(pk=customer.pk).update(address={"country": "XX"})
    url = f"/admin/customers/customer/{customer.pk}/change/"

    assert '<option value="XX" selected>XX</option>' in admin_client.get(url).content.decode()
    response = admin_client.post(url, customer_form(address_country="XX", name="Renamed"))

    assert response.context["adminform"].form.errors == {
        "address_country": ["unknown country 'XX'; use an ISO 3166-1 code such as 'FR'"]
    }
    customer.refresh_from_db()
    assert customer.name == "Acme Inc"


def test_the_currency_is_picked_from_the_list(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    assert '<option value="EUR">EUR — Euro</option>' in html

    response = admin_client.post(ADD_URL, customer_form(currency="EUR"))
    assert response.status_code == 302
    assert Customer.objects.get().currency == "EUR"

    refused = admin_client.post(ADD_URL, customer_form(external_id="other", currency="ZZZ"))
    assert list(refused.context["adminform"].form.errors) == ["currency"]


def test_the_currency_of_a_saved_customer_is_shown_in_words(admin_client):
    customer = CustomerFactory(external_id="acme", name="Acme Inc", currency="EUR")

    html = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()

    assert "EUR — Euro" in html
    assert 'name="currency"' not in html


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("50, 80, 100", [50, 80, 100]),
        ("50,80 ,100%", [50, 80, 100]),
        ("12.5; 90", [12.5, 90]),
        ("", []),
    ],
)
def test_alert_thresholds_are_typed_as_numbers_separated_by_commas(admin_client, typed, stored):
    response = admin_client.post(ADD_URL, customer_form(alert_thresholds=typed))

    assert response.status_code == 302
    assert Customer.objects.get().alert_thresholds == stored


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("50, eighty", "Enter numbers separated by commas, e.g. 50, 80, 100"),
        ("50 80", "Enter numbers separated by commas, e.g. 50, 80, 100"),
        ("0, 50", "0 must be above 0 and at most 1000"),
        ("50, 50", "50 is listed twice"),
    ],
)
def test_wrong_alert_thresholds_are_refused_on_their_field(admin_client, typed, error):
    response = admin_client.post(ADD_URL, customer_form(alert_thresholds=typed))

    assert response.context["adminform"].form.errors == {"alert_thresholds": [error]}
    assert not Customer.objects.exists()


def test_thresholds_and_recipients_load_as_text(admin_client):
    customer = CustomerFactory(
        external_id="acme",
        name="Acme Inc",
        alert_thresholds=[D(50), D("75.5"), D(100)],
        invoice_emails=["ap@acme.test", "cfo@acme.test"],
    )

    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")

    form = response.context["adminform"].form
    assert form["alert_thresholds"].value() == "50, 75.5, 100"
    assert form["invoice_emails"].value() == "ap@acme.test, cfo@acme.test"
    assert "Percentages of a plan's included units" in form.fields["alert_thresholds"].help_text
    assert form.fields["alert_thresholds"].help_text.endswith("Empty: 50, 75, 90, 100.")


def test_invoice_recipients_are_typed_separated_by_commas(admin_client):
    response = admin_client.post(
        ADD_URL, customer_form(invoice_emails="ap@acme.test, cfo@acme.test")
    )
    assert response.status_code == 302
    assert Customer.objects.get().invoice_emails == ["ap@acme.test", "cfo@acme.test"]

    refused = admin_client.post(
        ADD_URL, customer_form(external_id="other", invoice_emails="ap@acme.test, nobody")
    )
    assert refused.context["adminform"].form.errors == {
        "invoice_emails": ["'nobody' is not an email address"]
    }


def test_the_empty_form_shows_no_raw_values():
    form = CustomerForm()

    assert "value=" not in str(form["alert_thresholds"])
    assert "value=" not in str(form["invoice_emails"])
    assert form.fields["currency"].choices[0] == ("", "Pick a currency")

"""Amounts and quantities typed in the admin, read in the user's convention
(common.typed_numbers) by the one admin field (ExactDecimalField), shown back
in it, and the admin user's language (config.user_language)."""

import re
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from common.admin_forms import ExactDecimalField, money_text
from common.money import DecimalRefused
from common.typed_numbers import typed_number_read
from config.models import UserLanguage
from config.user_language import user_language_set
from customers.models import Customer
from plans.models import PlanVersion
from tests.factories import PlanFactory

NNBSP = "\N{NARROW NO-BREAK SPACE}"
NBSP = "\N{NO-BREAK SPACE}"

READ = [
    # (language, typed, read)
    ("en", "1.50", D("1.50")),
    ("en", "1,234.50", D("1234.50")),
    ("en", "1,234,567.5", D("1234567.5")),
    ("en", "1234.5", D("1234.5")),
    ("en", "1 234.50", D("1234.50")),
    ("en", "1,500", D("1500")),  # well formed in English: fifteen hundred
    ("en", "1.500", D("1.500")),
    ("en", "1.000.000", D("1000000")),  # both readings agree
    ("en", ".5", D("0.5")),
    ("en", "-3.25", D("-3.25")),
    ("en", "  42  ", D("42")),
    ("en", "0", D("0")),
    ("fr", "1,50", D("1.50")),
    ("fr", "1.234,50", D("1234.50")),
    ("fr", "1 234,50", D("1234.50")),
    ("fr", f"1{NNBSP}234,50", D("1234.50")),
    ("fr", f"1{NBSP}234{NBSP}567,5", D("1234567.5")),
    ("fr", "0,50", D("0.50")),
    ("fr", ",5", D("0.5")),
    ("fr", "1.500", D("1500")),
    ("fr", "1,500", D("1.500")),
    ("de", "1,50", D("1.50")),
    ("de", "1.234,50", D("1234.50")),
    ("de", "1 234,50", D("1234.50")),
    ("de", f"1{NNBSP}234,50", D("1234.50")),
    ("de", "1.500", D("1500")),  # well formed in German: fifteen hundred
    ("de", "-1,50", D("-1.50")),
    ("de", "\N{MINUS SIGN}2,5", D("-2.5")),
    ("de", "0,0000025", D("0.0000025")),
    ("de-AT", "1,50", D("1.50")),
    # Spanish as a Spanish customer types it in the portal (customers.limits_form)
    ("es", "1.234,50", D("1234.50")),
    ("es", "1 234,50", D("1234.50")),
    ("es", "1,5", D("1.5")),
    ("ja", "1,234.50", D("1234.50")),  # any other language: English's convention
]


@pytest.mark.parametrize(("language", "typed", "read"), READ)
def test_a_number_is_read_in_the_users_convention(language, typed, read):
    number = typed_number_read(typed, language=language)

    assert number == read
    assert str(number) == str(read)  # the digits typed, 1.50 not 1.5


REFUSED = [
    # (language, typed, code, message)
    ("en", "1,50", "ambiguous", "“1,50” can be read two ways: did you mean 1.50 or 150?"),
    ("en", "0,50", "ambiguous", "“0,50” can be read two ways: did you mean 0.50 or 50?"),
    (
        "en",
        "1.234,50",
        "ambiguous",
        "“1.234,50” can be read two ways: did you mean 1,234.50 or 123,450?",
    ),
    ("de", "1.50", "ambiguous", "“1.50” can be read two ways: did you mean 1,50 or 150?"),
    ("de", "20.5", "ambiguous", "“20.5” can be read two ways: did you mean 20,5 or 205?"),
    (
        "de",
        "1,234.50",
        "ambiguous",
        "“1,234.50” can be read two ways: did you mean 1.234,50 or 123.450?",
    ),
    (
        "fr",
        "1 234.50",
        "ambiguous",
        f"“1 234.50” can be read two ways: did you mean 1{NBSP}234,50 or 123{NBSP}450?",
    ),
    ("en", "$10", "currency", "Type the amount without its currency sign."),
    ("en", "10 €", "currency", "Type the amount without its currency sign."),
    ("de", "10 €", "currency", "Type the amount without its currency sign."),
    ("fr", "EUR 10", "currency", "Type the amount without its currency sign."),
    ("en", "10 usd", "currency", "Type the amount without its currency sign."),
    ("en", "£1.50", "currency", "Type the amount without its currency sign."),
    ("en", "NaN", "non_finite", "Type a number: “NaN” is not one."),
    ("de", "-Infinity", "non_finite", "Type a number: “-Infinity” is not one."),
    ("en", "inf", "non_finite", "Type a number: “inf” is not one."),
    ("en", "1e3", "exponent", "Type the number in full, without an exponent (“1e3”)."),
    ("de", "2,5E-3", "exponent", "Type the number in full, without an exponent (“2,5E-3”)."),
    ("en", "lots", "invalid", "Type a number like 1,234.50."),
    ("de", "12,5,3", "invalid", "Type a number like 1.234,50."),
    ("fr", "1,2,3", "invalid", f"Type a number like 1{NBSP}234,50."),
    ("en", "1,23,456", "invalid", "Type a number like 1,234.50."),
    ("en", "+5", "invalid", "Type a number like 1,234.50."),
    ("en", "5.", "invalid", "Type a number like 1,234.50."),
    ("en", "1_000", "invalid", "Type a number like 1,234.50."),
    ("en", "١٢", "invalid", "Type a number like 1,234.50."),  # other scripts' digits
    ("en", "1" * 65, "too_long", "Type at most 64 characters."),
]


@pytest.mark.parametrize(("language", "typed", "code", "message"), REFUSED)
def test_a_number_that_is_not_one_way_is_refused_saying_what_to_type(
    language, typed, code, message
):
    with pytest.raises(DecimalRefused) as refused:
        typed_number_read(typed, language=language)

    assert (refused.value.code, str(refused.value)) == (code, message)


def test_a_refusal_is_in_the_users_own_words():
    with translation.override("de"), pytest.raises(DecimalRefused) as refused:
        typed_number_read("1.50", language="de")

    assert str(refused.value) == "„1.50“ lässt sich zweifach lesen: meinten Sie 1,50 oder 150?"
    with translation.override("fr"), pytest.raises(DecimalRefused) as refused:
        typed_number_read("$10", language="fr")
    assert str(refused.value) == "Tapez le montant sans son symbole monétaire."


def test_blank_is_no_number():
    assert typed_number_read("  ", language="de") is None


@pytest.mark.parametrize("language", ["en", "fr", "de"])
@pytest.mark.parametrize(
    "stored", [D("20.5000000000"), D("1234.5"), D("1500"), D("0.0000025"), D("1000000"), D("0")]
)
def test_a_stored_value_is_shown_in_the_users_convention_and_reads_back_the_same(language, stored):
    field = ExactDecimalField(max_digits=28, decimal_places=10)

    with translation.override(language):
        shown = field.widget.format_value(field.prepare_value(stored))
        read = field.clean(shown)

    assert read == stored


@pytest.mark.parametrize(
    ("language", "stored", "shown"),
    [
        ("en", D("20.5000000000"), "20.5"),
        ("fr", D("20.5000000000"), "20,5"),
        ("de", D("1234.5000000000"), "1234,5"),
        ("de", D("1500.0000000000"), "1500"),
        ("en", D("0.0000025000"), "0.0000025"),
    ],
)
def test_a_stored_value_is_shown_without_trailing_zeros(language, stored, shown):
    field = ExactDecimalField(max_digits=28, decimal_places=10)

    with translation.override(language):
        assert field.widget.format_value(field.prepare_value(stored)) == shown
    assert field.widget.input_type == "text"  # never type=number, which a browser reads itself


def test_the_field_refuses_what_reads_two_ways_in_the_active_language():
    field = ExactDecimalField(max_digits=28, decimal_places=10)

    with translation.override("en"):
        assert field.has_changed(D("1.5"), "1.50") is False
        with pytest.raises(Exception, match=re.escape("did you mean 1.50 or 150")):
            field.clean("1,50")
    with translation.override("fr"):
        assert field.clean("1,50") == D("1.50")


def test_admin_amounts_are_written_in_the_users_convention():
    with translation.override("de"):
        assert money_text(D("1234.5"), "EUR") == "1.234,50 EUR"
    with translation.override("fr"):
        assert money_text(D("1234.5"), "EUR") == f"1{NBSP}234,50 EUR"
    assert money_text(D("1234.5"), "USD") == "1,234.50 USD"


@pytest.fixture
def draft(db):
    plan = PlanFactory(code="growth", version__status=PlanVersion.DRAFT, version__base_fee=D("20"))
    return plan.versions.get()


def staff(client, name: str, language: str | None) -> User:
    user = User.objects.create_superuser(name, password="x")
    if language:
        user_language_set(user=user, language=language)
    client.force_login(user)
    return user


def version_post(version, base_fee: str) -> dict:
    return {
        "currency": version.currency,
        "interval": version.interval,
        "base_fee": base_fee,
        "trial_days": "0",
        "charges-TOTAL_FORMS": "0",
        "charges-INITIAL_FORMS": "0",
        "features-TOTAL_FORMS": "0",
        "features-INITIAL_FORMS": "0",
        "_continue": "1",
    }


def test_the_admin_reads_a_german_users_base_fee_in_german(client, draft):
    staff(client, "greta", "de")
    url = f"/admin/plans/planversion/{draft.pk}/change/"

    page = client.get(url)
    assert page["Content-Language"] == "de"
    assert 'name="base_fee" value="20,00"' in page.content.decode()
    page = client.post(url, version_post(draft, "1.234,50"))

    assert page.status_code == 302, page.context["adminform"].form.errors
    assert PlanVersion.objects.get(pk=draft.pk).base_fee == D("1234.50")
    assert 'value="1234,50"' in client.get(url).content.decode()


def test_an_english_users_ambiguous_base_fee_saves_nothing(client, draft):
    staff(client, "ann", None)  # no choice made: English
    url = f"/admin/plans/planversion/{draft.pk}/change/"

    page = client.post(url, version_post(draft, "1,50"))

    assert page.status_code == 200
    assert page.context["adminform"].form.errors["base_fee"] == [
        "“1,50” can be read two ways: did you mean 1.50 or 150?"
    ]
    assert PlanVersion.objects.get(pk=draft.pk).base_fee == D("20")


def test_a_user_picks_the_admin_language_on_the_language_page(client, db):
    user = staff(client, "claire", None)

    page = client.get("/admin/language/")
    assert page.status_code == 200
    assert page["Content-Language"] == "en"
    page = client.post("/admin/language/", {"language": "fr"})

    assert page.status_code == 302
    assert UserLanguage.objects.get(user=user).language == "fr"
    index = client.get("/admin/")
    assert index["Content-Language"] == "fr"
    assert "Langue: français" in index.content.decode()


def test_an_unknown_language_is_refused_and_nothing_changes(client, db):
    user = staff(client, "claire", "de")

    page = client.post("/admin/language/", {"language": "xx"})

    assert page.status_code == 200
    assert page.context["form"].errors["language"]
    assert UserLanguage.objects.get(user=user).language == "de"


def test_a_superuser_sets_a_users_language_on_the_users_page(client, db):
    staff(client, "root", None)
    other = User.objects.create_user("finance", password="x", is_staff=True)

    page = client.get(f"/admin/auth/user/{other.pk}/change/")

    assert page.status_code == 200
    assert 'name="admin_language-0-language"' in page.content.decode()


def test_the_api_and_the_login_page_stay_in_the_default_language(client, db):
    staff(client, "greta", "de")

    assert translation.get_language() in {"en", "en-us"}
    api = client.get("/api/v1/plans")
    assert "Content-Language" not in api
    client.logout()
    login = client.get("/admin/login/")
    # The login page speaks the browser's language (none asked here: English), never
    # the last user's.
    assert login.get("Content-Language", "en") == "en"
    assert translation.get_language() in {"en", "en-us"}


def test_a_french_users_alert_thresholds_take_a_decimal_comma(client, db):
    from tests.customers.test_customer_form_admin import ADD_URL, customer_form

    staff(client, "claire", "fr")

    page = client.post(ADD_URL, customer_form(alert_thresholds="50; 75,5; 100 %"))

    assert page.status_code == 302
    customer = Customer.objects.get()
    assert customer.alert_thresholds == [50, D("75.5"), 100]
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert page.context["adminform"].form["alert_thresholds"].value() == "50; 75,5; 100"


def test_a_german_users_ambiguous_threshold_is_asked_about(client, db):
    from tests.customers.test_customer_form_admin import ADD_URL, customer_form

    staff(client, "greta", "de")

    page = client.post(ADD_URL, customer_form(alert_thresholds="50; 7.5"))

    assert page.context["adminform"].form.errors == {
        "alert_thresholds": ["„7.5“ lässt sich zweifach lesen: meinten Sie 7,5 oder 75?"]
    }
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("language", "typed", "count"),
    [("de", "1.000", 1000), ("fr", "1 000", 1000), ("en", "1,000", 1000), ("en", "12", 12)],
)
def test_a_count_is_read_in_the_users_convention(language, typed, count):
    from common.admin_forms import ExactIntegerField

    with translation.override(language):
        assert ExactIntegerField(min_value=0).clean(typed) == count


@pytest.mark.parametrize(
    ("language", "typed", "message"),
    [
        ("en", "1.5", "Type a whole number."),
        ("de", "1,5", "Geben Sie eine ganze Zahl ein."),
        ("en", "1,50", "“1,50” can be read two ways: did you mean 1.50 or 150?"),
    ],
)
def test_a_count_that_is_not_whole_or_reads_two_ways_is_refused(language, typed, message):
    from django.core.exceptions import ValidationError

    from common.admin_forms import ExactIntegerField

    with translation.override(language), pytest.raises(ValidationError) as refused:
        ExactIntegerField(min_value=0).clean(typed)
    assert refused.value.messages == [message]


def test_a_german_users_trial_days_box_is_text_in_german(client, draft):
    staff(client, "greta", "de")

    html = client.get(f"/admin/plans/planversion/{draft.pk}/change/").content.decode()

    assert 'type="text" name="trial_days" value="0"' in html


def test_a_french_users_credit_pack_price_and_credits_are_read_in_french(client, db):
    from plans.models import CreditPack

    staff(client, "claire", "fr")

    page = client.post(
        "/admin/plans/creditpack/add/",
        {
            "code": "pack_1k",
            "name": "1 000 crédits",
            "credits": "1 000",
            "price_0": "49,90",
            "price_1": "EUR",
            "active": "on",
        },
    )

    assert page.status_code == 302, page.context["adminform"].form.errors
    pack = CreditPack.objects.get()
    assert (pack.credits, pack.price.amount, str(pack.price.currency)) == (
        D("1000"),
        D("49.90"),
        "EUR",
    )
    html = client.get(f"/admin/plans/creditpack/{pack.pk}/change/").content.decode()
    assert 'name="price_0" value="49,90"' in html


def test_an_english_users_credit_pack_price_typed_two_ways_saves_nothing(client, db):
    from plans.models import CreditPack

    staff(client, "ann", "en")

    page = client.post(
        "/admin/plans/creditpack/add/",
        {"code": "p", "name": "P", "credits": "100", "price_0": "49,90", "price_1": "USD"},
    )

    assert page.context["adminform"].form.errors["price"] == [
        "“49,90” can be read two ways: did you mean 49.90 or 4,990?"
    ]
    assert not CreditPack.objects.exists()


def test_the_portal_is_not_in_the_staff_users_language(client, db):
    from django.utils import timezone

    from customers.portal import portal_session_create
    from tests.factories import CustomerFactory

    staff(client, "greta", "de")
    customer = CustomerFactory(external_id="acme", name="Acme Inc", locale="en")
    session = portal_session_create(customer=customer, now=timezone.now())

    page = client.get(f"/portal/{session.token}/")

    assert page.status_code == 200
    assert page.get("Content-Language") != "de"

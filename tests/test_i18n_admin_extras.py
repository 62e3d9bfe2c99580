"""Issue 49: the admin pages a French or German user still read in English after
tests/test_i18n_pages.py: an object's History pages (dates in the user's
convention, the app and model named in their language), django-celery-beat's
schedule and task pages, the features of a plan version's form, and the credit
pack list's figures. Each page is rendered for a French and a German user."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from plans.feature_text import value_from_text, value_input
from plans.features import feature_create
from tests.factories import CreditPackFactory, CustomerFactory, published_version
from tests.test_i18n_pages import read_all

pytestmark = pytest.mark.django_db

APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"
CRUMB = "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}"
NOV_25 = datetime(2026, 11, 25, 18, 48, tzinfo=UTC)

WORDS = {
    "fr": {
        "when": "25 nov. 2026, 18:48:00",
        "crumbs": f"Clients et clés d{APOSTROPHE}API {CRUMB} Clients {CRUMB} Acme",
        "schedule inline": ["Tâches périodiques utilisant cette planification", "Nom de la tâche"],
        "tasks": ["Planification", "nom de la tâche"],
        "features": ["Single sign-on (sso: oui / non)", "Projects (max_projects: une valeur)"],
        "help": "Fonctionnalité booléenne : oui ou non.",
        "yes": "oui",
        "credits": r"500\s000",
    },
    "de": {
        "when": "25. Nov. 2026, 18:48:00",
        "crumbs": f"Kunden und API-Schlüssel {CRUMB} Kunden {CRUMB} Acme",
        "schedule inline": ["Periodische Aufgaben mit diesem Zeitplan", "Aufgabenname"],
        "tasks": ["Zeitplan", "Aufgabenname"],
        "features": ["Single sign-on (sso: ja / nein)", "Projects (max_projects: ein Wert)"],
        "help": "Boolesche Funktion: ja oder nein.",
        "yes": "ja",
        "credits": r"500\.000",
    },
}
ENGLISH = {
    "history": ["25 Nov 2026", "View history"],
    "saved state": ["25 Nov 2026", "Customers", "Historical", "View history"],
    "schedule": ["Periodic Tasks Using This Schedule", "Task Name"],
    "tasks": ["Scheduler", "Task Name"],
    "new version": ["yes / no", "a value", "Boolean feature", "yes · 50"],
    "packs": ["500,000"],
}


@pytest.fixture
def pages_of(client):
    with time_machine.travel(NOV_25, tick=False):
        acme = CustomerFactory(name="Acme")
        acme.name = "Acme SARL"
        acme.save()
    first = acme.history.order_by("history_id").first()
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(
        name="close periods", task="billing.tasks.close_periods", interval=every_hour
    )
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    feature_create(code="max_projects", name="Projects", kind="config")
    version = published_version("pro", currency="EUR", base_fee=D("49.00"))
    CreditPackFactory(code="big", name="Big pack", credits=D(500_000), price=D("50.00"))
    urls = {
        "history": f"/admin/customers/customer/{acme.pk}/history/",
        "saved state": f"/admin/customers/customer/{acme.pk}/history/{first.pk}/",
        "schedule": f"/admin/django_celery_beat/intervalschedule/{every_hour.pk}/change/",
        "tasks": "/admin/django_celery_beat/periodictask/",
        "new version": f"/admin/plans/planversion/add/?plan={version.plan_id}",
        "packs": "/admin/plans/creditpack/",
    }
    return lambda language: read_all(client, language, urls)


@pytest.mark.parametrize("language", ["fr", "de"])
def test_the_history_beat_feature_and_pack_pages_in_the_users_language(pages_of, language):
    # given: a customer renamed on 25 Nov 2026 at 18:48 UTC, an hourly beat task, a
    # boolean and a config feature, and a pack of 500,000 credits
    # when: a French or German user reads their pages
    pages = pages_of(language)
    said = WORDS[language]

    # then: no English phrase is left, and theirs are there
    left = [(page, p) for page, phrases in ENGLISH.items() for p in phrases if p in pages[page]]
    assert left == []
    assert said["when"] in pages["history"]
    assert said["crumbs"] in pages["saved state"]
    assert all(words in pages["schedule"] for words in said["schedule inline"])
    assert all(words in pages["tasks"] for words in said["tasks"])
    assert all(words in pages["new version"] for words in said["features"])
    assert said["help"] in pages["new version"]
    assert re.search(said["credits"], pages["packs"])


def test_an_english_user_reads_the_english_words(pages_of):
    pages = pages_of("en")

    assert "25 Nov 2026, 18:48:00" in pages["history"]
    assert f"Customers and API keys {CRUMB} Customers {CRUMB} Acme" in pages["saved state"]
    assert "Periodic Tasks Using This Schedule" in pages["schedule"]
    assert "Single sign-on (sso: yes / no)" in pages["new version"]
    assert "500,000" in pages["packs"]


@pytest.mark.parametrize(
    ("typed", "value"),
    [("oui", True), ("ja", True), ("non", False), ("nein", False), ("yes", True)],
)
def test_a_boolean_feature_reads_yes_and_no_in_each_admin_language(typed, value):
    assert value_from_text("boolean", typed) is value


def test_a_boolean_value_is_shown_for_editing_in_the_users_words():
    from django.utils import translation

    with translation.override("fr"):
        assert value_input(True) == WORDS["fr"]["yes"]
    with translation.override("de"):
        assert value_input(False) == "nein"
    assert value_input(True) == "yes"


FILTERS = {
    "en": ["currency", "US Dollar", "Euro", "country", "Germany", "France"],
    "fr": ["devise", "dollar des États-Unis", "euro", "pays", "Allemagne", "France"],
    "de": ["Währung", "US-Dollar", "Euro", "Land", "Deutschland", "Frankreich"],
}


@pytest.mark.parametrize("language", ["en", "fr", "de"])
def test_the_currency_and_country_filters_name_what_is_in_use(client, language):
    # given: packs sold in USD and EUR, tax rates for Germany and France
    from config.user_language import user_language_set
    from plans.services import tax_rate_create

    CreditPackFactory(currency="USD")
    CreditPackFactory(currency="EUR", price=D("90.00"))
    tax_rate_create(code="de_vat", name="MwSt.", percentage=D("19"), country="DE")
    tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"), country="FR")
    user = User.objects.create_superuser(f"reader_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)

    # when: the lists are read in the user's language
    packs = client.get("/admin/plans/creditpack/").content.decode()
    taxes = client.get("/admin/plans/taxrate/").content.decode()

    # then: their filters name the currencies and countries in use, in that language,
    # and offer no other (no yen for a pack, no Japan for a tax rate)
    currency, usd, eur, country, germany, france = FILTERS[language]
    assert f'data-filter-title="{currency}"' in packs, currency
    assert f'data-filter-title="{country}"' in taxes, country
    for code, name in (("USD", usd), ("EUR", eur)):
        assert f'<a href="?price_currency={code}">{name}</a>' in packs, name
    for code, name in (("DE", germany), ("FR", france)):
        assert f'<a href="?country={code}">{name}</a>' in taxes, name
    assert "price_currency=JPY" not in packs and "country=JP" not in taxes

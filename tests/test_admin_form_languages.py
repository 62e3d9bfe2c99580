"""Issue 49: the admin's forms in the user's language.

A French or German admin user reads the labels, help texts and fieldset titles
of the change forms finance uses (a plan, a version and its charges, a customer)
and the publish confirmation's sentences in their language; an English user
still reads them in English."""

from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from config.user_language import user_language_set
from plans.services import plan_version_copy_as_draft
from tests.factories import CustomerFactory, MeterFactory, overage, published_version, subscribe
from tests.test_admin_languages import words


def log_in(client, language: str) -> None:
    user = User.objects.create_superuser(f"finance_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)


def read(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return words(response.content.decode())


@pytest.fixture
def draft(db):
    """Pro v2, the draft copy of Pro v1 (49.00 USD a month, prompts over 100 at
    0.05), which 3 customers are on."""
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    v1 = published_version("pro", base_fee=D("49.00"), charges=(overage("prompts", 100, "0.05"),))
    for _ in range(3):
        subscribe(CustomerFactory(), v1)
    return plan_version_copy_as_draft(version=v1)


def admin_pages(client, draft) -> dict[str, str]:
    customer = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
    return {
        "plan": read(client, "/admin/plans/plan/add/"),
        "new version": read(client, f"/admin/plans/planversion/add/?plan={draft.plan_id}"),
        "draft": read(client, f"/admin/plans/planversion/{draft.pk}/change/"),
        "customer": read(client, f"/admin/customers/customer/{customer.pk}/change/"),
        "publish": read(client, f"/admin/plans/planversion/{draft.pk}/publish/"),
    }


FRENCH = {
    "plan": ["Ajout : offre", "Code :", "Nom :", "Description :"],
    "new version": [
        "Offre :",
        "Devise :",
        "Périodicité :",
        "Mensuelle",
        "Abonnement : Facturé à l\N{RIGHT SINGLE QUOTATION MARK}avance.",
        "Prix par utilisateur : Par utilisateur.",
        "Engagement minimum :",
        "Jours d\N{RIGHT SINGLE QUOTATION MARK}essai :",
    ],
    "draft": [  # the charge inline and its tiers
        "Compteur :",
        "Mode de consommation :",
        "Plafond souple : unités incluses, puis dépassement facturé",
        "Unités incluses :",
        "Une fois épuisé :",
        "Tarification (tarifs au dépassement et au solde ; tarifs en crédits facturés une "
        "fois épuisés)",
        "Mode de tarification :",
        "Prix du lot :",
        "Paliers de prix (prix progressifs et par volume)",
        "Statut : Brouillon",
        "Publier",
        "Nouveau brouillon",
    ],
    "customer": [
        "Identifiant externe : acme",
        "Fuseau horaire :",
        "Adresse Adresse, ligne 1 :",
        "Ville :",
        "Code postal :",
        "Dépenses Plafond de dépenses :",
        "Mode du plafond de dépenses :",
        "Strict : refuser la consommation au-delà du plafond",
        "Facturation N° TVA :",
        "Délai de paiement (jours) :",
        "Vide : la valeur par défaut, 30 jours.",
        "Langue des factures :",
        "Facturé par :",
    ],
    "publish": [
        "Publier Pro v2 ?",
        "Les prix de Pro v2 passent en lecture seule.",
        "Les nouveaux abonnements et les migrations peuvent utiliser Pro v2.",
        "Un abonnement à Pro créé par l\N{RIGHT SINGLE QUOTATION MARK}API sans numéro "
        "de version commence désormais sur Pro v2.",
        "Les 3 clients sur Pro v1 y restent jusqu\N{RIGHT SINGLE QUOTATION MARK}à ce que "
        "vous les migriez.",
    ],
}
GERMAN_DRAFT = [
    "Währung:",
    "Intervall:",
    "Grundgebühr: Im Voraus berechnet.",
    "Zähler:",
    "Verbrauchsmodell:",
    "Inklusive Einheiten:",
    "Preismodell:",
    "Preisstufen (Staffel- und Volumenpreise)",
    "Veröffentlichen",
]
ENGLISH = {
    "plan": ["Add plan", "Code:", "Name:", "Description:"],
    "new version": [
        "Plan:",
        "Currency:",
        "Interval:",
        "Monthly",
        "Base fee: Billed in advance.",
        "Seat price: Per seat.",
        "Minimum commitment:",
        "Trial days:",
    ],
    "draft": [
        "Meter:",
        "Consumption model:",
        "Soft cap: included units, then priced overage",
        "Included units:",
        "When exhausted:",
        "Pricing (overage and balance charges; credits charges that bill when exhausted)",
        "Pricing scheme:",
        "Package price:",
        "Price tiers (graduated and volume prices)",
        "Status: Draft",
        "New draft",
    ],
    "customer": [
        "External ID: acme",
        "Time zone:",
        "Address Address line 1:",
        "City:",
        "Postal code:",
        "Spending Spend limit:",
        "Spend limit mode:",
        "Hard: refuse usage past the limit",
        "Invoicing Tax ID:",
        "Payment terms (days):",
        "Empty: the default, 30 days.",
        "Invoice language:",
        "Billed by:",
    ],
    "publish": [
        "Publish Pro v2?",
        "Pro v2's prices become read-only.",
        "New subscriptions and migrations can use Pro v2.",
        "A subscription to Pro created through the API without a version number starts on "
        "Pro v2 from now on.",
        "The 3 customers on Pro v1 stay on it until you migrate them.",
    ],
}


def test_a_french_user_reads_the_forms_and_the_publish_confirmation_in_french(client, draft):
    # given: a finance user who chose French, and a draft version of a plan with customers
    log_in(client, "fr")

    # when: they open the plan and version forms, a customer and the publish confirmation
    pages = admin_pages(client, draft)

    # then: labels, help texts, fieldsets and sentences are French, none English
    for page, expected in FRENCH.items():
        for phrase in expected:
            assert phrase in pages[page], (page, phrase)
        for phrase in ENGLISH[page]:
            assert phrase not in pages[page], (page, phrase)


def test_a_german_user_reads_the_versions_form_and_its_charges_in_german(client, draft):
    log_in(client, "de")

    page = read(client, f"/admin/plans/planversion/{draft.pk}/change/")

    for phrase in GERMAN_DRAFT:
        assert phrase in page, phrase
    for phrase in ENGLISH["draft"]:
        assert phrase not in page, phrase


def test_an_english_user_still_reads_the_forms_in_english(client, draft):
    log_in(client, "en")

    pages = admin_pages(client, draft)

    for page, expected in ENGLISH.items():
        for phrase in expected:
            assert phrase in pages[page], (page, phrase)
    assert "Devise" not in pages["new version"]

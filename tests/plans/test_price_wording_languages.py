"""Issue 49: a version's comparison with the published one and its price history
in the reader's language. A French and a German admin user read both pages of
a draft that changed every kind of thing plans.price_wording words (a term, a
charge added and one removed, tiers changed and added, a rate card's rows
repriced, added and removed, features granted, changed and dropped): none of
the module's English sentences is left, their own words are there, and the
amounts are in their convention ('1 234,50 EUR', '1.234,50 EUR'). The same
pages in English hold those English sentences (the list is not stale)."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User

from config.user_language import user_language_set
from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.pricing import PricingSpec, TierSpec
from plans.selectors import version_spec
from plans.services import plan_version_copy_as_draft, plan_version_update
from tests.factories import MeterFactory, overage, published_version
from tests.rate_cards import CARD, GPT_INPUT, card_charge, llm_tokens, rate
from tests.test_i18n_pages import found, words

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, 8, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, 10, tzinfo=UTC)
MINI = (("model", "gpt-4o-mini"),)


def graduated(*tiers: tuple[str | None, str]) -> PricingSpec:
    return PricingSpec(
        "graduated",
        tiers=tuple(TierSpec(D(up_to) if up_to else None, D(price)) for up_to, price in tiers),
    )


@pytest.fixture
def draft(db):
    """Pro v1 (EUR, 1,234.50 a month) and a draft of it saved once with changes
    of every kind."""
    llm_tokens()
    MeterFactory(code="storage", name="Storage")
    MeterFactory(code="api_calls", name="API calls")
    MeterFactory(code="seats_used", name="Seats used")
    feature_create(code="max_projects", name="Projects", kind="config")
    feature_create(code="sso", name="SSO", kind="boolean")
    feature_create(code="audit", name="Audit log", kind="boolean")
    with time_machine.travel(NOV_1, tick=False):
        published = published_version(
            "pro",
            currency="EUR",
            base_fee=D("1234.50"),
            charges=(
                card_charge(),
                overage("storage", 10, "0.50"),
                replace(
                    overage("api_calls", 1000, "0.01"),
                    pricing=graduated(("1000000", "0.003"), (None, "0.002")),
                ),
            ),
            features=(FeatureGrant("max_projects", 10), FeatureGrant("audit", True)),
        )
    with time_machine.travel(NOV_2, tick=False):
        version = plan_version_copy_as_draft(version=published)
    spec = version_spec(version=version)
    card = (rate(GPT_INPUT, "2.00"), CARD[1], rate(MINI, "1.00"), CARD[3])
    tiers = graduated(("1000000", "0.003"), ("5000000", "0.0015"), (None, "0.001"))
    with time_machine.travel(NOV_3, tick=False):
        return plan_version_update(
            version=version,
            spec=replace(
                spec,
                base_fee=D("1299.00"),
                charges=(
                    card_charge(card),
                    replace(spec.charges[2], pricing=tiers),
                    overage("seats_used", 5, "12.00"),
                ),
                features=(FeatureGrant("max_projects", 20), FeatureGrant("sso", True)),
            ),
        )


def read(client, language: str, draft) -> dict[str, str]:
    user = User.objects.create_superuser(f"reader_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)
    pages = {}
    for page in ("compare", "history"):
        response = client.get(f"/admin/plans/planversion/{draft.pk}/{page}/")
        assert response.status_code == 200, page
        pages[page] = words(response.content.decode())
    return pages


# The English words of plans.price_wording (and the pages built on it), by page.
ENGLISH = {
    "compare": [
        "Terms",
        "Charge: Storage",
        "Added in this draft",
        "Removed in this draft",
        "Not granted",
        "Tier 3",
        "up to: no limit, unit price",
        "Rate gpt-4o-mini",
        "Default rate",
        "Priced by",
        "Pricing scheme",
        "Included units",
        "Billing interval",
        "No trial",
        "Yes",
    ],
    "history": [
        "Created as a draft",
        "Base fee: 1,234.50 EUR → 1,299.00 EUR",
        "Storage: charge removed",
        "Seats used: charge added",
        "included units 5",
        "API calls, tier 2: up to no limit → 5,000,000",
        "API calls, tier 2: unit price",
        "API calls: tier 3 added (up to: no limit, unit price 0.001 EUR)",
        "LLM tokens: rate gpt-4o · input: 2.50 EUR per 1M → 2.00 EUR per 1M",
        "LLM tokens: rate gpt-4o-mini added (1.00 EUR per 1M)",
        "LLM tokens: rate claude-sonnet removed (3.00 EUR per 1M)",
        "SSO: granted (Yes)",
        "Audit log: no longer granted",
    ],
}
# What they read instead: sentences whole, amounts in their convention.
TRANSLATED = {
    "fr": {
        "compare": [
            "Conditions",
            "Tarif : Storage",
            "Ajouté dans ce brouillon",
            "Retiré dans ce brouillon",
            "Non accordé",
            "Palier 3",
            "1 234,50 EUR",
            "1 299,00 EUR",
        ],
        "history": [
            "Créée comme brouillon",
            "Abonnement : 1 234,50 EUR → 1 299,00 EUR",
            "Storage : tarif retiré",
            "API calls, palier 2 : jusqu\N{RIGHT SINGLE QUOTATION MARK}à sans limite → 5 000 000",
            "API calls : palier 3 ajouté (jusqu\N{RIGHT SINGLE QUOTATION MARK}à : sans limite, "
            "prix unitaire 0,001 EUR)",
            "LLM tokens : tarif gpt-4o-mini ajouté (1,00 EUR par 1 million)",
            "Projects : 10 → 20",
            "SSO : accordé (Oui)",
            "Audit log : n\N{RIGHT SINGLE QUOTATION MARK}est plus accordé",
        ],
    },
    "de": {
        "compare": [
            "Konditionen",
            "Posten: Storage",
            "In diesem Entwurf hinzugefügt",
            "In diesem Entwurf entfernt",
            "Nicht gewährt",
            "Stufe 3",
            "1.234,50 EUR",
            "1.299,00 EUR",
        ],
        "history": [
            "Als Entwurf erstellt",
            "Grundgebühr: 1.234,50 EUR → 1.299,00 EUR",
            "Storage: Posten entfernt",
            "API calls, Stufe 2: Bis unbegrenzt → 5.000.000",
            "API calls: Stufe 3 hinzugefügt (bis: unbegrenzt, Einzelpreis 0,001 EUR)",
            "LLM tokens: Tarif gpt-4o-mini hinzugefügt (1,00 EUR pro 1 Mio.)",
            "Projects: 10 → 20",
            "SSO: gewährt (Ja)",
            "Audit log: nicht mehr gewährt",
        ],
    },
}


@pytest.mark.parametrize("language", ["fr", "de"])
def test_compare_and_history_are_in_the_readers_language(client, draft, language):
    # when: a French or German admin user reads the comparison and the history
    pages = read(client, language, draft)

    # then: no English sentence of the wording is left, and theirs are there
    left = [
        (page, p) for page, phrases in ENGLISH.items() for p in phrases if found(p, pages[page])
    ]
    assert left == []
    missing = [
        (page, p)
        for page, phrases in TRANSLATED[language].items()
        for p in phrases
        if not found(p, pages[page])
    ]
    assert missing == []


def test_an_english_reader_reads_those_sentences(client, draft):
    pages = read(client, "en", draft)

    absent = [
        (page, p) for page, phrases in ENGLISH.items() for p in phrases if not found(p, pages[page])
    ]
    assert absent == []

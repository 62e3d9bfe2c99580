"""Issue 76: every admin page of finance's main workflows in the user's language.

A French and a German admin user walk the pages a new user walked: a plan, a
published version of it with price tiers (its page, Try prices with a tax and
Simulate), a new draft, a subscription (added and changed), a customer, an
invoice, a credit note, the margins page and the dashboard. No English word is
left in the pages' text (the data typed in, names and codes, aside); Django's
own phrases ("Add %s", "Add another %(verbose_name)s") read grammatically
whatever the noun; every time shown names its zone; an amount typed "39,90"
shows back as "39,90"."""

import html
import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User

from billing.simulation import engine
from billing.subscriptions.deals import subscription_set_overrides
from config.user_language import user_language_set
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from plans.overrides import Overrides
from plans.pricing import PricingSpec, TierSpec
from plans.services import plan_version_copy_as_draft, tax_rate_create
from plans.validation import ChargeSpec
from tests.factories import CustomerFactory, MeterFactory, published_version, subscribe
from tests.test_i18n_pages import found, read_all

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, 9, 30, tzinfo=UTC)


@pytest.fixture
def urls(settings):
    settings.BILLING_INVOICE_PDFS = False
    with time_machine.travel(NOV_11, tick=False):
        MeterFactory(
            code="llm_tokens", name="LLM tokens", aggregation="sum", value_property="tokens"
        )
        version = published_version(
            "pro",
            currency="EUR",
            base_fee=D("39.90"),
            progressive_billing_threshold=D("500.00"),
            charges=(
                ChargeSpec(
                    "llm_tokens",
                    "overage",
                    D(1000),
                    pricing=PricingSpec(
                        "graduated",
                        tiers=(TierSpec(D(1000000), D("0.002")), TierSpec(None, D("0.0015"))),
                    ),
                ),
            ),
        )
        draft = plan_version_copy_as_draft(version=version)
        vat = tax_rate_create(code="fr_vat", name="TVA", percentage=D("20"))
        acme = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
        subscription = subscribe(acme, version.plan, NOV_1)
        subscription_set_overrides(
            subscription=subscription, overrides=Overrides(seat_price=D("12.5"))
        )
        invoice = Invoice.objects.get(customer=acme, reason=Invoice.START)
        invoice = invoice_finalize(invoice=invoice, now=NOV_11, collect=False)
        note = credit_note_issue(
            invoice=invoice,
            lines=[CreditLineInput(invoice.lines.first().pk, D("5.00"))],
            reason=CreditNote.DUPLICATE,
            now=NOV_11,
        )
        simulation = engine.simulation_request(
            version=draft,
            period_start=NOV_1,
            period_end=NOV_11,
            customers=[acme],
            selection="acme",
            user=None,
            now=NOV_11,
        )
    versions = "/admin/plans/planversion"
    period = "period_start=2026-11-01&period_end=2026-12-01"
    tried = f"?quantity_0=1500000&seats=0&{period}&tax_rate={vat.pk}"
    return {
        "dashboard": "/admin/",
        "plans": "/admin/plans/plan/",
        "plan": f"/admin/plans/plan/{version.plan_id}/change/",
        "versions": f"{versions}/",
        "version": f"{versions}/{version.pk}/change/",
        "draft": f"{versions}/{draft.pk}/change/",
        "new version": f"{versions}/add/?plan={version.plan_id}",
        "try prices": f"{versions}/{version.pk}/try-prices/{tried}",
        "simulate": f"/admin/plans/pricesimulation/simulate/?version={version.pk}",
        "simulation": f"/admin/plans/pricesimulation/{simulation.pk}/result/",
        "compare": f"{versions}/{draft.pk}/compare/",
        "price history": f"{versions}/{version.pk}/history/",
        "subscriptions": "/admin/billing/subscription/",
        "new subscription": "/admin/billing/subscription/add/",
        "subscription": f"/admin/billing/subscription/{subscription.pk}/change/",
        "customer": f"/admin/customers/customer/{acme.pk}/change/",
        "invoice": f"/admin/invoices/invoice/{invoice.pk}/change/",
        "credit note": f"/admin/invoices/creditnote/{note.pk}/change/",
        "margins": "/admin/billing/marginreport/",
    }


# Words of the admin's English that are no French or German word: one of them in a
# page's text is a phrase left untranslated. A word spelled the same in a language
# ("version", "Status", "usage") is left out for it (SAME_SPELLING); the data the
# fixture typed (names, codes) is taken out of the text first (DATA).
ENGLISH_WORDS = [
    *["the", "of", "and", "to", "at", "by", "from", "with", "for", "off", "into", "or"],
    *["Add", "add", "another", "Change", "View", "History", "Save", "Delete", "Remove"],
    *["Search", "Select", "object", "None", "none", "Yes", "yes", "Created", "created"],
    *["seat", "seats", "tier", "tiers", "threshold", "Progressive", "progressive"],
    *["billing", "Billing", "amount", "due", "refunded", "unit", "price", "prices"],
    *["customer", "invoice", "credit", "tax", "Subtotal", "discount", "period", "days"],
    *["month", "Active", "active", "paid", "Paid", "draft", "Draft", "published"],
    *["Published", "archived", "Archived", "Simulate", "Try", "margin", "revenue"],
    *["cost", "Remaining", "included", "Included", "Up", "limit", "Flat", "fee", "fees"],
]
# English phrases a word list cannot catch: "on" and "Tier" are French and German
# words; "Nov 2026" is English's month (French and German write "nov." and "Nov.").
ENGLISH_PHRASES = ["% on", "Tier 1", "Tier 2", "per unit", "Per unit", "No limit", "Nov 2026"]
SAME_SPELLING = {
    "fr": {"progressive", "Progressive", "due"},
    "de": {"Tier", "tier"},
}
# (An invoice line's description is the invoice's, in its customer's language;
# "Peppol BIS Billing 3.0" is a standard's name, never translated.)
DATA = [
    "Peppol BIS Billing 3.0",
    *["Acme SARL", "acme", "LLM tokens", "llm_tokens", "Usage Billing Inc.", "Isle of Man"],
    "Pro (Nov 2026)",
]
# Django's phrases made ungrammatical by a noun ("Ajout de abonnement") or by
# nested_admin's title case ("Palier De Prix").
UNGRAMMATICAL = {
    "fr": [
        *["Ajout de ", "Modification de ", "Affichage de ", "Ajouter un objet", "De Prix"],
        *["Ajouter abonnement", "Ajouter offre"],
    ],
    "de": ["Der Version", "Neues "],
}
# A time of day not followed by its zone ("11 novembre 2026 09:30").
ZONELESS_TIME = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?![:\d])(?!\s*\(?(?:UTC|[A-Z]{3,5})\b)")


def visible_text(page: str) -> str:
    text = page
    for value in DATA:
        text = text.replace(value, " ")
    return text


def left_in_english(language: str, pages: dict[str, str]) -> list[tuple[str, str]]:
    """(page, phrase) for each English word or phrase read on a page."""
    words = [w for w in ENGLISH_WORDS if w not in SAME_SPELLING[language]]
    left = []
    for name, page in pages.items():
        text = visible_text(page)
        left += [(name, w) for w in words if found(w, text)]
        left += [(name, p) for p in ENGLISH_PHRASES if p in text]
    return left


@pytest.mark.parametrize("language", ["fr", "de"])
def test_no_english_word_on_the_main_workflows_pages(client, urls, language):
    # given: an admin user who reads French or German
    # when: they walk finance's main pages
    pages = read_all(client, language, urls)

    # then: no English word or phrase is left in their text
    left = left_in_english(language, pages)
    assert left == [], " | ".join(map(str, left))


def test_the_english_list_finds_english(client, urls):
    # The words listed are English the pages would show: read in English, the
    # pages show most of them (so an empty list on a French page says something).
    pages = read_all(client, "en", urls)

    shown = {phrase for _, phrase in left_in_english("fr", pages)}
    assert len(shown) > 40, sorted(shown)


@pytest.mark.parametrize("language", ["fr", "de"])
def test_djangos_phrases_read_grammatically_whatever_the_noun(client, urls, language):
    pages = read_all(client, language, urls)

    wrong = [
        (name, phrase)
        for name, page in pages.items()
        for phrase in UNGRAMMATICAL[language]
        if phrase in page
    ]
    assert wrong == [], " | ".join(map(str, wrong))


@pytest.mark.parametrize("language", ["fr", "de"])
def test_every_time_shown_names_its_zone(client, urls, language):
    pages = read_all(client, language, urls)

    zoneless = [
        (name, page[max(0, m.start() - 40) : m.end() + 5])
        for name, page in pages.items()
        for m in ZONELESS_TIME.finditer(page)
    ]
    assert zoneless == [], zoneless


@pytest.mark.parametrize(("language", "typed"), [("fr", "39,90"), ("de", "39,90"), ("en", "39.90")])
def test_an_amount_shows_as_typed_with_its_currencys_digits(client, urls, language, typed):
    # given: a draft version whose base fee was typed 39.90 and threshold 500
    user = User.objects.create_superuser(f"typist_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)

    # when: its page is opened
    page = html.unescape(client.get(urls["draft"]).content.decode())

    # then: the boxes show the amounts with the currency's two digits
    assert re.search(r'name="base_fee" value="([^"]*)"', page).group(1) == typed
    threshold = re.search(r'name="progressive_billing_threshold" value="([^"]*)"', page)
    assert threshold.group(1) == ("500,00" if language != "en" else "500.00")
    # and: a unit price keeps its own digits
    assert 'value="0,002"' in page if language != "en" else 'value="0.002"' in page
    # and: a subscription's deal (a seat price of 12.5) shows the same way
    page = html.unescape(client.get(urls["subscription"]).content.decode())
    deal = re.search(r'name="deal_seat_price" value="([^"]*)"', page).group(1)
    assert deal == ("12,50" if language != "en" else "12.50")

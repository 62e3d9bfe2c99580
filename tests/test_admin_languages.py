"""Issue 49: the admin in the user's language, Django's words and ours.

A French or German admin user reads our own admin words in their language: the
dashboard on the index, the sidebar's app and model names, a changelist's column
headers and action names, and the shared confirmation page. An English user
still reads English, and the API stays English whatever the caller's language.
Every phrase marked for translation in the admin's templates and code has a
translation in both catalogs."""

import ast
import html
import re
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import User

from config.user_language import user_language_set
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[1]
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
NOV_21 = datetime(2026, 11, 21, tzinfo=UTC)


def words(page: str) -> str:
    """A page's text, its tags read as spaces, its runs of spaces as one."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page)).replace("\N{NO-BREAK SPACE}", " ")
    return " ".join(text.split())


@pytest.fixture
def invoice(db, settings):
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=NOV_20,
        lines=[LineInput("base_fee", "Chat Growth", None, D(1), D("120.00"), D("120.00"))],
        now=NOV_20,
    )
    return invoice_finalize(invoice=draft, now=NOV_20, collect=False)


def log_in(client, language: str) -> None:
    user = User.objects.create_superuser(f"user_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)


def read(client, url: str) -> str:
    with time_machine.travel(NOV_21, tick=False):
        response = client.get(url)
    assert response.status_code == 200
    return words(response.content.decode())


PAGES = {
    "fr": {
        "index": [
            "Facturation",  # app names in the sidebar / app list
            "Catalogue",
            "Versions d\N{RIGHT SINGLE QUOTATION MARK}offre",  # model names
            "Avoirs",
            "Abonnements",  # the dashboard
            "En essai",
            "Facturé en novembre 2026 (UTC)",
            "EUR (1 facture)",
            "Chiffre d\N{RIGHT SINGLE QUOTATION MARK}affaires prévu, périodes en cours",
            "Aucun abonnement en cours.",
            "Brouillons en attente",
            "Paiements échoués",
            "Échues, impayées",
            "Irrécouvrable",
            "Vue d\N{RIGHT SINGLE QUOTATION MARK}ensemble de la facturation",
        ],
        "changelist": [
            "Numéro",  # column headers
            "Client",
            "Émise",
            "Finaliser (numéroter et figer)",  # actions
            "Annuler, avec un avoir…",
            "Marquer irrécouvrable…",
            "Statut",  # the status column, its values and the filters
            "Finalisée",
            "Par statut",
            "Début de l'abonnement",
            "Échues, impayées",
            "Factures",  # sidebar
            "Clients et clés d\N{RIGHT SINGLE QUOTATION MARK}API",
        ],
        "confirmation": [
            "Ce qui va se passer :",
            "Cette opération est irréversible.",
            "Annuler, ne rien changer",
            "Acme SARL (120,00 EUR) sera annulée : le client ne devra plus rien à ce titre.",
            "Un avoir de 120,00 EUR est émis pour elle (120,00 EUR déduits du montant dû).",
            "Motif, imprimé sur l\N{RIGHT SINGLE QUOTATION MARK}avoir",
        ],
        "invoice": [
            "Lignes",
            "Prix unitaire",
            "Aucun paiement enregistré pour cette facture.",
            "Émettre un avoir…",
            "Aucun avoir n\N{RIGHT SINGLE QUOTATION MARK}a été émis sur cette facture.",
        ],
    },
    "de": {
        "index": [
            "Abrechnung",
            "Katalog",
            "Tarifversionen",
            "Gutschriften",
            "In Testphase",
            "Abgerechnet im November 2026 (UTC)",
            "EUR (1 Rechnung)",
            "Erwarteter Umsatz, laufende Zeiträume",
            "Kein laufendes Abonnement.",
            "Wartende Entwürfe",
            "Fehlgeschlagene Zahlungen",
            "Überfällig, unbezahlt",
            "Uneinbringlich",
            "Abrechnung auf einen Blick",
        ],
        "changelist": [
            "Nummer",
            "Kunde",
            "Ausgestellt",
            "Finalisieren (nummerieren und festschreiben)",
            "Stornieren, mit einer Gutschrift…",
            "Als uneinbringlich markieren…",
            "Finalisiert",
            "Nach Status",
            "Abonnementbeginn",
            "Überfällig, unbezahlt",
            "Rechnungen",
            "Kunden und API-Schlüssel",
        ],
        "confirmation": [
            "Was geschehen wird:",
            "Dies kann nicht rückgängig gemacht werden.",
            "Abbrechen, nichts ändern",
            "Acme SARL (120,00 EUR) wird storniert: der Kunde schuldet darauf nichts mehr.",
            "Eine Gutschrift über 120,00 EUR wird dafür ausgestellt (120,00 EUR vom fälligen",
            "Grund, auf die Gutschrift gedruckt",
        ],
        "invoice": [
            "Positionen",
            "Einzelpreis",
            "Für diese Rechnung ist keine Zahlung erfasst.",
            "Gutschrift ausstellen…",
            "Zu dieser Rechnung wurde keine Gutschrift ausgestellt.",
        ],
    },
}
ENGLISH = {
    "index": ["Billing", "Plan versions", "Drafts waiting", "Billed in November 2026 (UTC)"],
    "changelist": [
        "Number",
        "Issued",
        "Finalize (number and freeze)",
        "Credit notes",
        "Finalized",
        "Subscription start",
    ],
    "confirmation": [
        "What will happen:",
        "Cancel, change nothing",
        "will be void: the customer owes nothing on it.",
        "A credit note of 120.00 EUR is issued for it (120.00 EUR off the amount due).",
        "Reason, printed on the credit note",
    ],
    "invoice": ["Unit price", "Issue credit note…", "No credit note has been issued"],
}


def admin_pages(client, invoice) -> dict[str, str]:
    return {
        "index": read(client, "/admin/"),
        "changelist": read(client, "/admin/invoices/invoice/"),
        "confirmation": read(client, f"/admin/invoices/invoice/{invoice.pk}/void/"),
        "invoice": read(client, f"/admin/invoices/invoice/{invoice.pk}/change/"),
    }


@pytest.mark.parametrize("language", ["fr", "de"])
def test_a_french_or_german_user_reads_our_admin_words_in_their_language(client, invoice, language):
    # given: an admin user who chose French or German, and a finalized invoice
    log_in(client, language)

    # when: they open the index, the invoice list and the void confirmation
    pages = admin_pages(client, invoice)

    # then: our words are in their language, none of the English ones is left
    for page, expected in PAGES[language].items():
        for phrase in expected:
            assert phrase in pages[page], (page, phrase)
        for phrase in ENGLISH[page]:
            assert phrase not in pages[page], (page, phrase)
    # and: nothing was done by reading the confirmation
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED


def test_an_english_user_still_reads_english(client, invoice):
    log_in(client, "en")

    pages = admin_pages(client, invoice)

    for page, expected in ENGLISH.items():
        for phrase in expected:
            assert phrase in pages[page], (page, phrase)
    assert "Facturation" not in pages["index"]


def test_the_api_stays_english_for_a_french_session_and_browser(client, api, invoice):
    # given: a French admin session and a browser asking for French
    log_in(client, "fr")
    api.cookies = client.cookies

    # when: the API is asked something it refuses
    response = api.post("/api/v1/customers", {}, format="json", HTTP_ACCEPT_LANGUAGE="fr")

    # then: its error words are the contract's English ones
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert "obligatoire" not in response.content.decode()


# every phrase we marked for translation in the admin, in both catalogs

BLOCK = re.compile(r"{% blocktranslate( [^%]*)? %}(.*?){% endblocktranslate %}", re.S)
TRANSLATE = re.compile(r'{% translate "([^"]+)" %}')
VARIABLE = re.compile(r"{{ (\w+) }}")
GETTEXT = {"_", "gettext", "gettext_lazy"}
NGETTEXT = {"ngettext", "ngettext_lazy"}
ADMIN_CODE = [
    "config/urls.py",
    "billing/dashboard.py",
    "billing/apps.py",
    "customers/apps.py",
    "invoices/apps.py",
    "plans/apps.py",
    "wallets/apps.py",
    "billing/models.py",
    "customers/models.py",
    "invoices/models.py",
    "invoices/payment_models.py",
    "plans/models.py",
    "plans/feature_models.py",
    "plans/exchange_rate_models.py",
    "plans/exchange_rate_rules.py",
    "wallets/models.py",
    "common/admin_deletion.py",
    "common/vocabulary.py",
    "config/models.py",
    "billing/discount_models.py",
    *(
        str(path.relative_to(ROOT))
        for app in ("billing", "customers", "invoices", "plans", "wallets")
        for path in sorted((ROOT / app / "admin").glob("*.py"))
    ),
]


def phrases_of(template: str) -> set[str]:
    """The msgids of a template's {% translate %} and {% blocktranslate %} tags."""
    phrases = set(TRANSLATE.findall(template))
    for options, block in BLOCK.findall(template):
        parts = block.split("{% plural %}")
        if "trimmed" in options.split():
            # As Django reads it: each line stripped, the lines joined by a space.
            parts = [" ".join(ln.strip() for ln in p.splitlines() if ln.strip()) for p in parts]
        phrases |= {VARIABLE.sub(r"%(\1)s", part) for part in parts}
    return phrases


def template_phrases() -> set[str]:
    phrases = set()
    for template in (ROOT / "templates" / "admin").rglob("*.html"):
        phrases |= phrases_of(template.read_text(encoding="utf-8"))
    return phrases


def test_a_trimmed_block_is_read_as_django_reads_it():
    template = """{% blocktranslate trimmed count n=total %}
        One invoice of
          {{ customer }}.
    {% plural %}
        {{ n }} invoices of
        {{ customer }}.
    {% endblocktranslate %}{% blocktranslate %}Kept
  as typed{% endblocktranslate %}"""

    assert phrases_of(template) == {
        "One invoice of %(customer)s.",
        "%(n)s invoices of %(customer)s.",
        "Kept\n  as typed",
    }


def code_phrases() -> set[str]:
    phrases = set()
    for name in ADMIN_CODE:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in GETTEXT | NGETTEXT
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                phrases.add(node.args[0].value)
                if node.func.id in NGETTEXT and isinstance(node.args[1], ast.Constant):
                    phrases.add(node.args[1].value)
    return phrases


def catalog(locale: str) -> dict[str, str]:
    """msgid (and msgid_plural) -> its first msgstr, continuation lines joined."""
    text = (ROOT / "locale" / locale / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    entries = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[0\])?|msgstr\[\d\]) (".*")$', line)
            if match:
                key = match.group(1)
                fields[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and key:
                fields[key] += ast.literal_eval(line)
        if fields.get("msgid") and "msgctxt" not in block:
            translated = fields.get("msgstr", fields.get("msgstr[0]", ""))
            entries[fields["msgid"]] = translated
            if "msgid_plural" in fields:
                entries[fields["msgid_plural"]] = fields.get("msgstr[1]", "")
    return entries


@pytest.mark.parametrize("locale", ["fr", "de"])
def test_every_admin_phrase_we_mark_has_a_translation_in_the_catalog(locale):
    translations = catalog(locale)
    phrases = template_phrases() | code_phrases()
    # Django's own admin words (translated by Django's catalogs) are left to it.
    phrases -= {"Home", "Delete"}

    assert len(phrases) > 150
    assert sorted(p for p in phrases if not translations.get(p)) == []


@pytest.mark.parametrize(
    ("language", "finalized"), [("fr", "finalisée"), ("de", "finalisiert"), ("en", "finalized")]
)
def test_an_actions_message_is_in_the_users_language(db, client, settings, language, finalized):
    # given: a draft invoice and an admin user in French, German or English
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="beta", name="Beta GmbH", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=NOV_20,
        lines=[LineInput("base_fee", "Chat Growth", None, D(1), D("10.00"), D("10.00"))],
        now=NOV_20,
    )
    log_in(client, language)

    # when: the invoice is finalized from the list's action
    response = client.post(
        "/admin/invoices/invoice/",
        {"action": "finalize", "_selected_action": [draft.pk]},
        follow=True,
    )

    # then: the message says so in the user's language
    draft.refresh_from_db()
    assert draft.status == Invoice.FINALIZED
    shown = [str(message) for message in response.context["messages"]]
    assert shown == [f"{draft.number} {finalized}"]

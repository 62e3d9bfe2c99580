"""Issue 49: no English left on the pages finance and ops read in French or German.

A French and a German admin user walk the main admin pages of a customer with a
subscription, an invoice and its credit note, credits granted and bought, and a
top-up waiting for payment: the statuses, kinds, reasons and pricing schemes are
in their language, and so are nested_admin's inline links ("Remove"), the
invoice page's PDF and payment words and the wallet's operations. Each page is
read for a list of the English phrases a reviewer found there; the same pages
read in English show them (so the list is the pages' own words, not a typo).
The lockout page after too many failed logins follows the browser's language,
and the refusals the admin shows are in the user's language while the API's
stay English."""

import html
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation

from billing.subscriptions import bulk_migration, refusals
from config.user_language import user_language_set
from invoices.checkout import purchase_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import CreditNote, Invoice
from invoices.payment_models import Purchase
from invoices.services import invoice_finalize
from tests.factories import CustomerFactory, PlanVersionFactory, published_version, subscribe
from wallets.ledger import credits_grant
from wallets.models import CreditBlock, Wallet

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)


def words(page: str) -> str:
    """A page's text (its scripts and styles left out), tags read as spaces, then
    the words of its tags' titles, labels for screen readers and placeholders."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    said = re.findall(r'(?:title|aria-label|placeholder)="([^"]*)"', page)
    text = html.unescape(" ".join([re.sub(r"<[^>]+>", " ", page), *said]))
    return " ".join(text.replace("\N{NO-BREAK SPACE}", " ").split())


def found(phrase: str, text: str) -> bool:
    """Whether the phrase is in the text as whole words ('Paid' not in 'Unpaid');
    one ending in a sign ('Grant #') may be followed by anything ('Grant #12')."""
    before = r"(?<!\w)" if phrase[:1].isalnum() else ""
    after = r"(?!\w)" if phrase[-1:].isalnum() else ""
    return re.search(before + re.escape(phrase) + after, text) is not None


@pytest.fixture
def objects(settings):
    """Acme (EUR) on Pro v1, its start invoice finalized and credited in part,
    100 promotional credits and 50 paid ones, and a top-up waiting for payment."""
    settings.BILLING_INVOICE_PDFS = False
    with time_machine.travel(NOV_11, tick=False):
        acme = CustomerFactory(external_id="acme", name="Acme SARL", currency="EUR")
        version = published_version("pro", currency="EUR", base_fee=D("49.00"))
        subscription = subscribe(acme, version.plan, NOV_1)
        invoice = Invoice.objects.get(customer=acme, reason=Invoice.START)
        invoice = invoice_finalize(invoice=invoice, now=NOV_11, collect=False)
        line = invoice.lines.first()
        note = credit_note_issue(
            invoice=invoice,
            lines=[CreditLineInput(line.pk, D("5.00"))],
            reason=CreditNote.DUPLICATE,
            now=NOV_11,
        )
        credits_grant(customer=acme, credits=D(100), now=NOV_11)
        credits_grant(
            customer=acme, credits=D(50), kind=CreditBlock.PAID, price=D("5.00"), now=NOV_11
        )
        purchase = purchase_create(
            customer=acme,
            kind=Purchase.TOP_UP,
            channel=Purchase.CHECKOUT,
            amount=D("20.00"),
            now=NOV_11,
        )
    wallet = Wallet.objects.get(customer=acme, kind=Wallet.CREDITS)
    return {
        "subscriptions": "/admin/billing/subscription/",
        "subscription": f"/admin/billing/subscription/{subscription.pk}/change/",
        "invoice": f"/admin/invoices/invoice/{invoice.pk}/change/",
        "credit notes": "/admin/invoices/creditnote/",
        "credit note": f"/admin/invoices/creditnote/{note.pk}/change/",
        "credit note form": f"/admin/invoices/invoice/{invoice.pk}/credit-note/",
        "wallet": f"/admin/wallets/wallet/{wallet.pk}/change/",
        "operation": f"/admin/wallets/wallet/{wallet.pk}/operation/",
        "ledger": "/admin/wallets/ledgerentry/",
        "purchases": "/admin/invoices/purchase/",
        "purchase": f"/admin/invoices/purchase/{purchase.pk}/change/",
        "payments": "/admin/invoices/payment/",
        "new version": f"/admin/plans/planversion/add/?plan={version.plan_id}",
        "plans": "/admin/plans/plan/",
        "coupons": "/admin/plans/coupon/add/",
        "features": "/admin/plans/feature/add/",
        "new customer": "/admin/customers/customer/add/",
        "customer": f"/admin/customers/customer/{acme.pk}/change/",
        "entities": "/admin/customers/billingentity/",
        "new entity": "/admin/customers/billingentity/add/",
        "migrations": "/admin/billing/planmigration/",
        "emails": "/admin/invoices/documentemail/",
        "margins": "/admin/billing/marginreport/",
    }


# What a reviewer read in English on French and German pages, by page.
ENGLISH = {
    "subscriptions": ["Trialing", "Canceled", "Ended"],
    "subscription": ["Created", "Acme SARL — Pro v1 (active)"],
    "invoice": [
        "Download PDF",
        "(not stored yet: the first download renders and stores it)",
        "Every character of this PDF has a font.",
        "Billing details, as invoiced",
        "Partial credit",
        "Duplicate charge",
        "Time zone",
    ],
    "credit notes": [
        "Duplicate charge",
        "Product unsatisfactory",
        "Order change",
        "Lowered the invoice's amount due",
        "Added to the customer's credit balance",
        "Refunded",
    ],
    "credit note": ["Duplicate charge", "Download PDF"],
    "wallet": ["Promotional", "Grant #", "100 of 100", "Purchase 50", "150 credits"],
    "operation": [
        "Grant promotional credits (free)",
        "Sell credits at a price (invoiced now)",
        "Sell a credit pack (invoiced now)",
        "Top up money (invoiced now)",
    ],
    "ledger": ["Plan credits", "Top-up", "Expiry", "Purchase voided", "Purchase credited"],
    "purchases": [
        "Pending payment",
        "Paid and granted",
        "Money top-up",
        "Stripe Checkout link",
        "Saved payment method, charged at once",
    ],
    "purchase": ["Pending payment", "Money top-up", "Stripe Checkout link"],
    "payments": ["Attempt under way", "Processing at Stripe", "Succeeded"],
    "new version": ["Remove", "No price", "Per unit", "Graduated"],
    "plans": ["Add a draft version"],
    "coupons": ["Once: the next period invoice", "Forever: every period invoice"],
    "features": ["Boolean: granted or not", "Config: a number, a text or a list of texts"],
    "new customer": ["Pick a currency", "Reverse charge: no tax, the customer accounts for it"],
    "customer": ["Reverse charge: no tax, the customer accounts for it", "(active)"],
    "entities": ["and every customer naming none"],
    "new entity": ["Pick a country"],
    "migrations": ["Pending", "Running", "Done", "Now, prorated", "At the end of each period"],
    "emails": ["Pending", "Sent", "Failed"],
    "margins": ["Margin %"],
    "credit note form": ["Duplicate charge", "Product unsatisfactory", "Order change", "Credit on"],
}
# What they read instead, a few words a page.
TRANSLATED = {
    "fr": {
        "subscriptions": ["En essai", "Résilié"],
        "subscription": ["Acme SARL — Pro v1 (actif)"],
        "invoice": ["Télécharger le PDF", "Avoir partiel", "Facturation en double"],
        "credit notes": ["Facturation en double", "Déduit du montant dû de la facture"],
        "wallet": ["Promotionnel", "Attribution n°", "100 sur 100", "150 crédits"],
        "purchases": ["Paiement en attente", "Recharge en argent", "Lien Stripe Checkout"],
        "new version": [
            "Enlever",
            "Sans prix",
            "À l\N{RIGHT SINGLE QUOTATION MARK}unité",
            "Par paliers",
        ],
        "operation": ["Attribuer des crédits promotionnels (gratuits)"],
        "margins": ["Marge %"],
    },
    "de": {
        "subscriptions": ["In Testphase", "Gekündigt"],
        "subscription": ["Acme SARL — Pro v1 (aktiv)"],
        "invoice": ["PDF herunterladen", "Teilgutschrift", "Doppelte Berechnung"],
        "credit notes": ["Doppelte Berechnung", "Vom fälligen Betrag der Rechnung abgezogen"],
        "wallet": ["Werbeguthaben", "Gewährung #", "100 von 100", "150 Credits"],
        "purchases": ["Zahlung ausstehend", "Geldaufladung", "Stripe-Checkout-Link"],
        "new version": ["Entfernen", "Kein Preis", "Pro Einheit", "Gestaffelt"],
        "operation": ["Werbeguthaben gewähren (kostenlos)"],
        "margins": ["Marge %"],
    },
}


def read_all(client, language: str, urls: dict[str, str]) -> dict[str, str]:
    user = User.objects.create_superuser(f"reader_{language}", password="x")
    user_language_set(user=user, language=language)
    client.force_login(user)
    pages = {}
    for name, url in urls.items():
        with time_machine.travel(NOV_11, tick=False):
            response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        pages[name] = words(response.content.decode())
    return pages


@pytest.mark.parametrize("language", ["fr", "de"])
def test_no_english_left_on_the_main_admin_pages(client, objects, language):
    # given: an admin user who reads French or German
    # when: they walk the main pages
    pages = read_all(client, language, objects)

    # then: none of the English phrases found there is left, and their words are
    left = [
        (page, p) for page, phrases in ENGLISH.items() for p in phrases if found(p, pages[page])
    ]
    assert left == []
    missing = [
        (page, phrase)
        for page, phrases in TRANSLATED[language].items()
        for phrase in phrases
        if not found(phrase, pages[page])
    ]
    assert missing == []


def test_an_english_user_reads_those_phrases(client, objects):
    # The phrases are the pages' own English words: a French page without them
    # says something, not that the list went stale.
    pages = read_all(client, "en", objects)

    absent = [
        (page, phrase)
        for page, phrases in ENGLISH.items()
        for phrase in phrases
        if not found(phrase, pages[page])
    ]
    assert absent == []


@pytest.mark.parametrize(
    ("accept", "locked"),
    [("fr-FR,fr;q=0.9", "Connexion bloquée"), ("de", "Anmeldung gesperrt"), ("", "Login locked")],
)
def test_the_lockout_page_is_in_the_browsers_language(db, settings, accept, locked):
    # given: a login locked after the failure limit
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_superuser("admin", password="right-password-1")
    browser = Client(REMOTE_ADDR="203.0.113.9", HTTP_ACCEPT_LANGUAGE=accept)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        browser.post("/admin/login/", {"username": "admin", "password": "wrong"})

    # when: the browser tries once more
    response = browser.post("/admin/login/", {"username": "admin", "password": "wrong"})

    # then: the page says so in the browser's language (English when it asks for none)
    assert response.status_code == 429
    text = words(response.content.decode())
    assert locked in text
    if accept:
        assert "Login locked" not in text
        assert "failed attempts" not in text


def test_a_refusal_is_in_the_admin_users_language_and_english_for_the_api(db):
    # given: a plan without a published version
    version = published_version("team", currency="EUR")
    plan = version.plan
    plan.name = "Team"
    plan.save()

    # then: the same refusal reads in French or German under that language, and in
    # English where no language is activated (the API, the workers)
    text = refusals.no_published_version_text(plan)
    assert text.startswith("Team has no published version")
    with translation.override("fr"):
        assert refusals.no_published_version_text(plan).startswith(
            "Team n\N{RIGHT SINGLE QUOTATION MARK}a aucune version publiée"
        )
    with translation.override("de"):
        assert refusals.no_published_version_text(plan).startswith(
            "Team hat keine veröffentlichte Version"
        )


@pytest.mark.parametrize(
    ("language", "skipped", "moves"),
    [
        (
            "fr",
            "L\N{RIGHT SINGLE QUOTATION MARK}abonnement est déjà sur cette version",
            "Change le ",
        ),
        ("de", "Das Abonnement ist bereits auf dieser Version", "Wechselt am"),
        ("en", "The subscription is on that version already", "Moves at"),
    ],
)
def test_a_migrations_stored_reasons_read_in_the_readers_language(
    client, settings, language, skipped, moves
):
    # given: a migration to Pro v2 at period end asked by a French user, run by its
    # task (in English): one subscription on v2 already (skipped when confirmed),
    # one on v1 (moves at its period's end)
    settings.BILLING_INVOICE_PDFS = False
    with time_machine.travel(NOV_11, tick=False):
        v1 = published_version("pro", currency="EUR", base_fee=D("49.00"))
        on_v2 = subscribe(CustomerFactory(name="Beta", currency="EUR"), v1.plan, NOV_1)
        on_v1 = subscribe(CustomerFactory(name="Acme", currency="EUR"), v1.plan, NOV_1)
        v2 = PlanVersionFactory(plan=v1.plan, currency="EUR", base_fee=D("59.00"))
        on_v2.version = v2
        on_v2.save()
        with translation.override("fr"):
            preview = bulk_migration.plan_migration_preview(
                subscriptions=[on_v2, on_v1], version=v2, effective="period_end", at=None
            )
            migration, _ = bulk_migration.plan_migration_create(token=uuid.uuid4(), preview=preview)
        bulk_migration.plan_migration_run(migration_id=migration.pk, now=NOV_11)

    # when: a reader opens the migration's page
    url = f"/admin/billing/planmigration/{migration.pk}/change/"
    page = read_all(client, language, {"migration": url})["migration"]

    # then: both reasons are in their language; the API's stay English
    assert skipped in page
    items = {i.subscription_id: i for i in migration.items.all()}
    assert items[on_v2.pk].message == "the subscription is on that version already"
    assert items[on_v1.pk].status == items[on_v1.pk].DONE, items[on_v1.pk].message
    assert moves in page

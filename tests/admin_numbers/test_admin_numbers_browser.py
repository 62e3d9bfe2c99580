"""Amounts typed in the admin in each user's own convention, in a real browser
(Debian's Chromium through Playwright): a French user's "1,50" base fee is 1.50;
an English user's "1,50" is asked about and nothing is saved; "$10" is refused
in words; a German user's credit note of "0,50" is previewed as 0,50 EUR and
issued for 0.50. Screenshots are saved in the test's output directory."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from config.user_language import user_language_set
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.models import PlanVersion
from plans.rating import LineInput
from tests.factories import CustomerFactory, PlanFactory

PASSWORD = "numbers-as-typed-1"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def admin_user(name: str, language: str) -> User:
    user = User.objects.create_superuser(name, password=PASSWORD)
    user_language_set(user=user, language=language)
    return user


def log_in(page, base: str, name: str, next_url: str) -> None:
    page.goto(f"{base}/admin/login/?next={next_url}")
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}{next_url}")


def draft_version() -> PlanVersion:
    plan = PlanFactory(
        code="growth", version__status=PlanVersion.DRAFT, version__base_fee=D("20.5")
    )
    return plan.versions.get()


def text_of(page, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


@pytest.mark.django_db(transaction=True)
def test_a_french_user_types_1_comma_50_as_a_base_fee_and_1_50_is_saved(
    live_server, browser_page, output_dir
):
    # given: a draft at 20.50 and an admin user who reads the admin in French
    version = draft_version()
    admin_user("claire", "fr")
    page, base = browser_page, live_server.url
    change = f"/admin/plans/planversion/{version.pk}/change/"
    log_in(page, base, "claire", change)

    # then: the page is in French, and the fee is shown as French writes it
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("#admin-language-link").text_content() == "Langue: français"
    base_fee = page.locator("#id_base_fee")
    assert base_fee.input_value() == "20,50"  # with the currency's two digits
    assert base_fee.get_attribute("type") == "text"

    # when: she types 1,50 and saves
    base_fee.fill("1,50")
    page.screenshot(path=os.path.join(output_dir, "1-fr-typed.png"), full_page=True)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    # then: 1.50 is saved, and shown back as typed, 1,50
    assert PlanVersion.objects.get(pk=version.pk).base_fee == D("1.50")
    assert page.locator("#id_base_fee").input_value() == "1,50"
    page.screenshot(path=os.path.join(output_dir, "2-fr-saved.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_an_english_user_typing_1_comma_50_is_asked_and_nothing_is_saved(
    live_server, browser_page, output_dir
):
    # given: the same draft and an admin user in English
    version = draft_version()
    admin_user("ann", "en")
    page, base = browser_page, live_server.url
    change = f"/admin/plans/planversion/{version.pk}/change/"
    log_in(page, base, "ann", change)
    assert page.locator("#id_base_fee").input_value() == "20.50"

    # when: she types 1,50 and saves
    page.fill("#id_base_fee", "1,50")
    page.click("input[name=_continue]")

    # then: the page asks which she meant, and the fee is still 20.50
    page.wait_for_selector(".errornote")
    errors = text_of(page, ".field-base_fee .errorlist")
    assert errors == "“1,50” can be read two ways: did you mean 1.50 or 150?"
    assert page.locator("#id_base_fee").input_value() == "1,50"
    page.screenshot(path=os.path.join(output_dir, "1-en-asked.png"), full_page=True)
    assert PlanVersion.objects.get(pk=version.pk).base_fee == D("20.5")

    # when: she types $10
    page.fill("#id_base_fee", "$10")
    # (the page already shows an error note, so wait for the save's own page)
    with page.expect_navigation():
        page.click("input[name=_continue]")

    # then: refused in words, and still nothing saved
    errors = text_of(page, ".field-base_fee .errorlist")
    assert errors == "Type the amount without its currency sign."
    page.screenshot(path=os.path.join(output_dir, "2-en-currency-sign.png"), full_page=True)
    assert PlanVersion.objects.get(pk=version.pk).base_fee == D("20.5")

    # when: she switches the admin to German with the header's Language link
    page.click("#admin-language-link")
    page.check("input[name=language][value=de]")
    page.screenshot(path=os.path.join(output_dir, "3-language-page.png"), full_page=True)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    # then: the admin is in German, and so is the fee's box
    assert page.locator("#admin-language-link").text_content() == "Sprache: Deutsch"
    assert "Die Verwaltung ist jetzt auf Deutsch." in text_of(page, ".messagelist")
    page.goto(f"{base}{change}")
    assert page.locator("#id_base_fee").input_value() == "20,50"


@pytest.mark.django_db(transaction=True)
def test_a_german_users_credit_note_of_0_comma_50_is_previewed_as_0_50_eur(
    live_server, browser_page, output_dir, settings
):
    # given: a finalized invoice of 20.00 EUR, and an admin user in German
    settings.BILLING_INVOICE_PDFS = False
    customer = CustomerFactory(external_id="berlin", name="Berlin GmbH", currency="EUR")
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=NOV_1,
        period_end=DEC_1,
        lines=[LineInput("base_fee", "Chat Growth", None, D(1), D("20.00"), D("20.00"))],
        now=DEC_1,
    )
    invoice = invoice_finalize(invoice=draft, now=DEC_1, collect=False)
    line = invoice.lines.get()
    admin_user("greta", "de")
    page, base = browser_page, live_server.url
    form = f"/admin/invoices/invoice/{invoice.pk}/credit-note/"
    log_in(page, base, "greta", form)
    assert "20,00 EUR" in text_of(page, "#content")

    # when: she types 0,50 on the line and asks for the preview
    page.fill(f"input[name=line_{line.pk}]", "0,50")
    page.click("input[type=submit][value='Gutschrift-Vorschau']")

    # then: the preview is of 0,50 EUR, and nothing is issued yet
    page.wait_for_selector("input[type=submit][value='Gutschrift ausstellen']")
    content = text_of(page, "#content")
    assert "Chat Growth 0,50 EUR" in content
    assert "Gesamt 0,50 EUR" in content
    page.screenshot(path=os.path.join(output_dir, "1-de-preview.png"), full_page=True)
    assert not CreditNote.objects.exists()

    # when: she issues it
    page.click("input[type=submit][value='Gutschrift ausstellen']")
    page.wait_for_url(f"{base}/admin/invoices/creditnote/*/change/")

    # then: a credit note of 0.50 EUR, said so in German figures
    assert "über 0,50 EUR für" in text_of(page, ".messagelist")
    note = CreditNote.objects.get()
    assert (note.total, note.currency) == (D("0.50"), "EUR")
    assert [credited.amount for credited in note.lines.all()] == [D("0.50")]
    page.screenshot(path=os.path.join(output_dir, "2-de-issued.png"), full_page=True)

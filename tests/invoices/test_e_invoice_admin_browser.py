"""Finance reads a refused e-invoice and an issued one in a real browser (Debian's
Chromium through Playwright): the refused draft's page opens on the box that
names the rule and the field to fix, linked to the customer; the issued
invoice's page names its format and downloads its XML. Screenshots under
test-output/."""

import os
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from tests.invoices.test_e_invoice_admin import DEC_3, XML, br_ae_02, issued, refused_draft

pytestmark = pytest.mark.django_db(transaction=True)


def test_finance_reads_a_refused_and_an_issued_e_invoice(
    live_server, browser_page, output_dir, settings
):
    # given: a refused draft, an issued Peppol invoice, and a Finance user
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    draft = refused_draft()
    invoice = issued(sent_at=DEC_3)
    call_command("setup_roles", stdout=StringIO(), stderr=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{base}/admin/login/?next=/admin/invoices/invoice/{draft.pk}/change/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/invoices/invoice/{draft.pk}/change/")

    # then: the refusal, its rules and the fields to fix in words
    box = page.locator(".e-invoice-refused")
    assert box.locator("h2").inner_text() == (
        "This draft's e-invoice was refused: it is not issued until this is fixed"
    )
    first = box.locator("tbody tr").first
    assert first.locator("td.rule").inner_text() == "BR-AE-02"
    assert first.locator("td.message").inner_text() == br_ae_02()["message"]
    assert first.locator("td.field").inner_text() == "Customer \u203a VAT number"
    # the box is on the first screen, and the page has no horizontal scroll
    assert box.bounding_box()["y"] < 400
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=os.path.join(output_dir, "1-refused.png"), full_page=True)

    # when: finance follows the field to the customer
    first.locator("td.field a").click()
    page.wait_for_url(f"{base}/admin/customers/customer/{draft.customer_id}/change/")

    # then: the issued invoice's e-invoice
    page.goto(f"{base}/admin/invoices/invoice/{invoice.pk}/change/")
    section = page.locator("fieldset.e-invoice")
    assert section.locator(".e-invoice-format").inner_text() == "Peppol BIS 3"
    assert section.locator(".e-invoice-status").inner_text() == (
        "Validated against EN 16931 and issued"
    )
    assert section.locator(".e-invoice-sent").inner_text() == "3 Dec 2026, 10:30 (Europe/Brussels)"
    section.scroll_into_view_if_needed()
    section.screenshot(path=os.path.join(output_dir, "2-issued-section.png"))
    page.screenshot(path=os.path.join(output_dir, "3-issued.png"), full_page=True)
    with page.expect_download() as downloading:
        section.locator(".e-invoice-download a").click()
    download = downloading.value
    assert download.suggested_filename == f"{invoice.number}.xml"
    with open(download.path(), encoding="utf-8") as file:
        assert file.read() == XML

    # and: the list marks the refused draft and names the issued invoice's format
    page.goto(f"{base}/admin/invoices/invoice/")
    column = page.locator("#result_list td.field-e_invoice_column")
    assert sorted(column.all_inner_texts()) == ["Peppol BIS 3", "refused"]
    page.screenshot(path=os.path.join(output_dir, "4-list.png"), full_page=True)

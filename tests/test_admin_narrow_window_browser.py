"""The admin in a window narrower than 1280 px (a laptop's 1100 px): it opens with
the navigation sidebar closed, so that a list has the room of its columns; the
sidebar's toggle opens it, and that choice is remembered; a wide window opens it
again unless the user closed it. The customer list wraps an address after its
"@" and a zone after its "/" rather than in the middle of a word."""

import os

import pytest
from django.contrib.auth.models import Group, User

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def sidebar_open(page) -> bool:
    return page.evaluate("document.getElementById('main').classList.contains('shifted')")


def fits(page) -> bool:
    return page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results');"
        " return r.scrollWidth <= r.clientWidth"
        " && document.documentElement.scrollWidth <= window.innerWidth; })()"
    )


def test_a_narrow_window_opens_with_the_sidebar_closed_and_the_list_whole(
    live_server, browser_page, output_dir
):
    # given: a Finance user (margin column too) and customers with long addresses
    from django.core.management import call_command

    call_command("setup_roles", verbosity=0)
    CustomerFactory(
        external_id="igdki",
        name="Internationale Gesellschaft für Datenverarbeitung",
        email="rechnungswesen.forschung@igdki-sued.example",
        timezone_name="America/Argentina/Buenos_Aires",
    )
    user = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    page = browser_page
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/customers/customer/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    page.screenshot(path=os.path.join(output_dir, "customers-1100.png"), full_page=True)

    # then: the sidebar is closed and every column is on the screen
    assert not sidebar_open(page)
    assert fits(page)
    row = page.locator("#result_list tbody tr", has_text="igdki")
    assert "@<wbr>" in row.locator("td.field-email_display").inner_html()
    assert row.locator("td.field-email_display").inner_text().replace("\n", "") == (
        "rechnungswesen.forschung@igdki-sued.example"
    )
    assert row.locator("td.field-timezone_display").inner_html().count("/<wbr>") == 2

    # when: the user opens the sidebar, then opens another page
    page.click("#toggle-nav-sidebar")
    assert sidebar_open(page)
    page.goto(f"{live_server.url}/admin/invoices/invoice/")
    # then: it stays open: the choice is the user's now
    assert sidebar_open(page)
    page.click("#toggle-nav-sidebar")
    page.reload()
    assert not sidebar_open(page)


def test_a_wide_window_opens_the_sidebar_a_narrow_one_closed(live_server, browser_page):
    User.objects.create_superuser("admin", password="admin-password-1")
    page = browser_page
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password-1")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/customers/customer/")
    assert not sidebar_open(page)
    # the same browser in a wider window: Django's default, open
    page.set_viewport_size({"width": 1400, "height": 900})
    page.reload()
    assert sidebar_open(page)

"""Features granted in the admin, in a real browser (Debian's Chromium through
Playwright): a Finance user (the role setup_roles makes) opens a draft plan
version, adds the feature sso with the value true, saves, and sees it on the
page; once the draft is published the page shows it read-only, in words.
Screenshots are saved in the test's output directory."""

import os
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.selectors import version_spec
from plans.services import plan_version_copy_as_draft
from tests.factories import published_version


@pytest.mark.django_db(transaction=True)
def test_finance_grants_sso_on_a_draft_and_sees_it(live_server, browser_page, output_dir):
    # given: pro v1 granting 10 projects, its draft v2, and the feature sso
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    feature_create(code="max_projects", name="Projects", kind="config")
    pro = published_version(
        "pro", base_fee=D("49.00"), features=(FeatureGrant("max_projects", 10),)
    )
    draft = plan_version_copy_as_draft(version=pro)
    call_command("setup_roles", stdout=StringIO())
    finance = User.objects.create_user("fin", password="fin-password-1", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    page = browser_page
    url = f"{live_server.url}/admin/plans/planversion/{draft.pk}/change/"

    # when: finance logs in and opens the draft
    page.goto(f"{live_server.url}/admin/login/?next=/admin/plans/planversion/{draft.pk}/change/")
    page.fill("#id_username", "fin")
    page.fill("#id_password", "fin-password-1")
    page.click("input[type=submit]")
    page.wait_for_url(url)

    # and adds a row: sso, true
    page.click("#features-group .djn-add-handler")
    page.select_option("#id_features-1-feature", label="Single sign-on (sso: yes / no)")
    page.fill("#id_features-1-value", "true")
    page.screenshot(path=os.path.join(output_dir, "1-feature-added.png"), full_page=True)
    page.click("input[name=_continue]")

    # then: saved, and the page shows both grants
    page.wait_for_selector(".messagelist .success")
    page.screenshot(path=os.path.join(output_dir, "2-saved.png"), full_page=True)
    rows = [
        (
            page.locator(f"#id_features-{i}-feature option:checked").inner_text(),
            page.input_value(f"#id_features-{i}-value"),
        )
        for i in range(2)
    ]
    assert rows == [
        ("Projects (max_projects: a value)", "10"),
        ("Single sign-on (sso: yes / no)", "yes"),
    ]
    assert page.locator(".errorlist").count() == 0
    assert version_spec(version=draft).features == (
        FeatureGrant("max_projects", 10),
        FeatureGrant("sso", True),
    )

    # when: the draft is published, its page shows the grants in words, read-only
    page.goto(f"{live_server.url}/admin/plans/planversion/")
    page.check(f'input[name=_selected_action][value="{draft.pk}"]')
    page.select_option("select[name=action]", "publish")
    page.click("button[name=index]")
    assert page.inner_text(".consequences li >> nth=0") == "Pro v2's prices become read-only."
    page.click("input[name=_confirm]")
    assert page.text_content(".messagelist .success").strip() == "Pro v2 published"
    page.goto(url)
    shown = [
        (
            page.inner_text(f"#features-{i} .field-feature_name"),
            page.inner_text(f"#features-{i} .field-granted_value"),
        )
        for i in range(2)
    ]
    page.screenshot(path=os.path.join(output_dir, "3-published.png"), full_page=True)
    assert shown == [("Projects (max_projects)", "10"), ("Single sign-on (sso)", "Yes")]
    assert page.locator("#id_features-0-value").count() == 0

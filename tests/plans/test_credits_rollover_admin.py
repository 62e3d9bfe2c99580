"""Issue 52 in the admin: a version's credits rollover is set on its form,
refused there in words with nothing saved, shown in words once published, and
labelled in the admin user's language."""

import html
from decimal import Decimal

import pytest

from plans.models import Plan, PlanVersion
from tests.plans.test_admin import _demo_once, catalog_counts, demo, version_post  # noqa: F401
from tests.test_admin_form_languages import log_in

pytestmark = pytest.mark.django_db


def test_a_draft_takes_a_rollover_on_its_form(admin_client, demo):  # noqa: F811
    plan = Plan.objects.get(code="ai_assistant")

    response = admin_client.post(
        "/admin/plans/planversion/add/",
        version_post(
            plan,
            [],
            credits_per_period="1000",
            credits_rollover_percent="50",
            credits_rollover_periods="2",
        ),
    )

    assert response.status_code == 302, html.unescape(response.content.decode())[:3000]
    version = PlanVersion.objects.filter(plan=plan).order_by("-number").first()
    assert (version.credits_per_period, version.credits_rollover_percent) == (
        Decimal(1000),
        Decimal(50),
    )
    assert version.credits_rollover_periods == 2


@pytest.mark.parametrize(
    "terms, message",
    [
        (
            {"credits_rollover_percent": "50", "credits_rollover_periods": "2"},
            "Only credits granted each period roll over",
        ),
        (
            {
                "credits_per_period": "1000",
                "credits_rollover_percent": "150",
                "credits_rollover_periods": "2",
            },
            "At most 100: all the unused credits",
        ),
        (
            {"credits_per_period": "1000", "credits_rollover_percent": "50"},
            "Give after how many periods the rolled-over credits expire",
        ),
    ],
)
def test_a_bad_rollover_is_refused_on_the_form(admin_client, demo, terms, message):  # noqa: F811
    plan = Plan.objects.get(code="ai_assistant")
    before = catalog_counts()

    response = admin_client.post("/admin/plans/planversion/add/", version_post(plan, [], **terms))

    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert catalog_counts() == before


@pytest.mark.parametrize(
    "language, label, words",
    [
        ("en", "Credits rollover percent", "50% of the unused credits roll over, for 2 periods"),
        (
            "fr",
            "Pourcentage de report des crédits",
            "50\xa0% des crédits inutilisés sont reportés, pour 2 périodes",
        ),
        (
            "de",
            "Übertragungsanteil der Credits in Prozent",
            "50\xa0% der ungenutzten Credits werden übertragen, für 2 Zeiträume",
        ),
    ],
)
def test_the_rollover_reads_in_the_users_language(client, db, language, label, words):
    from tests.factories import published_version

    log_in(client, language)
    draft = published_version("pro", credits_per_period=Decimal(1000), status=PlanVersion.DRAFT)
    published = published_version(
        "team",
        credits_per_period=Decimal(1000),
        credits_rollover_percent=Decimal(50),
        credits_rollover_periods=2,
    )

    form = html.unescape(
        client.get(f"/admin/plans/planversion/{draft.pk}/change/").content.decode()
    )
    view = html.unescape(
        client.get(f"/admin/plans/planversion/{published.pk}/change/").content.decode()
    )

    assert label in form
    assert words in view

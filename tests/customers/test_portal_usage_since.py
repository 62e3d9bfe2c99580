"""The portal's usage table after an immediate plan change (issue 76: "Used 0"
beside a chart of the whole period's usage): the table counts the usage since the
change, and says so with the change's day, in the customer's language; without a
change it says nothing of the kind."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.subscriptions.lifecycle import subscription_change_plan
from billing.usage.ingestion import events_ingest
from tests.customers.test_portal_languages import NOV_1, open_portal, words
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_6_NOON = datetime(2026, 11, 6, 12, tzinfo=UTC)


def prompts_on_nov_5(count: int) -> None:
    events = [
        {"id": f"p{i}", "customer": "acme", "event_name": "prompt", "timestamp": NOV_5.isoformat()}
        for i in range(count)
    ]
    assert events_ingest(events=events, now=NOV_5).accepted == count


def customer_on_basic(locale: str = "en"):
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    basic = published_version(
        "basic", base_fee=D("30.00"), charges=(overage("prompts", 10, "0.50"),)
    )
    acme = CustomerFactory(external_id="acme", locale=locale)
    return acme, basic, subscribe(acme, basic, NOV_1)


def change_plan(subscription, basic) -> None:
    bigger = PlanVersionFactory(
        plan=basic.plan, base_fee=D("45.00"), charges=(overage("prompts", 10, "0.25"),)
    )
    subscription_change_plan(
        subscription=subscription, version=bigger, effective="immediate", at=NOV_6_NOON
    )


@pytest.mark.parametrize(
    ("locale", "header", "note"),
    [
        (
            "en",
            "Used since 6 Nov 2026",
            "Your plan changed on 6 Nov 2026: the table shows the usage since then, "
            "the charts the whole period.",
        ),
        (
            "fr",
            "Consommé depuis le 6 nov. 2026",
            "Votre offre a changé le 6 nov. 2026 : le tableau montre la consommation "
            "depuis, les graphiques toute la période.",
        ),
        (
            "de",
            "Genutzt seit dem 6. Nov. 2026",
            "Ihr Tarif hat sich am 6. Nov. 2026 geändert: Die Tabelle zeigt die Nutzung "
            "seitdem, die Diagramme den ganzen Zeitraum.",
        ),
    ],
)
def test_after_a_plan_change_the_table_says_since_when_it_counts(client, locale, header, note):
    # given: 14 prompts on 5 Nov, the plan changed at once on 6 Nov, none since
    acme, basic, subscription = customer_on_basic(locale)
    prompts_on_nov_5(14)
    change_plan(subscription, basic)

    # when: the portal is read on 11 Nov
    page = open_portal(client, acme)

    # then: the table's 0 is the usage since the change, and it says so
    assert page.status_code == 200
    [feature] = page.context["features"]
    assert feature["quantity"] == "0"
    text = words(page.content.decode())
    assert f"{header} " in text
    assert note in text
    # the chart still shows the 14 of 5 Nov
    [chart] = page.context["overview"].charts
    assert (datetime(2026, 11, 5).date(), D(14)) in chart.days


def test_without_a_change_the_table_counts_the_whole_period_and_says_used(client):
    acme, _basic, _subscription = customer_on_basic()
    prompts_on_nov_5(14)

    page = open_portal(client, acme)

    [feature] = page.context["features"]
    assert feature["quantity"] == "14"
    assert page.context["usage_since"] is None
    text = words(page.content.decode())
    assert "Used since" not in text
    assert "Your plan changed" not in text

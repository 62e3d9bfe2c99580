"""Cost rates in the admin (issue 51): Finance imports a provider's price list
(model, token type, cost per 1M) pasted as CSV, sees it as a table, and saves
all its rows at once through the cost rules; a refused row is marked on its
row and nothing is saved. The list is read-only; Support does not see it."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from config.user_language import user_language_set
from plans.cost_rules import OFF_THE_HOUR, cost_rate_create
from plans.models import CostRate
from plans.services import meter_create
from tests.factories import llm_tokens_meter

pytestmark = pytest.mark.django_db

IMPORT = "/admin/plans/costrate/import/"
LIST = "/admin/plans/costrate/"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)

PRICE_LIST = "model,token_type,cost,per\ngpt-4o,input,2.50\ngpt-4o,output,10\n,,0.000125,1000\n"


@pytest.fixture
def tokens(db):
    return llm_tokens_meter()


def stored() -> list[tuple]:
    return list(
        CostRate.objects.order_by("id").values_list(
            "meter__code", "when", "unit_cost", "per", "currency", "effective_from"
        )
    )


def form(**fields) -> dict:
    return {
        "meter": "llm_tokens",
        "currency": "USD",
        "effective_from": "2026-11-01T00:00",
        "default_per": "1000000",
        "lines": PRICE_LIST,
        "_save": "1",
    } | fields


def role_client(role: str) -> Client:
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user(username=role.lower(), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_three_rows_are_saved_with_their_exact_values(admin_client, tokens):
    response = admin_client.post(IMPORT, form())

    assert response.status_code == 302
    assert response.url == LIST
    assert stored() == [
        (
            "llm_tokens",
            {"model": "gpt-4o", "token_type": "input"},
            D("2.50"),
            D(1000000),
            "USD",
            NOV_1,
        ),
        (
            "llm_tokens",
            {"model": "gpt-4o", "token_type": "output"},
            D(10),
            D(1000000),
            "USD",
            NOV_1,
        ),
        ("llm_tokens", {}, D("0.000125"), D(1000), "USD", NOV_1),
    ]
    listing = admin_client.get(LIST).content.decode()
    assert "model gpt-4o, token_type input" in listing
    assert "2.50 USD per 1M" in listing
    assert "any (the default rate)" in listing


def test_the_preview_shows_the_rows_and_saves_nothing(admin_client, tokens):
    preview = {name: value for name, value in form(_preview="1").items() if name != "_save"}

    response = admin_client.post(IMPORT, preview)

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="price-list-preview"' in page
    assert page.count('class="rate-row"') == 3
    assert "10.00" in page
    assert 'name="_save"' in page
    assert stored() == []


def test_a_refused_row_is_marked_on_its_row_and_nothing_is_saved(admin_client, tokens):
    # given: a list whose third row costs per 0 units, and a fourth repeating the first
    lines = "gpt-4o,input,2.50\ngpt-4o,output,10\ngpt-4o-mini,input,0.15,0\ngpt-4o,input,3\n"

    response = admin_client.post(IMPORT, form(lines=lines))

    page = response.content.decode()
    assert response.status_code == 200
    assert stored() == []
    assert page.count('class="rate-row rate-row-refused"') == 2
    assert 'data-problem-row="3"' in page
    assert "Per: Must be more than zero" in page
    assert 'data-problem-row="4"' in page
    assert "A rate for this usage starts at this hour already" in page
    assert "Refused rows: 3, 4." in page
    assert 'name="_save"' not in page


def test_a_line_that_cannot_be_read_is_marked_and_nothing_is_saved(admin_client, tokens):
    response = admin_client.post(IMPORT, form(lines="gpt-4o,input,2.50\ngpt-4o,output,ten\n"))

    page = response.content.decode()
    assert stored() == []
    assert 'data-problem-row="2"' in page
    assert "Refused rows: 2." in page


def test_an_effective_from_off_the_hour_is_refused_with_the_rules_reason(admin_client, tokens):
    response = admin_client.post(IMPORT, form(effective_from="2026-11-01T00:30"))

    assert response.status_code == 200
    assert stored() == []
    assert response.context["form"].errors["effective_from"] == [OFF_THE_HOUR]


def test_a_later_import_takes_over_and_the_history_stays(admin_client, tokens):
    cost_rate_create(
        meter="llm_tokens",
        when={"model": "gpt-4o", "token_type": "input"},
        unit_cost=D("2.50"),
        per=D(1000000),
        currency="USD",
        effective_from=NOV_1,
    )

    response = admin_client.post(
        IMPORT, form(lines="gpt-4o,input,2", effective_from="2026-11-16T00:00")
    )

    assert response.status_code == 302
    assert [(row[2], row[5]) for row in stored()] == [
        (D("2.50"), NOV_1),
        (D(2), datetime(2026, 11, 16, tzinfo=UTC)),
    ]


def test_the_list_is_read_only(admin_client, tokens):
    rate = cost_rate_create(
        meter="llm_tokens", unit_cost=D(1), per=D(1000), currency="USD", effective_from=NOV_1
    )

    page = admin_client.get(f"{LIST}{rate.pk}/change/").content.decode()
    posted = admin_client.post(f"{LIST}{rate.pk}/change/", {"unit_cost": "0"})
    deleted = admin_client.post(f"{LIST}{rate.pk}/delete/", {"post": "yes"})

    assert 'name="unit_cost"' not in page
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert stored()[0][2] == D(1)
    assert admin_client.get(f"{LIST}add/").url == IMPORT


def test_finance_imports_and_support_may_not(tokens):
    finance, support = role_client("Finance"), role_client("Support")

    assert 'href="/admin/plans/costrate/import/"' in finance.get(LIST).content.decode()
    assert support.get(LIST).status_code == 403
    assert support.get(IMPORT).status_code == 403
    assert support.post(IMPORT, form()).status_code == 403
    assert stored() == []

    assert finance.post(IMPORT, form()).status_code == 302
    assert len(stored()) == 3


def test_a_german_user_pastes_decimal_commas_and_reads_german(client, tokens):
    user = User.objects.create_superuser("finanz", password="x")
    user_language_set(user=user, language="de")
    client.force_login(user)

    page = client.get(IMPORT).content.decode()
    response = client.post(
        IMPORT,
        form(lines="model;token_type;cost;per\ngpt-4o;input;2,50\ngpt-4o;output;0,000125;1000\n"),
    )

    assert "Preisliste importieren" in page
    assert "Import a price list" not in page
    assert response.status_code == 302
    assert [(row[2], row[3]) for row in stored()] == [
        (D("2.50"), D(1000000)),
        (D("0.000125"), D(1000)),
    ]
    assert "2,50 USD pro 1 Mio." in client.get(LIST).content.decode()


def test_the_list_is_filtered_by_meter(admin_client, tokens):
    calls = meter_create(code="calls", name="Calls", event_name="api.call", aggregation="count")
    cost_rate_create(meter="calls", unit_cost=D("0.001"), currency="USD", effective_from=NOV_1)
    admin_client.post(IMPORT, form())

    everything = admin_client.get(LIST)
    only_calls = admin_client.get(LIST, {"meter__id__exact": calls.pk})

    assert everything.context["cl"].result_count == 4
    assert [rate.meter.code for rate in only_calls.context["cl"].result_list] == ["calls"]
    assert "0.001 USD" in only_calls.content.decode()

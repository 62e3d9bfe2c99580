"""Exchange rates in the admin (issue 75): Finance adds a rate on its form or
pastes many as CSV, all or none: one bad row refuses the whole paste, naming
the row and the field, and nothing is written. Rows are never edited or
deleted; Support does not see them. In French and German too."""

import os
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from config.user_language import user_language_set
from plans.exchange_rate_rules import exchange_rate_create
from plans.models import ExchangeRate
from tests.test_admin_languages import words

pytestmark = pytest.mark.django_db

ADD = "/admin/plans/exchangerate/add/"
PASTE = "/admin/plans/exchangerate/paste/"
LIST = "/admin/plans/exchangerate/"
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)

PASTED = (
    "base,quote,rate,effective_from,source\n"
    "USD,EUR,0.90,2026-10-01,ECB reference\n"
    "USD,EUR,0.92,2026-11-15 00:00,ECB reference\n"
    "GBP,EUR,1.15,2026-10-01T00:00:00Z,ECB reference\n"
)


def role_client(role: str, language: str = "en") -> Client:
    call_command("setup_roles", stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_user(username=role.lower(), is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    user_language_set(user=user, language=language)
    client = Client()
    client.force_login(user)
    return client


def stored() -> list[tuple]:
    return list(
        ExchangeRate.objects.order_by("id").values_list(
            "base", "quote", "rate", "effective_from", "source", "created_by"
        )
    )


def test_finance_pastes_rates_and_sees_them_listed():
    finance = role_client("Finance")

    response = finance.post(PASTE, {"lines": PASTED})

    assert response.status_code == 302, words(response.content.decode())
    assert stored() == [
        ("USD", "EUR", D("0.9"), OCT_1, "ECB reference", "admin finance"),
        ("USD", "EUR", D("0.92"), NOV_15, "ECB reference", "admin finance"),
        ("GBP", "EUR", D("1.15"), OCT_1, "ECB reference", "admin finance"),
    ]
    page = words(finance.get(LIST).content.decode())
    assert "Paste rates as CSV" in page
    assert "USD EUR 0.92" in page


def test_a_paste_with_tabs_lowercase_codes_and_columns_in_another_order():
    finance = role_client("Finance")
    text = "source\teffective_from\tbase\tquote\trate\nECB\t2026-11-01\tusd\tjpy\t155.5\n"

    assert finance.post(PASTE, {"lines": text}).status_code == 302
    assert stored() == [("USD", "JPY", D("155.5"), NOV_1, "ECB", "admin finance")]


@pytest.mark.parametrize(
    ("bad_row", "says"),
    [
        ("USD,EUR,0,2026-11-01,ECB", "Row 2 (USD, EUR, 0, 2026-11-01, ECB), rate: Must be more"),
        ("USD,EUR,-1,2026-11-01,ECB", "Row 2 (USD, EUR, -1, 2026-11-01, ECB), rate: Must be more"),
        ("USD,EUR,NaN,2026-11-01,ECB", "Row 2 (USD, EUR, NaN, 2026-11-01, ECB), rate:"),
        ("USD,EUR,1000000001,2026-11-01,ECB", "rate: At most 1000000000"),
        ("USD,USD,1,2026-11-01,ECB", "Row 2 (USD, USD, 1, 2026-11-01, ECB), quote currency:"),
        ("USD,XYZ,1,2026-11-01,ECB", "quote currency: Unknown currency 'XYZ'"),
        ("USD,EUR,0.9,2026-13-01,ECB", "Row 2 (USD, EUR, 0.9, 2026-13-01, ECB), effective from"),
        ("USD,EUR,0.9,2026-11-01,", "Row 2 (USD, EUR, 0.9, 2026-11-01, ), source: Name where"),
        ("USD,EUR,0.9,2026-11-01", "Row 2 (USD, EUR, 0.9, 2026-11-01): Expected 5 cells"),
        ("USD,EUR,0.9,2026-10-01,ECB", "Row 2 (USD, EUR, 0.9, 2026-10-01, ECB), effective from"),
    ],
)
def test_one_bad_row_refuses_the_whole_paste_naming_row_and_field(bad_row, says):
    finance = role_client("Finance")
    text = f"GBP,EUR,1.15,2026-10-01,ECB\n{bad_row}\nUSD,EUR,0.92,2026-11-15,ECB\n"
    if "2026-10-01,ECB" in bad_row:
        text = f"USD,EUR,0.90,2026-10-01,ECB\n{bad_row}\n"  # the same pair and moment twice
        says = f"{says} (UTC): Row 1 gives this pair a rate from the same moment"

    response = finance.post(PASTE, {"lines": text})

    assert response.status_code == 200
    assert says in words(response.content.decode())
    assert stored() == []


def test_a_row_the_pair_has_already_refuses_the_paste_naming_the_rate():
    existing = exchange_rate_create(
        base="USD", quote="EUR", rate=D("0.90"), effective_from=OCT_1, source="ECB"
    )
    finance = role_client("Finance")

    response = finance.post(
        PASTE, {"lines": "GBP,EUR,1.15,2026-10-01,ECB\nUSD,EUR,0.91,2026-10-01,x"}
    )

    page = words(response.content.decode())
    assert (
        "Row 2 (USD, EUR, 0.91, 2026-10-01, x), effective from (UTC): The pair has a rate "
        f"from this moment already: exchange rate {existing.pk}"
    ) in page
    assert ExchangeRate.objects.count() == 1


def test_finance_adds_one_rate_and_a_refusal_lands_on_its_field():
    finance = role_client("Finance")
    form = {
        "base": "USD",
        "quote": "EUR",
        "rate": "0.9210",
        "effective_from": "2026-11-01T00:00",
        "source": "ECB reference",
    }

    same = finance.post(ADD, form | {"quote": "USD"})
    assert "A rate converts between two currencies" in words(same.content.decode())
    assert stored() == []

    assert finance.post(ADD, form).status_code == 302
    assert stored() == [("USD", "EUR", D("0.921"), NOV_1, "ECB reference", "admin finance")]

    again = finance.post(ADD, form | {"rate": "0.93"})
    assert "The pair has a rate from this moment already" in words(again.content.decode())
    assert ExchangeRate.objects.count() == 1


def test_a_rate_is_never_edited_nor_deleted_and_support_does_not_see_them():
    rate = exchange_rate_create(
        base="USD", quote="EUR", rate=D("0.90"), effective_from=OCT_1, source="ECB"
    )
    finance = role_client("Finance")
    view = finance.get(f"{LIST}{rate.pk}/change/")
    assert view.status_code == 200
    assert "Save" not in words(view.content.decode())
    finance.post(f"{LIST}{rate.pk}/change/", {"rate": "5"})
    assert finance.post(f"{LIST}{rate.pk}/delete/", {"post": "yes"}).status_code == 403
    assert stored() == [("USD", "EUR", D("0.9"), OCT_1, "ECB", "")]

    support = role_client("Support")
    assert support.get(LIST).status_code == 403
    assert support.post(PASTE, {"lines": PASTED}).status_code == 403
    assert ExchangeRate.objects.count() == 1


@pytest.mark.parametrize(
    ("language", "phrases"),
    [
        (
            "fr",
            [
                "Coller des taux en CSV",
                "Ligne 1 (USD, USD, 1, 2026-11-01, ECB), devise de cotation: Un taux convertit",
            ],
        ),
        (
            "de",
            [
                "Kurse als CSV einfügen",
                "Zeile 1 (USD, USD, 1, 2026-11-01, ECB), kurswährung: Ein Kurs rechnet",
            ],
        ),
    ],
)
def test_the_paste_page_and_its_refusals_in_french_and_german(language, phrases):
    finance = role_client("Finance", language)

    page = words(finance.post(PASTE, {"lines": "USD,USD,1,2026-11-01,ECB"}).content.decode())

    for phrase in phrases:
        assert phrase in page
    assert stored() == []

"""A charge's rate card in the admin (issue 50): finance pastes rows from a
spreadsheet into the charge's Rate card box, sees them as a grid, a refused row
marked on the row it concerns with nothing saved; a published version shows the
card read-only and a new draft copies it."""

import re
from decimal import Decimal

import pytest
from django.utils import translation

from plans import services
from plans.admin.rate_card_grid import read_grid
from plans.models import Charge, ChargeRate, Plan, PlanVersion
from tests.factories import llm_tokens_meter
from tests.plans.test_admin import version_post
from tests.test_admin_languages import log_in

pytestmark = pytest.mark.django_db

# Six rows as finance copies them out of a spreadsheet: tab-separated, a header.
PASTED = (
    "model\ttoken_type\tunit_price\n"
    "gpt-4o\tinput\t2.50\n"
    "gpt-4o\toutput\t10.00\n"
    "gpt-4o\t\t5.00\n"
    "claude-sonnet\tinput\t3.00\n"
    "\toutput\t8.00\n"
    "\t\t4.00\n"
)


@pytest.fixture
def llm_tokens(db):
    return llm_tokens_meter()


@pytest.fixture
def plan(db):
    return Plan.objects.create(code="ai", name="AI")


def card_charge(meter, card: str, price_by: str = "", **fields) -> dict:
    return (
        {"meter": meter.pk, "model": "overage", "included_units": "0"}
        | fields
        | {
            "price_by_text": price_by,
            "rate_card": card,
        }
    )


def post(plan, charges) -> dict:
    data = version_post(plan, [dict(c) for c in charges])
    for i, charge in enumerate(charges):
        data[f"charges-{i}-price_by_text"] = charge.get("price_by_text", "")
        data[f"charges-{i}-rate_card"] = charge.get("rate_card", "")
    return data


def stored_rows(charge: Charge) -> list[tuple]:
    return [
        (row.when, row.pricing and row.pricing["unit_price"], row.credits_per_unit, row.per)
        for row in ChargeRate.objects.filter(charge=charge).order_by("position")
    ]


def refused_rows(page: str) -> list[str]:
    """The numbers of the grid's rows marked red."""
    return re.findall(r'<tr class="rate-row rate-row-refused" data-row="(\d+)">', page)


def test_finance_saves_a_six_row_card_pasted_from_a_spreadsheet(admin_client, llm_tokens, plan):
    response = admin_client.post(
        "/admin/plans/planversion/add/", post(plan, [card_charge(llm_tokens, PASTED)])
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    charge = Charge.objects.get(version__plan=plan)
    # The header named the properties: Price by was left empty.
    assert charge.price_by == ["model", "token_type"]
    assert (charge.pricing_scheme, charge.unit_price) == ("", None)
    assert stored_rows(charge) == [
        ({"model": "gpt-4o", "token_type": "input"}, "2.50", None, Decimal(1)),
        ({"model": "gpt-4o", "token_type": "output"}, "10.00", None, Decimal(1)),
        ({"model": "gpt-4o"}, "5.00", None, Decimal(1)),
        ({"model": "claude-sonnet", "token_type": "input"}, "3.00", None, Decimal(1)),
        ({"token_type": "output"}, "8.00", None, Decimal(1)),
        ({}, "4.00", None, Decimal(1)),
    ]

    # and: its page shows the grid, 'any' where a row names no value
    page = admin_client.get(f"/admin/plans/planversion/{charge.version_id}/change/").content
    page = page.decode()
    assert page.count('<tr class="rate-row"') == 6
    assert '<td>6</td><td class="rate-any">any</td><td class="rate-any">any</td>' in page
    assert refused_rows(page) == []


def test_a_tie_is_refused_on_the_row_it_concerns_and_nothing_is_saved(
    admin_client, llm_tokens, plan
):
    # Without the row (gpt-4o, output), gpt-4o (now row 2) and output (now row 4)
    # both match gpt-4o's output tokens, with one property each: they tie.
    tied = "\n".join(line for line in PASTED.splitlines() if "10.00" not in line)

    response = admin_client.post(
        "/admin/plans/planversion/add/", post(plan, [card_charge(llm_tokens, tied)])
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert refused_rows(page) == ["4"]
    row = page[page.index('data-problem-row="4"') :]
    row = row[: row.index("</tr>")]
    assert "Row 2 (model gpt-4o) and row 4 (token_type output) match the same usage" in row
    assert "Refused rows: 4. Each is marked in red in the grid, with why." in page
    assert (PlanVersion.objects.count(), Charge.objects.count(), ChargeRate.objects.count()) == (
        0,
        0,
        0,
    )


def test_a_row_that_cannot_be_read_is_marked_and_nothing_is_saved(admin_client, llm_tokens, plan):
    card = "gpt-4o,input,2.50\ngpt-4o,output,\n,,4.00\n"

    response = admin_client.post(
        "/admin/plans/planversion/add/",
        post(plan, [card_charge(llm_tokens, card, price_by="model, token_type")]),
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert refused_rows(page) == ["2"]
    assert "Give the price." in page
    assert PlanVersion.objects.count() == 0


def test_the_default_row_is_required(admin_client, llm_tokens, plan):
    card = "gpt-4o,input,2.50\n"

    response = admin_client.post(
        "/admin/plans/planversion/add/",
        post(plan, [card_charge(llm_tokens, card, price_by="model, token_type")]),
    )

    assert "Add a default row (when {})" in response.content.decode()
    assert PlanVersion.objects.count() == 0


def test_prices_are_read_as_a_french_user_types_them():
    text = "model;token_type;unit_price;per\ngpt-4o;input;2,50;1 000 000\n;;4;1000\n"
    with translation.override("fr"):
        grid = read_grid(text, (), language="fr")
    assert grid.price_by == ("model", "token_type")
    assert [(row.values, row.price, row.per) for row in grid.rows] == [
        ({"model": "gpt-4o", "token_type": "input"}, Decimal("2.50"), Decimal(1000000)),
        ({}, Decimal(4), Decimal(1000)),
    ]


def test_a_first_row_without_its_price_is_a_row_not_a_header():
    grid = read_grid("gpt-4o,input,\n,,4\n", ("model", "token_type"), language="en")
    assert [row.problems for row in grid.rows] == [["Give the price."], []]


def test_an_english_decimal_comma_is_asked_about_on_its_row():
    grid = read_grid("gpt-4o\tinput\t2,5\n\t\t4\n", ("model", "token_type"), language="en")
    assert grid.rows[0].price is None
    assert grid.rows[0].problems == ["Price: “2,5” can be read two ways: did you mean 2.5 or 25?"]
    assert grid.rows[1].problems == []


def test_a_credits_card_draws_credits_per_units(admin_client, llm_tokens, plan):
    card = "model,credits_per_unit,per\ngpt-4o,5,1000\n,1,1000\n"

    response = admin_client.post(
        "/admin/plans/planversion/add/",
        post(plan, [card_charge(llm_tokens, card, model="credits", included_units="")]),
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    charge = Charge.objects.get()
    assert stored_rows(charge) == [
        ({"model": "gpt-4o"}, None, Decimal(5), Decimal(1000)),
        ({}, None, Decimal(1), Decimal(1000)),
    ]
    # and: the grid heads its price 'Credits per unit', per grouped by thousands
    page = admin_client.get(f"/admin/plans/planversion/{charge.version_id}/change/").content
    page = page.decode()
    assert "<th>Credits per unit</th><th>Per</th>" in page
    assert '<td>gpt-4o</td><td class="rate-number">5</td><td class="rate-number">1,000</td>' in page


def test_a_price_per_million_is_stored_in_the_row_pricing(admin_client, llm_tokens, plan):
    card = "model,unit_price,per\ngpt-4o,2.50,1000000\n,4.00,1000000\n"

    admin_client.post("/admin/plans/planversion/add/", post(plan, [card_charge(llm_tokens, card)]))

    row = ChargeRate.objects.order_by("position").first()
    assert (row.pricing["unit_price"], row.pricing["per"]) == ("2.50", "1000000")


def published_card_version(llm_tokens, plan, admin_client) -> PlanVersion:
    admin_client.post(
        "/admin/plans/planversion/add/", post(plan, [card_charge(llm_tokens, PASTED)])
    )
    return services.plan_version_publish(version=PlanVersion.objects.get(plan=plan))


def test_a_published_card_is_shown_read_only(admin_client, llm_tokens, plan):
    version = published_card_version(llm_tokens, plan, admin_client)

    page = admin_client.get(f"/admin/plans/planversion/{version.pk}/change/").content.decode()

    assert page.count('<tr class="rate-row"') == 6
    assert 'name="charges-0-rate_card"' not in page
    assert "<textarea" not in page
    assert "model, token_type" in page
    # and: a post changes nothing
    admin_client.post(
        f"/admin/plans/planversion/{version.pk}/change/",
        post(plan, [card_charge(llm_tokens, ",,1.00\n", price_by="model")]),
    )
    assert len(stored_rows(Charge.objects.get(version=version))) == 6


def test_a_new_draft_copies_the_card(admin_client, llm_tokens, plan):
    version = published_card_version(llm_tokens, plan, admin_client)

    draft = services.plan_version_copy_as_draft(version=version)

    charge = Charge.objects.get(version=draft)
    assert charge.price_by == ["model", "token_type"]
    assert stored_rows(charge) == stored_rows(Charge.objects.get(version=version))
    # and: the draft's page offers the card as text to edit, header first
    page = admin_client.get(f"/admin/plans/planversion/{draft.pk}/change/").content.decode()
    assert "model,token_type,unit_price,per\ngpt-4o,input,2.50,1\n" in page


def test_saving_a_draft_keeps_its_card(admin_client, llm_tokens, plan):
    admin_client.post(
        "/admin/plans/planversion/add/", post(plan, [card_charge(llm_tokens, PASTED)])
    )
    version = PlanVersion.objects.get()
    page = admin_client.get(f"/admin/plans/planversion/{version.pk}/change/")
    form = page.context["inline_admin_formsets"][0].formset.forms[0]
    charge = Charge.objects.get()
    rows = stored_rows(charge)
    data = post(
        plan,
        [
            card_charge(
                llm_tokens,
                form.initial["rate_card"],
                price_by=form.initial["price_by_text"],
            )
        ],
    )
    data |= {
        "charges-INITIAL_FORMS": "1",
        "charges-0-id": charge.pk,
        "charges-0-version": version.pk,
    }

    response = admin_client.post(f"/admin/plans/planversion/{version.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[-3000:]
    assert stored_rows(Charge.objects.get()) == rows


def test_a_french_user_pastes_prices_with_decimal_commas(client, llm_tokens, plan):
    log_in(client, "fr")
    card = "gpt-4o\tinput\t2,50\n\t\t4\n"
    data = post(plan, [card_charge(llm_tokens, card, price_by="model, token_type")])

    response = client.post("/admin/plans/planversion/add/", data | {"base_fee": "29"})

    assert response.status_code == 302, response.content.decode()[-3000:]
    charge = Charge.objects.get()
    assert [row[:2] for row in stored_rows(charge)] == [
        ({"model": "gpt-4o", "token_type": "input"}, "2.50"),
        ({}, "4"),
    ]
    # and: the page reads in French, the text box in French numbers, split by ';'
    page = client.get(f"/admin/plans/planversion/{charge.version_id}/change/").content.decode()
    assert "Grille tarifaire" in page
    assert '<td class="rate-any">toutes</td>' in page
    assert "model;token_type;unit_price;per\ngpt-4o;input;2,50;1\n;;4,00;1\n" in page


def test_a_card_with_graduated_rows_is_shown_and_kept_as_it_is(admin_client, api, llm_tokens):
    # given: a draft whose card has a graduated row, written through the API
    graduated = {
        "scheme": "graduated",
        "tiers": [{"up_to": "1000", "unit_price": "0.02"}, {"up_to": None, "unit_price": "0.01"}],
    }
    body = {
        "code": "ai",
        "name": "AI",
        "currency": "USD",
        "base_fee": "0",
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "price_by": ["model"],
                "rates": [
                    {"when": {"model": "gpt-4o"}, "pricing": graduated},
                    {"when": {}, "pricing": {"scheme": "per_unit", "unit_price": "0.03"}},
                ],
            }
        ],
    }
    assert api.post("/api/v1/plans", body, format="json").status_code == 201
    version = PlanVersion.objects.get()
    charge = Charge.objects.get()
    rows = stored_rows(charge)
    url = f"/admin/plans/planversion/{version.pk}/change/"
    page = admin_client.get(url)
    form = page.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.fields["rate_card"].disabled
    assert '<td>gpt-4o</td><td class="rate-number">graduated</td>' in page.content.decode()

    # when: finance saves the version's page (its base fee changed)
    data = post(version.plan, [card_charge(llm_tokens, "", price_by="")]) | {
        "base_fee": "5",
        "charges-INITIAL_FORMS": "1",
        "charges-0-id": charge.pk,
        "charges-0-version": version.pk,
    }
    response = admin_client.post(url, data)

    # then: the card is kept as it was
    assert response.status_code == 302, response.content.decode()[-3000:]
    version.refresh_from_db()
    assert version.base_fee == Decimal(5)
    assert stored_rows(Charge.objects.get()) == rows
    assert ChargeRate.objects.get(when={"model": "gpt-4o"}).pricing["scheme"] == "graduated"


def test_a_price_by_the_meter_does_not_group_by_is_refused_on_the_form(
    admin_client, llm_tokens, plan
):
    card = "region\tunit_price\neu\t1.00\n\t4.00\n"

    response = admin_client.post(
        "/admin/plans/planversion/add/", post(plan, [card_charge(llm_tokens, card)])
    )

    assert response.status_code == 200
    assert "does not group its usage by region" in response.content.decode()
    assert PlanVersion.objects.count() == 0

"""A report never fails on a row (issue 73): a cost rate stored before the bound
on a unit's cost (99,999,999,999,999.99 per 0.0000000001 was taken) made every
margins read a 500 and cut the admin's CSV at its row. Now the usage it would
cost is counted as uncosted, the row says why (`error`), every other figure is
computed, and a CSV that cannot write a row ends with a line saying so."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.margins.report import Margin, margins_csv_lines
from plans.models import CostRate, Meter
from tests.factories import api_client
from tests.margins.test_margins_admin import NOVEMBER as PAGE_NOVEMBER
from tests.margins.test_margins_admin import get, staff
from tests.margins.test_margins_api import (  # noqa: F401 (s26: a fixture)
    _s26_once,
    post_events,
    s26,
    s26_usage,
    tokens_event,
)

pytestmark = pytest.mark.django_db

DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NOVEMBER = "period_start=2026-11-01&period_end=2026-12-01"


@pytest.fixture
def broken_rate(s26):  # noqa: F811
    """S26 closed, and an input rate from Nov 18 written before the bound (so past
    the API): the 1M input tokens of Nov 20 fall under it."""
    rate = CostRate.objects.create(
        meter=Meter.objects.get(code="llm_tokens"),
        when={"model": "gpt-4o", "token_type": "input"},
        unit_cost=D("99999999999999.99"),
        per=D("0.0000000001"),
        currency="USD",
        effective_from=datetime(2026, 11, 18, tzinfo=UTC),
    )
    s26_usage()
    periods_close(as_of=DEC_1)
    return rate


def why(rate: CostRate) -> str:
    return (
        f"cost rate {rate.pk} (llm_tokens, from 2026-11-18T00:00:00+00:00) costs more than "
        "the most a unit may cost: its usage is counted as uncosted; supersede it with a "
        "corrected rate"
    )


def margins(query: str):
    return api_client("finance:read").get(f"/api/v1/margins?{query}")


def test_every_view_answers_and_the_row_says_what_it_could_not_cost(broken_rate):
    response = margins(f"{NOVEMBER}&group_by=customer")

    assert response.status_code == 200, response.content[:300]
    # Nov 10's input at 1.25 and the output at 1.00 are costed; Nov 20's input is not.
    assert response.json()["results"] == [
        {
            "key": {"customer": "acme"},
            "revenue": "7.00",
            "cost": "2.25",
            "margin": "4.75",
            "margin_percent": "67.86",
            "uncosted_quantity": "1000000",
            "error": why(broken_rate),
        }
    ]
    by_type = margins(f"{NOVEMBER}&group_by=token_type").json()["results"]
    assert [(r["key"], r["cost"], r["uncosted_quantity"], r.get("error")) for r in by_type] == [
        ({"token_type": "input"}, "1.25", "1000000", why(broken_rate)),
        ({"token_type": "output"}, "1.00", "0", None),
    ]
    for view in ("plan", "meter", "model"):
        response = margins(f"{NOVEMBER}&group_by={view}")
        assert response.status_code == 200, (view, response.content[:300])
        (row,) = response.json()["results"]
        assert (row["cost"], row["error"]) == ("2.25", why(broken_rate))


def test_the_admin_page_and_its_csv_show_the_row_with_its_error(broken_rate):
    finance = staff("Finance")
    page = get(finance, f"{PAGE_NOVEMBER}&group_by=token_type&currency=USD")

    assert page.status_code == 200
    html = page.content.decode()
    assert f'<div class="row-error errornote">{why(broken_rate)}</div>' in html
    csv = get(finance, f"{PAGE_NOVEMBER}&group_by=token_type&currency=USD&format=csv")
    assert b"".join(csv.streaming_content).decode() == (
        "token_type,revenue,cost,margin,margin_percent,uncosted_quantity,currency,error,"
        "missing_rates\n"
        f'input,5.00,1.25,3.75,75.00,1000000,USD,"{why(broken_rate)}",\n'
        "output,2.00,1.00,1.00,50.00,0,USD,,\n"
    )
    # The dashboard's tile and the chart read the same totals: no failure either.
    assert get(finance, "").status_code == 200
    assert finance.get("/admin/").status_code == 200


def test_a_csv_that_cannot_write_a_row_ends_with_a_line_saying_so():
    rows = [
        Margin(key={"customer": "a"}, revenue=D("2.00"), cost=D("1.00")),
        Margin(key={"customer": "b"}, revenue=D("2.00"), cost=D("Infinity")),
        Margin(key={"customer": "c"}, revenue=D("2.00"), cost=D("1.00")),
    ]

    lines = list(margins_csv_lines(rows, group_by="customer", currency="USD"))

    assert lines == [
        "customer,revenue,cost,margin,margin_percent,uncosted_quantity,currency,error,"
        "missing_rates\n",
        "a,2.00,1.00,1.00,50.00,0,USD,,\n",
        '"error: the export stopped here, after 1 of 3 rows; download it again"\n',
    ]


def test_a_cost_more_than_an_amount_holds_is_uncosted_and_said(s26):  # noqa: F811
    # given: output at the most a unit may cost from Nov 18, and a billion and one
    # output tokens on Nov 20: 1,000,000,001,000,000,000 is more than 18 digits
    response = api_client("admin").post(
        "/api/v1/cost-rates",
        {
            "meter": "llm_tokens",
            "when": {"model": "gpt-4o", "token_type": "output"},
            "unit_cost": "1000000000",
            "per": "1",
            "currency": "USD",
            "effective_from": "2026-11-18T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    post_events([tokens_event("huge", "2026-11-20T14:05:00Z", 1_000_000_001, "output")])

    with time_machine.travel(DEC_1, tick=False):  # November not closed yet
        rows = margins(f"{NOVEMBER}&group_by=token_type").json()["results"]

    # The revenue accrues as priced (1,000,000,001 output tokens at 10.00 per 1M
    # = 10,000.00000001, 10,000.00); only the cost is uncosted.
    assert rows == [
        {
            "key": {"token_type": "output"},
            "revenue": "10000.00",
            "cost": "0.00",
            "margin": "10000.00",
            "margin_percent": "100.00",
            "uncosted_quantity": "1000000001",
            "error": "the cost of llm_tokens is more than an amount holds: that usage is "
            "counted as uncosted",
        }
    ]

"""Try prices with a rate card (issue 50): a quantity per row of the card
instead of one per meter, and the invoice's lines per row, as the close writes
them, to the cent."""

import re
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission, User

from invoices.models import Invoice
from plans.pricing import GRADUATED, PricingSpec, TierSpec
from plans.rate_card_pricing import RateSpec
from plans.services import plan_create
from plans.validation import VersionSpec
from tests.rate_cards import CARD, MILLION, card_charge, llm_tokens

pytestmark = pytest.mark.django_db

PER_M = "per 1M"


@pytest.fixture
def tokens_plan(db):
    llm_tokens()
    # The claude-sonnet row graduated: 3.00 per 1,000,000 up to 100,000 of its
    # tokens, then 2.00 per 1,000,000 (its tiers count its own quantity).
    claude = RateSpec(
        when=CARD[2].when,
        pricing=PricingSpec(
            GRADUATED,
            tiers=(
                TierSpec(D(100000), D("3.00"), per=MILLION),
                TierSpec(None, D("2.00"), per=MILLION),
            ),
        ),
    )
    charge = card_charge((CARD[0], CARD[1], claude, CARD[3]))
    return plan_create(
        code="tokens",
        name="Tokens",
        version=VersionSpec(currency="USD", base_fee=D("10.00"), charges=(charge,)),
        publish=True,
    )


def staff(client):
    user = User.objects.create_user("fin", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_planversion"))
    client.force_login(user)
    return client


def rows(html: str) -> list[list[str]]:
    return [
        re.findall(r"<td[^>]*>([^<]*)</td>", row)
        for row in re.findall(r'<tr class="invoice-line">(.*?)</tr>', html)
    ]


def test_a_rate_card_takes_a_quantity_per_row_and_bills_a_line_per_row(tokens_plan, client):
    url = f"/admin/plans/planversion/{tokens_plan.pk}/try-prices/"
    client = staff(client)

    form = client.get(url).context["form"]
    assert [(name, form.fields[name].label) for name in form.meters] == [
        ("quantity_0_0", "LLM tokens · gpt-4o · input"),
        ("quantity_0_1", "LLM tokens · gpt-4o · output"),
        ("quantity_0_2", "LLM tokens · claude-sonnet"),
        ("quantity_0_3", "LLM tokens · other usage"),
    ]

    page = client.get(
        url,
        {
            "quantity_0_0": "1000000",
            "quantity_0_1": "200000",
            "quantity_0_2": "300000",
            "quantity_0_3": "520000",
            "seats": "0",
            "period_start": "2026-11-01",
            "period_end": "2026-12-01",
        },
    )

    assert page.status_code == 200
    html = page.content.decode()
    assert rows(html) == [
        ["Tokens (Nov 2026)", "1", "10.00 USD", "10.00 USD"],
        ["LLM tokens · gpt-4o · input", "1,000,000", f"2.50 USD {PER_M}", "2.50 USD"],
        ["LLM tokens · gpt-4o · output", "200,000", f"10.00 USD {PER_M}", "2.00 USD"],
        [
            "LLM tokens · claude-sonnet: tier up to 100,000",
            "100,000",
            f"3.00 USD {PER_M}",
            "0.30 USD",
        ],
        [
            "LLM tokens · claude-sonnet: tier above 100,000",
            "200,000",
            f"2.00 USD {PER_M}",
            "0.40 USD",
        ],
        ["LLM tokens · other usage", "520,000", f"4.00 USD {PER_M}", "2.08 USD"],
    ]
    # 10.00 + 2.50 + 2.00 + 0.30 + 0.40 + 2.08
    assert (
        '<tr class="total" id="sandbox-total"><td colspan="3">Total</td>'
        '<td class="amount">17.28 USD</td></tr>'
    ) in html
    assert Invoice.objects.count() == 0


def test_a_row_left_at_zero_bills_no_line(tokens_plan, client):
    page = staff(client).get(
        f"/admin/plans/planversion/{tokens_plan.pk}/try-prices/",
        {
            "quantity_0_0": "0",
            "quantity_0_1": "0",
            "quantity_0_2": "0",
            "quantity_0_3": "250000",
            "seats": "0",
            "period_start": "2026-11-01",
            "period_end": "2026-12-01",
        },
    )
    assert [row[0] for row in rows(page.content.decode())] == [
        "Tokens (Nov 2026)",
        "LLM tokens · other usage",
    ]
    assert '<td class="amount">11.00 USD</td></tr>' in page.content.decode()

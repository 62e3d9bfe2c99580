"""Issue 55: every figure the portal prints is written by the customer's writer,
grouped by thousands in the language read ("1,000", "1 000", "1.000"): the usage
table's used and included, a granted feature's number, a credits balance and
credits not covered, the breakdown's quantities. Besides the checks of each, the
page's visible text holds no number of five digits or more left ungrouped."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.usage.ingestion import events_ingest
from customers.portal import portal_session_create
from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from tests.factories import CustomerFactory, MeterFactory, credits, published_version, subscribe
from wallets.ledger import credits_grant

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)
NBSP = "\N{NO-BREAK SPACE}"
NNBSP = "\N{NARROW NO-BREAK SPACE}"


@pytest.fixture
def portal(client):
    """acme on credits (1 a token), 50,000 projects granted, 12,000 credits given,
    and 15,000 tokens used (7,500 on gpt-4o, 7,500 on gpt-4o-mini) from 1 Nov: 3,000
    not covered. Returns a function opening its portal in a language."""
    MeterFactory(
        code="tokens",
        name="Tokens",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
    )
    feature_create(code="max_projects", name="Projects", kind="config")
    customer = CustomerFactory(external_id="acme", locale="en")
    plan = published_version(
        "chat",
        charges=(credits("tokens", 1),),
        features=(FeatureGrant("max_projects", 50000),),
    )
    credits_grant(customer=customer, credits=D(12000), note="welcome", now=NOV_1)
    subscribe(customer, plan, NOV_1)
    events = [
        {
            "id": f"t{day}-{model}",
            "customer": "acme",
            "event_name": "tokens",
            "timestamp": (NOV_1 + timedelta(days=day, hours=3)).isoformat(),
            "properties": {"tokens": 1500, "model": model},
        }
        for day in range(5)
        for model in ("gpt-4o", "gpt-4o-mini")
    ]
    assert events_ingest(events=events, now=NOV_11).accepted == 10
    token = portal_session_create(customer=customer, now=NOV_11).token

    def open_in(query: str):
        with time_machine.travel(NOV_11, tick=False):
            response = client.get(f"/portal/{token}/{query}")
        assert response.status_code == 200
        return response

    return open_in


def visible_text(html: str) -> str:
    """The page's text as read: no tags, styles or chart coordinates."""
    html = re.sub(r"<(style|svg)\b.*?</\1>", " ", html, flags=re.S)
    # (not str.split(): it takes a no-break space, French's group mark, for a blank)
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("query", "group"),
    [("", ","), ("?lang=fr", NNBSP), ("?lang=de", ".")],
)
def test_every_figure_on_the_portal_is_grouped_in_the_language_read(portal, query, group):
    response = portal(query)
    context = response.context
    if query == "?lang=fr":
        # French groups by a no-break space (narrow or not, as Django's format says).
        group = next(g for g in (NNBSP, NBSP) if f"15{g}000" in context["features"][0]["quantity"])

    def grouped(number: str) -> str:
        return number.replace(",", group)

    (feature,) = context["features"]
    assert feature["quantity"] == grouped("15,000")
    assert feature["uncovered"] == grouped("3,000")
    assert [row["quantity"] for row in feature["breakdown"]] == [grouped("7,500")] * 2
    assert [f["value"] for f in context["features_granted"]] == [grouped("50,000")]
    (wallet,) = context["wallets"]
    assert wallet["balance"].startswith("0")  # 12,000 drawn down by 15,000 used
    (chart,) = context["charts"]
    assert chart["peak"] == grouped("3,000")
    text = visible_text(response.content.decode())
    assert grouped("50,000") in text
    # no figure of five digits or more printed raw (invoice numbers and years aside)
    assert re.findall(r"(?<![\w\-.,/:])\d{5,}(?![\w\-])", text) == []

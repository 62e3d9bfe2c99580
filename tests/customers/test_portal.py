"""The customer portal: a signed, expiring link from the API, the page it opens
(usage per feature against what is included, balances, spend so far and
projected, a daily chart, invoices with PDFs), and what a tampered, expired or
other customer's link gets: 403, 410 or 404, and nothing of the customer's."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing

from billing.invoicing.close import periods_close
from billing.usage.ingestion import events_ingest
from customers.portal import SALT, portal_session_create
from invoices.models import Invoice
from plans.models import CreditPack
from tests.factories import (
    CustomerFactory,
    agents_catalog,
    ai_assistant_plan,
    prompts_meter,
    runs_100_pack,
    subscribe,
)
from wallets.purchases import credit_pack_purchase

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)


@pytest.fixture
def setup(db):
    """S1's plan for acme with an October invoice, 250 prompts in November so far,
    and a pack of credits; beta is another customer with its own invoice."""
    prompts_meter()
    plan = ai_assistant_plan()
    pack = runs_100_pack()
    acme = CustomerFactory(external_id="acme")
    beta = CustomerFactory(external_id="beta", name="Beta LLC")
    for customer in (acme, beta):
        subscribe(customer, plan, OCT_1)
    periods_close(as_of=NOV_1)
    events = [
        {
            "id": f"p{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": (NOV_1 + timedelta(days=i % 10, hours=1)).isoformat(),
        }
        for i in range(250)
    ]
    assert events_ingest(events=events, now=NOV_11).accepted == 250
    credit_pack_purchase(customer=acme, pack=pack, now=NOV_11)
    return acme, beta


def portal_url(customer, now=NOV_11) -> str:
    return f"/portal/{portal_session_create(customer=customer, now=now).token}/"


def test_portal_session_endpoint_returns_a_link_that_expires_in_an_hour(api, setup):
    with time_machine.travel(NOV_11, tick=False):
        response = api.post("/api/v1/customers/acme/portal-session")
    assert response.status_code == 201
    body = response.json()
    assert body["expires_at"] == "2026-11-11T01:00:00Z"
    assert body["url"].startswith("http://testserver/portal/")


def test_portal_session_for_an_unknown_customer_is_404(api, setup):
    assert api.post("/api/v1/customers/nobody/portal-session").status_code == 404


def test_portal_shows_usage_balances_spend_chart_and_invoices(client, setup):
    acme, _ = setup
    with time_machine.travel(NOV_11, tick=False):
        response = client.get(portal_url(acme))
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    html = response.content.decode()
    feature = response.context["features"][0]
    assert (feature["quantity"], feature["included"], feature["amount"]) == ("250", "200", "2.50")
    assert feature["percent"] == 100 and feature["over"]
    # 19.99 base fee + 2.50 overage so far; 250 prompts in 10 of 30 days -> 750, 550
    # over at 0.05 = 27.50, plus 19.99
    assert (response.context["subtotal"], response.context["projected_total"]) == (
        "22.49",
        "47.49",
    )
    assert [w["balance"] for w in response.context["wallets"]] == ["100 credits"]
    chart = response.context["charts"][0]
    assert [bar["label"] for bar in chart["bars"]][:2] == ["1 Nov 2026: 25", "2 Nov 2026: 25"]
    assert len(chart["bars"]) == 10  # Nov 1 to Nov 10: the period so far
    invoices = response.context["invoices"]
    assert {i["number"] for i in invoices} == set(
        Invoice.objects.filter(customer=acme)
        .exclude(status="draft")
        .values_list("number", flat=True)
    )
    assert "<svg" in html and "Acme Inc" in html and "Beta LLC" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_portal_downloads_its_own_invoice_pdf(client, setup):
    acme, _ = setup
    invoice = Invoice.objects.filter(customer=acme, reason="period").get()
    with time_machine.travel(NOV_11, tick=False):
        response = client.get(f"{portal_url(acme)}invoices/{invoice.pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert invoice.number in response["Content-Disposition"]


def test_another_customers_invoice_is_not_found(client, setup):
    acme, beta = setup
    theirs = Invoice.objects.filter(customer=beta).exclude(status="draft").first()
    with time_machine.travel(NOV_11, tick=False):
        response = client.get(f"{portal_url(acme)}invoices/{theirs.pk}/pdf")
    assert response.status_code == 404
    assert b"%PDF" not in response.content
    assert b"Beta" not in response.content


def test_a_tampered_token_is_403_and_reveals_nothing(client, setup):
    acme, beta = setup
    token = portal_session_create(customer=acme, now=NOV_11).token
    # Someone edits the signed payload to point at another customer.
    forged = signing.dumps({"c": beta.pk, "exp": 2_000_000_000}, salt=SALT, key="not-the-key")
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged, "garbage"):
        with time_machine.travel(NOV_11, tick=False):
            response = client.get(f"/portal/{bad}/")
        assert response.status_code == 403, bad
        html = response.content.decode()
        assert "Acme" not in html and "Beta" not in html and "INV-" not in html


def test_an_expired_token_is_410_and_reveals_nothing(client, setup):
    acme, _ = setup
    url = portal_url(acme, now=NOV_11)
    with time_machine.travel(NOV_11 + timedelta(hours=1), tick=False):
        response = client.get(url)
        pdf = client.get(f"{url}invoices/1/pdf")
    assert (response.status_code, pdf.status_code) == (410, 410)
    assert "Acme" not in response.content.decode()
    with time_machine.travel(NOV_11 + timedelta(minutes=59), tick=False):
        assert client.get(url).status_code == 200


def test_a_token_signed_for_something_else_is_refused(client, setup):
    acme, _ = setup
    other = signing.dumps({"c": acme.pk, "exp": 2_000_000_000}, salt="another.purpose")
    with time_machine.travel(NOV_11, tick=False):
        assert client.get(f"/portal/{other}/").status_code == 403


def test_a_credits_feature_fully_covered_says_nothing_about_uncovered_usage(client, db):
    """Only usage a wallet could not pay for is mentioned; none here."""
    agents = agents_catalog()
    acme = CustomerFactory(external_id="acme")
    subscribe(acme, agents.plan, NOV_1)
    credit_pack_purchase(customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_1)
    runs = [
        {
            "id": f"r{i}",
            "customer": "acme",
            "event_name": "agent.run",
            "timestamp": "2026-11-02T00:00:00Z",
        }
        for i in range(3)
    ]
    assert events_ingest(events=runs, now=NOV_11).accepted == 3

    with time_machine.travel(NOV_11, tick=False):
        response = client.get(portal_url(acme))

    feature = response.context["features"][0]
    assert (feature["quantity"], feature["uncovered"]) == ("3", None)
    assert "not covered" not in response.content.decode()

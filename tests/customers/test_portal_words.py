"""Issue 55: what a new customer reads on the portal. Invoice statuses in its
words (Open, Past due, Paid, Void; never the back office's "Finalized"), the
projection said to be before tax, quantities grouped by
thousands in the customer's convention, and a daily chart with a value axis
and a title on each bar; all written by the customer's writer, in en and fr."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.usage.ingestion import events_ingest
from customers.portal import portal_session_create
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_void, invoice_write_draft
from invoices.settlement import invoice_mark_paid
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import CustomerFactory, MeterFactory, overage, published_version, subscribe

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, tzinfo=UTC)
NBSP = "\N{NO-BREAK SPACE}"


def extra(customer, amount: str, at: datetime, *, finalize: bool = True) -> Invoice:
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=at,
        period_end=at + timedelta(days=1),
        lines=[LineInput("base_fee", "Extra", None, D(1), D(amount), D(amount))],
        now=at,
    )
    if not finalize:
        return draft
    # Issued on `at`: documents are dated when issued (invoices.issue_dates).
    with time_machine.travel(at, tick=False):
        return invoice_finalize(invoice=draft, now=at, collect=False)


@pytest.fixture
def acme(db, settings, tmp_path):
    """acme in France (20% VAT), on 19.99 a month with 1,000 tokens included and
    0.01 a token beyond from 1 Nov; 1,250 tokens a day from 1 to 10 Nov (12,500);
    four invoices of its own: past due (issued 1 Oct, due 31 Oct), open (issued
    5 Nov, due 5 Dec), paid and void."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_PAYMENT_TERMS_DAYS = 30
    tax_rate_create(code="vat_20", name="VAT", percentage=D("20.00"), country="FR")
    MeterFactory(code="tokens", name="Tokens", aggregation="sum", value_property="tokens")
    customer = CustomerFactory(
        external_id="acme",
        locale="en",
        address={"line1": "1 rue X", "postal_code": "75001", "city": "Paris", "country": "FR"},
        tax_rates=["vat_20"],
    )
    plan = published_version(
        "chat", base_fee=D("19.99"), charges=(overage("tokens", 1000, "0.01"),)
    )
    subscribe(customer, plan, NOV_1)
    events = [
        {
            "id": f"t{day}",
            "customer": "acme",
            "event_name": "tokens",
            "timestamp": (NOV_1 + timedelta(days=day, hours=3)).isoformat(),
            "properties": {"tokens": 1250},
        }
        for day in range(10)
    ]
    assert events_ingest(events=events, now=NOV_11).accepted == 10
    invoices = {
        "past_due": extra(customer, "10.00", OCT_1),
        "open": extra(customer, "20.00", NOV_5),
        "paid": extra(customer, "30.00", NOV_5 + timedelta(hours=1)),
        "void": extra(customer, "40.00", NOV_5 + timedelta(hours=2)),
    }
    invoice_mark_paid(invoice=invoices["paid"], reference="bank", now=NOV_5)
    with time_machine.travel(NOV_5, tick=False):
        invoice_void(invoice=invoices["void"], reason="billed twice", now=NOV_5)
    return customer, invoices


def open_portal(client, customer, query: str = ""):
    token = portal_session_create(customer=customer, now=NOV_11).token
    with time_machine.travel(NOV_11, tick=False):
        response = client.get(f"/portal/{token}/{query}")
    assert response.status_code == 200
    return response


def statuses(response, invoices) -> dict:
    by_id = {row["id"]: row["status"] for row in response.context["invoices"]}
    return {name: by_id[invoice.pk] for name, invoice in invoices.items()}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", {"past_due": "Past due", "open": "Open", "paid": "Paid", "void": "Void"}),
        (
            "?lang=fr",
            {"past_due": "En retard", "open": "Ouverte", "paid": "Payée", "void": "Annulée"},
        ),
        (
            "?lang=de",
            {"past_due": "Überfällig", "open": "Offen", "paid": "Bezahlt", "void": "Storniert"},
        ),
    ],
)
def test_invoice_statuses_are_the_customers_words(client, acme, query, words):
    customer, invoices = acme
    response = open_portal(client, customer, query)
    assert statuses(response, invoices) == words
    html = response.content.decode()
    assert "Finalized" not in html and "Émise" not in html and "Ausgestellt" not in html
    for name, invoice in invoices.items():
        assert f'data-invoice="{invoice.pk}"' in html
        assert f'<td class="status">{words[name]}</td>' in html


def test_a_fully_credited_invoice_is_paid_not_open(client, acme):
    # given: an invoice credited in full by a credit note (nothing left to pay)
    customer, _ = acme
    credited = extra(customer, "5.00", NOV_5 + timedelta(hours=3))
    from invoices.credit_notes import CreditLineInput, credit_note_issue

    (line,) = credited.lines.all()
    credit_note_issue(
        invoice=credited,
        lines=[CreditLineInput(line.pk, D("5.00"))],
        reason="other",
        now=NOV_5,
    )
    credited.refresh_from_db()
    assert (credited.status, credited.amount_due) == (Invoice.FINALIZED, D(0))

    # then
    assert statuses(open_portal(client, customer), {"credited": credited}) == {"credited": "Paid"}


def test_the_projection_says_it_is_before_tax(client, acme):
    customer, _ = acme
    response = open_portal(client, customer)
    # 12,500 tokens in 10 of 30 days -> 37,500; 36,500 beyond 1,000 at 0.01 =
    # 365.00, plus the 19.99 fee: 384.99 before tax (the invoice adds the VAT)
    assert response.context["projected_total"] == "384.99"
    text = " ".join(response.content.decode().split())
    assert 'Projected for the period (before tax)</span><strong id="projected">384.99' in text

    fr = open_portal(client, customer, "?lang=fr")
    assert fr.context["projected_total"] == "384,99"
    assert "Prévision pour la période (hors taxes)" in fr.content.decode()


@pytest.mark.parametrize(
    ("query", "included", "used", "peak"),
    [
        ("", "1,000", "12,500", "1,250"),
        ("?lang=fr", f"1{NBSP}000", f"12{NBSP}500", f"1{NBSP}250"),
        ("?lang=de", "1.000", "12.500", "1.250"),
    ],
)
def test_quantities_and_the_chart_axis_are_grouped_by_thousands(
    client, acme, query, included, used, peak
):
    customer, _ = acme
    response = open_portal(client, customer, query)
    (feature,) = response.context["features"]
    assert (feature["included"], feature["quantity"]) == (included, used)
    (chart,) = response.context["charts"]
    # the value axis: 0 at the baseline, the peak at the top
    assert [(tick["y"], tick["label"]) for tick in chart["ticks"]] == [(104, "0"), (8, peak)]
    html = response.content.decode()
    assert f'<td class="num included">{included}</td>' in html
    assert f'dominant-baseline="middle">{peak}</text>' in html
    # each bar titled with its day and quantity
    assert len(chart["bars"]) == 10
    title = {
        "": f"1 Nov 2026: {peak}",
        "?lang=fr": f"1 nov. 2026 : {peak}",
        "?lang=de": f"1. Nov. 2026: {peak}",
    }[query]
    assert chart["bars"][0]["label"] == title
    assert f"<title>{title}</title>" in html


def test_the_portal_looks_right_in_a_browser(live_server, browser_page, acme, output_dir):
    customer, invoices = acme
    token = portal_session_create(customer=customer, now=datetime.now(UTC)).token
    # the page is read at NOV_11 in the other tests; here, the real clock: the
    # figures differ, the words do not
    browser_page.goto(f"{live_server.url}/portal/{token}/")
    assert browser_page.locator("#projected").is_visible()
    assert browser_page.locator(
        f'tr[data-invoice="{invoices["void"].pk}"] td.status'
    ).inner_text() == ("Void")
    assert browser_page.locator("section.chart svg text.tick").count() >= 1
    browser_page.screenshot(path=os.path.join(output_dir, "portal.png"), full_page=True)

"""The invoice list's filters (status, period, customer, plan, past due) each
narrow the list to exactly the invoices they name; an invoice's page is a view
page, and a posted change is refused."""

import re
from datetime import UTC, datetime
from decimal import Decimal as D
from html import unescape

import pytest
import time_machine
from django.test import override_settings

from billing.invoicing.close import periods_close
from billing.subscriptions.lifecycle import subscription_create
from customers.services import customer_create
from invoices.models import Invoice
from invoices.settlement import invoice_mark_paid
from plans.models import Plan
from plans.services import plan_create
from plans.validation import VersionSpec
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOW = datetime(2026, 11, 16, tzinfo=UTC)
LIST = "/admin/invoices/invoice/"


def made_invoices() -> dict[str, Invoice]:
    """acme on "flat" (9.00) and beta on "big" (39.00), both from October 1st:
    their start invoices (October) and November's period invoices, all finalized
    by the close on November 1st; acme's October one paid on the 2nd. beta also
    topped up 20.00 on the 5th (a purchase invoice, of no plan, paid), and gamma's
    start invoice on "flat" from November 10th is a draft."""
    for code, fee in (("flat", "9.00"), ("big", "39.00")):
        plan_create(
            code=code,
            name=code.title(),
            version=VersionSpec(currency="USD", base_fee=D(fee)),
            publish=True,
        )
    customers = {
        external_id: customer_create(external_id=external_id, name=name, currency="USD")
        for external_id, name in (("acme", "Acme Inc"), ("beta", "Beta LLC"), ("gamma", "Gamma"))
    }
    for external_id, plan in (("acme", "flat"), ("beta", "big")):
        subscription_create(
            customer=customers[external_id], plan=Plan.objects.get(code=plan), start=OCT_1
        )
    # Each document issued at its moment, the clock moved there (a document is
    # dated when it is issued: invoices.issue_dates).
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    by_customer = Invoice.objects.select_related("customer")
    found = {
        f"{i.customer.external_id}_{i.reason}": i
        for i in by_customer.filter(reason__in=[Invoice.START, Invoice.PERIOD])
    }
    invoice_mark_paid(invoice=found["acme_start"], reference="bank", now=NOV_2)
    with time_machine.travel(NOV_5, tick=False):
        _, top_up = money_top_up(
            customer=customers["beta"], amount=D("20.00"), currency="USD", now=NOV_5
        )
    found["beta_purchase"] = invoice_mark_paid(invoice=top_up, reference="card", now=NOV_5)
    subscription_create(
        customer=customers["gamma"], plan=Plan.objects.get(code="flat"), start=NOV_10
    )
    found["gamma_start"] = Invoice.objects.get(customer__external_id="gamma")
    return found


@pytest.fixture(scope="module")
def _invoices_once(module_transaction):
    # Due on receipt (no payment terms), so that the ones unpaid are past due.
    with override_settings(BILLING_PAYMENT_TERMS_DAYS=0):
        return module_transaction.once(made_invoices, "invoices")


@pytest.fixture
def invoices(_invoices_once, db) -> dict[str, Invoice]:
    """made_invoices, made once for this module (tests/shared_rows.py)."""
    return _invoices_once.for_test()


def listed(admin_client, query: str = "") -> set[str]:
    with time_machine.travel(NOW, tick=False):
        response = admin_client.get(f"{LIST}?{query}")
    assert response.status_code == 200
    names = {
        invoice.pk: f"{invoice.customer.external_id}_{invoice.reason}"
        for invoice in Invoice.objects.select_related("customer")
    }
    return {names[invoice.pk] for invoice in response.context["cl"].result_list}


ALL = {"acme_start", "acme_period", "beta_start", "beta_period", "beta_purchase", "gamma_start"}


def test_no_filter_lists_every_invoice(admin_client, invoices):
    assert listed(admin_client) == ALL


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=draft", {"gamma_start"}),
        ("status__exact=paid", {"acme_start", "beta_purchase"}),
        ("status__exact=finalized", {"acme_period", "beta_start", "beta_period"}),
        ("status__exact=void", set()),
    ],
)
def test_status_filter(admin_client, invoices, query, expected):
    assert listed(admin_client, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # the date hierarchy: October's start invoices and the period closed on Nov 1st
        (
            "period_start__year=2026&period_start__month=10",
            {"acme_start", "acme_period", "beta_start", "beta_period"},
        ),
        (
            "period_start__year=2026&period_start__month=11",
            {"beta_purchase", "gamma_start"},
        ),
        ("period_start__year=2026&period_start__month=11&period_start__day=10", {"gamma_start"}),
    ],
)
def test_period_date_hierarchy(admin_client, invoices, query, expected):
    assert listed(admin_client, query) == expected


def test_period_filter_this_month_in_the_sidebar(admin_client, invoices):
    with time_machine.travel(NOW, tick=False):
        html = admin_client.get(LIST).content.decode()
    link = re.search(r'<a href="\?(period_start__gte=[^"]+)">This month</a>', html)

    assert listed(admin_client, unescape(link.group(1))) == {"beta_purchase", "gamma_start"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("customer=acme", {"acme_start", "acme_period"}),
        ("customer=beta", {"beta_start", "beta_period", "beta_purchase"}),
        ("customer=nobody", set()),
        ("customer=beta&status__exact=paid", {"beta_purchase"}),
    ],
)
def test_customer_filter(admin_client, invoices, query, expected):
    assert listed(admin_client, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # a purchase belongs to no plan
        ("plan=flat", {"acme_start", "acme_period", "gamma_start"}),
        ("plan=big", {"beta_start", "beta_period"}),
        ("plan=flat&customer=gamma", {"gamma_start"}),
    ],
)
def test_plan_filter(admin_client, invoices, query, expected):
    assert listed(admin_client, query) == expected


def test_past_due_filter(admin_client, invoices):
    # Finalized on November 1st, due on receipt, unpaid on the 16th.
    assert listed(admin_client, "due=past") == {"acme_period", "beta_start", "beta_period"}


def test_the_sidebar_offers_the_customers_and_plans(admin_client, invoices):
    response = admin_client.get(LIST)

    html = response.content.decode()
    for choice in [
        '<a href="?customer=acme">Acme Inc (acme)</a>',
        '<a href="?customer=beta">Beta LLC (beta)</a>',
        '<a href="?plan=big">Big</a>',
        '<a href="?plan=flat">Flat</a>',
        '<a href="?due=past">Past due, unpaid</a>',
    ]:
        assert choice in html, choice


def test_the_customer_chosen_is_offered_beyond_the_listed_ones(admin_client, invoices, monkeypatch):
    from invoices.admin.invoices import CustomerFilter

    monkeypatch.setattr(CustomerFilter, "CHOICES", 1)

    html = admin_client.get(f"{LIST}?customer=gamma").content.decode()

    assert "Acme Inc (acme)" in html and "Gamma (gamma)" in html
    assert "Beta LLC (beta)" not in html


def test_an_invoice_page_is_read_only_and_a_posted_change_is_refused(admin_client, invoices):
    for name in ("acme_period", "gamma_start"):
        invoice = invoices[name]
        url = f"{LIST}{invoice.pk}/change/"

        page = admin_client.get(url).content.decode()
        response = admin_client.post(url, {"status": "draft", "total": "0", "currency": "EUR"})

        assert 'name="_save"' not in page
        assert response.status_code == 403
        before = (invoice.status, invoice.total, invoice.currency, invoice.number)
        invoice.refresh_from_db()
        assert (invoice.status, invoice.total, invoice.currency, invoice.number) == before


def test_the_actions_still_finalize_and_void(admin_client, invoices):
    draft = invoices["gamma_start"]

    admin_client.post(LIST, {"action": "finalize", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == Invoice.FINALIZED and draft.number

    admin_client.post(LIST, {"action": "void", "_selected_action": [draft.pk], "confirmed": "yes"})
    draft.refresh_from_db()
    assert draft.status == Invoice.VOID
    assert draft.credit_notes.get().total == D("9.00")


def test_finalize_is_refused_for_a_finalized_invoice(admin_client, invoices):
    invoice = invoices["beta_period"]

    response = admin_client.post(
        LIST, {"action": "finalize", "_selected_action": [invoice.pk]}, follow=True
    )

    assert "not a draft" in response.content.decode()
    number = invoice.number
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == (Invoice.FINALIZED, number)

"""The admin index's billing dashboard: live subscriptions, this month's billed
revenue, projected revenue of the current periods, drafts waiting, failed payments
and deferred credit revenue, with the clock set to November 16th, 2026."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import dashboard
from billing.invoicing.close import periods_close
from billing.models import Subscription
from billing.subscriptions.lifecycle import (
    subscription_cancel,
    subscription_change_plan,
    subscription_set_seats,
)
from billing.usage.ingestion import events_ingest
from customers.portal import portal_session_create
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import Invoice, InvoiceLine
from invoices.services import (
    invoice_finalize,
    invoice_mark_uncollectible,
    invoice_void,
    invoice_write_draft,
)
from invoices.settlement import invoice_mark_paid
from plans.rating import LineInput
from plans.validation import ChargeSpec
from tests.billing.test_mid_period_usage import NOV_16, NOV_25, tokens
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    SubscriptionFactory,
    api_client,
    gpt4o_tokens_meter,
    overage,
    per_unit,
    prompts_meter,
    published_version,
)
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_5 = datetime(2026, 10, 5, tzinfo=UTC)
OCT_15 = datetime(2026, 10, 15, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, tzinfo=UTC)
NOV_4 = datetime(2026, 11, 4, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
NOW = datetime(2026, 11, 16, tzinfo=UTC)


def plans() -> None:
    prompts_meter()
    published_version("assistant", base_fee=D("19.99"), charges=(overage("prompts", 200, "0.05"),))
    published_version("flat", base_fee=D("9.00"))
    published_version("team", currency="EUR", base_fee=D("10.00"), seat_price=D("5.00"))
    published_version("trial", base_fee=D("50.00"), trial_days=30)


def subscribe(external_id: str, plan: str, start: datetime, currency: str = "USD", **options):
    subscription = SubscriptionFactory(
        customer__external_id=external_id,
        customer__name=external_id.title(),
        customer__currency=currency,
        plan=plan,
        start=start,
        **options,
    )
    return subscription.customer, subscription


def start_invoice(subscription) -> Invoice:
    return Invoice.objects.get(subscription=subscription, reason=Invoice.START)


def standalone(customer, amount: str, at: datetime) -> Invoice:
    return invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=at,
        period_end=at + timedelta(days=1),
        lines=[LineInput("base_fee", "Extra", None, D(1), D(amount), D(amount))],
        now=at,
    )


@pytest.fixture
def book(db, settings):
    """At November 16th, every invoice due on receipt (payment terms 0):

    - acme: assistant (19.99, 200 prompts included, 0.05 over) from Nov 1, 300
      prompts in 15 days; its start invoice finalized Nov 2, unpaid (past due);
      99.00 of paid credits bought and paid Nov 5; a 4.00 invoice voided;
    - beta: flat (9.00) from Nov 1, start invoice paid; 40.00 of credits bought in
      October that expired unused Nov 10; a 7.50 invoice uncollectible; a 5.00
      draft written Nov 3;
    - gamma: team (EUR 10.00 + 3 seats at 5.00) from Nov 1, finalized, unpaid;
    - delta: trial (30 days) from Nov 1: trialing;
    - zeta: flat, calendar-anchored from Nov 10 (first period 21 of 30 days), its
      start invoice still a draft;
    - epsilon: flat from Oct 1, cancelled Oct 15 (no usage: no cancel invoice, its
      unused time a credit note against its start invoice), that invoice paid in
      October."""
    settings.BILLING_PAYMENT_TERMS_DAYS = 0
    plans()
    _, subscription = subscribe("epsilon", "flat", OCT_1)
    with time_machine.travel(OCT_15, tick=False):
        _, cancel_invoice = subscription_cancel(
            subscription=subscription, effective="immediate", at=OCT_15
        )
    assert cancel_invoice is None
    with time_machine.travel(OCT_20, tick=False):
        invoice_mark_paid(invoice=start_invoice(subscription), reference="bank", now=OCT_20)

    acme, acme_subscription = subscribe("acme", "assistant", NOV_1)
    beta, beta_subscription = subscribe("beta", "flat", NOV_1)
    _, gamma_subscription = subscribe("gamma", "team", NOV_1, currency="EUR", seats=3)
    subscribe("delta", "trial", NOV_1)
    subscribe("zeta", "flat", NOV_10, billing_anchor=Subscription.CALENDAR)

    # Each document issued on its day: the clock moved there (invoices.issue_dates).
    with time_machine.travel(NOV_2, tick=False):
        invoice_finalize(invoice=start_invoice(acme_subscription), now=NOV_2)
        beta_start = invoice_finalize(invoice=start_invoice(beta_subscription), now=NOV_2)
        invoice_finalize(invoice=start_invoice(gamma_subscription), now=NOV_2)
    with time_machine.travel(NOV_3, tick=False):
        invoice_mark_paid(invoice=beta_start, reference="bank", now=NOV_3)
        given_up = invoice_finalize(invoice=standalone(beta, "7.50", NOV_3), now=NOV_3)
        voided = invoice_finalize(invoice=standalone(acme, "4.00", NOV_3), now=NOV_3)
    with time_machine.travel(NOV_4, tick=False):
        invoice_mark_uncollectible(invoice=given_up, now=NOV_4)
        invoice_void(invoice=voided, reason="billed twice", now=NOV_4)
    standalone(beta, "5.00", NOV_3)

    with time_machine.travel(OCT_5, tick=False):
        _, october_credits = credits_grant(
            customer=beta,
            credits=D(50),
            kind=CreditBlock.PAID,
            price=D("40.00"),
            expires_at=NOV_10,
            now=OCT_5,
        )
        invoice_mark_paid(invoice=october_credits, reference="card", now=OCT_5)
    with time_machine.travel(NOV_5, tick=False):
        _, november_credits = credits_grant(
            customer=acme, credits=D(100), kind=CreditBlock.PAID, price=D("99.00"), now=NOV_5
        )
        invoice_mark_paid(invoice=november_credits, reference="card", now=NOV_5)
    credits_expire(now=NOV_10)

    events = [
        {
            "id": f"p{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": (NOV_1 + timedelta(days=i % 15, hours=1)).isoformat(),
        }
        for i in range(300)
    ]
    assert events_ingest(events=events, now=NOW).accepted == 300


def amounts(rows) -> list[tuple]:
    return [(row.currency, row.amount, row.count) for row in rows]


def test_the_index_shows_billing_at_a_glance(admin_client, book):
    with time_machine.travel(NOW, tick=False):
        response = admin_client.get("/admin/")

    assert response.status_code == 200
    figures = response.context["dashboard"]
    assert (figures.active, figures.trialing) == (4, 1)
    # acme's start 19.99, beta's start 9.00 and acme's credits 99.00; gamma's EUR
    # 25.00. Not: October's, the voided 4.00, the uncollectible 7.50, drafts.
    assert amounts(figures.billed_this_month) == [
        ("EUR", D("25.00"), 1),
        ("USD", D("127.99"), 3),
    ]
    # USD: acme 19.99 + 600 prompts projected (300 in half the period), 400 over at
    # 0.05 = 20.00; beta 9.00; zeta 9.00 x 21/30 = 6.30; delta's trial nothing.
    # EUR: gamma 10.00 + 3 x 5.00.
    assert [(p.currency, p.subscriptions, p.total) for p in figures.projected] == [
        ("EUR", 1, D("25.00")),
        ("USD", 4, D("55.29")),
    ]
    assert figures.projection_note is None
    assert (figures.drafts, figures.oldest_draft_at) == (2, NOV_3)
    problems = {p.label: (p.count, amounts(p.totals)) for p in figures.payment_problems}
    assert problems == {
        "Uncollectible": (1, [("USD", D("7.50"), 1)]),
        "Past due, unpaid": (2, [("EUR", D("25.00"), 1), ("USD", D("19.99"), 1)]),
    }
    # October's 40.00 expired unused (breakage): what is owed is November's 99.00.
    assert [(r.currency, r.month, r.amount) for r in figures.deferred_credit_revenue] == [
        ("USD", date(2026, 11, 1), D("99.00"))
    ]

    html = response.content.decode()
    for shown in [
        '<td class="figure" id="subscriptions-active">4</td>',
        '<td class="figure" id="subscriptions-trialing">1</td>',
        "Billed in November 2026 (UTC)",
        "127.99 USD",
        "55.29 USD",
        "25.00 EUR",
        '<td class="figure" id="drafts-count">2</td>',
        "3 Nov 2026, 00:00 UTC",
        "1; 7.50 USD",
        "2; 25.00 EUR; 19.99 USD",
        "USD, end of November 2026",
        "99.00 USD",
        "/admin/invoices/invoice/?due=past",
    ]:
        assert shown in html, shown
    # The admin's own index is still there below.
    assert 'id="recent-actions-module"' in html
    assert "/admin/invoices/invoice/" in html


def test_the_failed_payments_link_lists_the_past_due_invoices(admin_client, book):
    with time_machine.travel(NOW, tick=False):
        response = admin_client.get("/admin/invoices/invoice/?due=past")

    listed = {(i.customer.external_id, i.total) for i in response.context["cl"].result_list}
    assert listed == {("acme", D("19.99")), ("gamma", D("25.00"))}


def test_beyond_the_rating_limit_usage_is_not_projected(admin_client, book, monkeypatch):
    monkeypatch.setattr(dashboard, "PROJECTION_RATING_LIMIT", 0)

    with time_machine.travel(NOW, tick=False):
        response = admin_client.get("/admin/")

    figures = response.context["dashboard"]
    usd = figures.projected[1]
    # The fixed fees only: 19.99 + 9.00 + 6.30; acme's usage is not rated.
    assert (usd.currency, usd.total, usd.committed, usd.unrated) == ("USD", None, D("35.29"), 1)
    assert figures.projected[0].total == D("25.00")  # EUR prices no usage
    assert (
        "1 subscriptions price their usage, changed plan in their period or have a deal or a "
        "discount: too many to rate" in figures.projection_note
    )
    html = response.content.decode()
    assert "fixed fees 35.29 USD; usage of 1 not projected" in html
    assert "see the close benchmark (bench/close.py)" in html


def test_queries_do_not_grow_with_subscriptions_whose_usage_is_not_priced(book):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            dashboard.dashboard_figures(now=NOW)
        return len(captured)

    before = queries()
    for n in range(5):
        subscribe(f"more{n}", "flat", NOV_1)
        subscribe(f"trial{n}", "trial", NOV_1)
    after = queries()

    assert after == before
    figures = dashboard.dashboard_figures(now=NOW)
    assert (figures.active, figures.trialing) == (9, 6)
    assert figures.projected[1].total == D("55.29") + 5 * D("9.00")


def staff(username: str, *permissions: str) -> User:
    user = User.objects.create_user(username=username, password="x", is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def test_the_dashboard_is_for_invoice_viewers_and_credit_revenue_for_its_readers(client, book):
    client.force_login(staff("support", "invoices.view_invoice"))
    with time_machine.travel(NOW, tick=False):
        response = client.get("/admin/")
    figures = response.context["dashboard"]
    assert figures.billed_this_month and figures.deferred_credit_revenue is None
    assert 'id="dashboard-deferred"' not in response.content.decode()

    client.force_login(staff("nobody"))
    with time_machine.travel(NOW, tick=False):
        response = client.get("/admin/")
    assert response.status_code == 200
    assert response.context["dashboard"] is None
    assert 'id="billing-dashboard"' not in response.content.decode()


def test_the_index_still_needs_a_staff_login(client):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_empty_book(admin_client):
    with time_machine.travel(NOW, tick=False):
        response = admin_client.get("/admin/")

    figures = response.context["dashboard"]
    assert (figures.active, figures.trialing, figures.drafts) == (0, 0, 0)
    assert figures.billed_this_month == figures.projected == []
    html = response.content.decode()
    assert "No invoice issued this month." in html
    assert "No live subscription." in html
    assert "No paid credits yet." in html


def test_a_first_partial_calendar_period_is_projected_as_the_close_bills_it(db):
    """Rule: projected revenue counts a calendar subscription's first partial period
    (Nov 16 12:00 to Dec 1, 14.5 of November's 30 days) as the close bills it, fixed
    fees and minimum commitment for 14.5/30 of a month. At Nov 24 (7.5 of its 14.5
    days gone):
    - committed: 300.00 committed, 50,000 calls at 0.001 projected to 96.67, short
      of 300.00 x 14.5/30 = 145.00: 145.00;
    - flat_committed: 20.00 x 14.5/30 = 9.67 and 100.00 x 14.5/30 = 48.33: 58.00;
    - metered: 20.00 x 14.5/30 = 9.67 and 100 prompts at 0.01 projected to 193.33
      (1.93): 11.60."""
    # given
    prompts_meter()
    MeterFactory(
        code="api_calls",
        name="API calls",
        event_name="api.call",
        aggregation="sum",
        value_property="n",
    )
    published_version(
        "committed",
        minimum_commitment=D("300.00"),
        charges=(ChargeSpec("api_calls", "overage", pricing=per_unit("0.001")),),
    )
    published_version("flat_committed", base_fee=D("20.00"), minimum_commitment=D("100.00"))
    published_version(
        "metered",
        base_fee=D("20.00"),
        charges=(ChargeSpec("prompts", "overage", pricing=per_unit("0.01")),),
    )
    start = datetime(2026, 11, 16, 12, tzinfo=UTC)
    now = datetime(2026, 11, 24, tzinfo=UTC)
    for code in ("committed", "flat_committed", "metered"):
        subscribe(code, code, start, billing_anchor=Subscription.CALENDAR)
    used = datetime(2026, 11, 20, tzinfo=UTC).isoformat()
    events = [
        {
            "id": "c1",
            "customer": "committed",
            "event_name": "api.call",
            "timestamp": used,
            "properties": {"n": 50_000},
        },
    ] + [
        {"id": f"p{i}", "customer": "metered", "event_name": "prompt", "timestamp": used}
        for i in range(100)
    ]
    assert events_ingest(events=events, now=now).accepted == 101

    # when
    projected, note = dashboard.projected_revenue(now=now)

    # then
    assert note is None
    assert [(p.currency, p.subscriptions, p.committed, p.usage, p.total) for p in projected] == [
        ("USD", 3, D("67.67"), D("146.93"), D("214.60"))
    ]


def test_after_an_immediate_plan_change_the_projection_is_the_one_usage_reads(client):
    """Rule: one projection formula, one figure. As in
    tests.billing.test_mid_period_usage, acme moves on 16 Nov from chat v1 (30.00,
    100,000 tokens included, 0.00002 beyond; 300,000 used) to v2 (45.00, 0.00001
    beyond), then uses 250,000. At 25 Nov its projection is the one /usage and the
    portal show: the fees of v1's 15 days (15.00) and v2's (22.50), the 4.00 of
    usage on the plan-change invoice, and the usage since the change at v2: 250,000
    in 9 of its 15 days, 416,666.67 projected, 316,666.67 beyond at 0.00001 = 3.17;
    44.67. globex moves the same day from a flat plan of EUR 9.00 to 12.00, which
    prices no usage: 4.50 + 6.00 = 10.50, not a whole period at 12.00."""
    # given
    gpt4o_tokens_meter("input")
    chat = published_version(
        "chat", base_fee=D("30.00"), charges=(overage("gpt4o_input_tokens", 100_000, "0.00002"),)
    )
    chat_v2 = PlanVersionFactory(
        plan=chat.plan,
        base_fee=D("45.00"),
        charges=(overage("gpt4o_input_tokens", 100_000, "0.00001"),),
    )
    flat = published_version("flat_eur", currency="EUR", base_fee=D("9.00"))
    flat_v2 = PlanVersionFactory(plan=flat.plan, currency="EUR", base_fee=D("12.00"))
    acme = CustomerFactory(external_id="acme")
    globex = CustomerFactory(external_id="globex", currency="EUR")
    on_chat = SubscriptionFactory(customer=acme, plan=chat, start=NOV_1)
    on_flat = SubscriptionFactory(customer=globex, plan=flat, start=NOV_1)
    tokens("acme", 300_000, NOV_5, "before")
    for subscription, version in ((on_chat, chat_v2), (on_flat, flat_v2)):
        subscription_change_plan(
            subscription=subscription, version=version, effective="immediate", at=NOV_16
        )
    tokens("acme", 250_000, datetime(2026, 11, 20, tzinfo=UTC), "after")

    # when
    projected, note = dashboard.projected_revenue(now=NOV_25)
    with time_machine.travel(NOV_25, tick=False):
        usage = api_client("read").get("/api/v1/customers/acme/usage").json()
        token = portal_session_create(customer=acme, now=NOV_25).token
        portal = client.get(f"/portal/{token}/").context

    # then
    assert note is None
    assert [(p.currency, p.subscriptions, p.committed, p.usage, p.total) for p in projected] == [
        ("EUR", 1, D("10.50"), D(0), D("10.50")),
        ("USD", 1, D("41.50"), D("3.17"), D("44.67")),
    ]
    assert usage["projected_total"] == portal["projected_total"] == "44.67"


def test_billed_this_month_is_net_of_credit_notes_with_the_gross_beside_it(admin_client):
    """Issue 55: "Billed in November" counted invoices gross of their credit notes."""
    # given: in November, 100.00 and 50.00 issued, 30.00 of the first credited, the
    # second paid; a 20.00 one voided (its credit note with it); October's 70.00
    # credited 10.00 in November (another month's invoice: not this month's)
    # (each document issued on its day: the clock moved there, invoices.issue_dates)
    customer = CustomerFactory(external_id="acme", currency="USD")

    def issued(amount: str, at: datetime):
        with time_machine.travel(at, tick=False):
            return invoice_finalize(invoice=standalone(customer, amount, at), now=at)

    october = issued("70.00", OCT_5)
    first = issued("100.00", NOV_2)
    second = issued("50.00", NOV_3)
    voided = issued("20.00", NOV_4)
    with time_machine.travel(NOV_5, tick=False):
        for invoice, amount in ((first, "30.00"), (october, "10.00")):
            (line,) = invoice.lines.all()
            credit_note_issue(
                invoice=invoice,
                lines=[CreditLineInput(line.pk, D(amount))],
                reason="other",
                now=NOV_5,
            )
        invoice_mark_paid(invoice=second, reference="bank", now=NOV_5)
        invoice_void(invoice=voided, reason="billed twice", now=NOV_5)

    # when
    with time_machine.travel(NOW, tick=False):
        response = admin_client.get("/admin/")

    # then: net 120.00 = 150.00 gross - 30.00 of credit notes, from one function
    (row,) = response.context["dashboard"].billed_this_month
    assert (row.currency, row.gross, row.credited, row.amount, row.count) == (
        "USD",
        D("150.00"),
        D("30.00"),
        D("120.00"),
        2,
    )
    assert row.amount == row.gross - row.credited
    html = " ".join(response.content.decode().split())
    assert "Billed in November 2026 (UTC), net of credit notes" in html
    assert (
        '<span class="billed-net">120.00 USD</span> <span class="help '
        'billed-gross">invoiced 150.00 USD, less credit notes 30.00 USD</span>'
    ) in html


# Issue 93: the dashboard's share of a first calendar period is the period
# statement's; these read it and then close the period.
PARIS_NOV_10 = datetime(2026, 11, 10, 8, 30, tzinfo=UTC)  # 09:30 in Paris
PARIS_NOV_30 = datetime(2026, 11, 30, 23, tzinfo=UTC)  # 1 Dec 00:00 in Paris


def paris_calendar_subscription() -> Subscription:
    """20.00 a month and 3 seats at 10.00, no usage priced; a Paris customer's
    calendar subscription from 10 Nov 09:30 (local): its first period runs to the
    end of Paris's November, 494.5 of its 720 hours."""
    version = published_version("seats-only", base_fee=D("20.00"), seat_price=D("10.00"))
    customer = CustomerFactory(external_id="paris", timezone_name="Europe/Paris")
    subscription = SubscriptionFactory(
        customer=customer,
        plan=version,
        start=PARIS_NOV_10,
        seats=3,
        billing_anchor=Subscription.CALENDAR,
    )
    assert (subscription.current_period_start, subscription.current_period_end) == (
        PARIS_NOV_10,
        PARIS_NOV_30,
    )
    return subscription


def period_billed(subscription, start: datetime, end: datetime) -> D:
    """What the subscription's invoices bill for service in [start, end)."""
    lines = InvoiceLine.objects.filter(
        invoice__subscription=subscription, period_start__gte=start, period_end__lte=end
    ).exclude(invoice__status=Invoice.VOID)
    return sum(lines.values_list("amount", flat=True), D(0))


def test_a_first_calendar_period_on_fixed_fees_is_projected_as_its_invoices_bill_it(
    db, monkeypatch
):
    """Rule: 494.5/720 of a month, grouped (no subscription rated one by one): the
    base fee 20.00 x 494.5/720 = 13.74 and 3 seats at 10.00 x 494.5/720 = 20.60,
    34.34 (not 50.00), and the period's invoices bill 34.34."""
    # given
    subscription = paris_calendar_subscription()

    def not_rated(**_):
        raise AssertionError("a fixed-fee subscription is projected by its group")

    monkeypatch.setattr(dashboard, "usage_summary", not_rated)

    # when
    projected, note = dashboard.projected_revenue(now=NOV_25)

    # then
    assert note is None
    assert [(p.currency, p.subscriptions, p.committed, p.usage, p.total) for p in projected] == [
        ("USD", 1, D("34.34"), D(0), D("34.34"))
    ]
    periods_close(as_of=PARIS_NOV_30)
    assert period_billed(subscription, PARIS_NOV_10, PARIS_NOV_30) == D("34.34")


def test_a_seat_change_in_a_first_calendar_period_is_projected_as_its_invoices_bill_it(db):
    """Rule: 3 seats to 5 on 20 Nov 00:00 UTC, 263 of the month's 720 hours before
    its end: the start invoice's 34.34 and 2 seats x 10.00 x 263/720 = 7.31 at the
    close, 41.65 (not 5 seats for the whole first period, 48.08)."""
    # given
    subscription = paris_calendar_subscription()
    subscription_set_seats(subscription=subscription, seats=5, at=NOV_20)

    # when
    projected, note = dashboard.projected_revenue(now=NOV_25)

    # then
    assert note is None
    assert [(p.currency, p.subscriptions, p.committed, p.usage, p.total) for p in projected] == [
        ("USD", 1, D("41.65"), D(0), D("41.65"))
    ]
    periods_close(as_of=PARIS_NOV_30)
    assert period_billed(subscription, PARIS_NOV_10, PARIS_NOV_30) == D("41.65")

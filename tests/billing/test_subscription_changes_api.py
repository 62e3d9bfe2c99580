"""Plan changes, cancellation and seat changes through the API (S10 and the rules
around it), with the invoices they write and the close that follows, time set
explicitly. A refused request changes nothing."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from billing.models import BilledPeriod, Subscription, SubscriptionChange
from billing.usage.ingestion import events_ingest
from invoices.models import CreditNote, Invoice, InvoiceLine
from plans.models import PlanVersion
from plans.validation import ChargeSpec
from tests.factories import PlanVersionFactory, overage, prompts_meter, published_version

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def without_ids(lines: list[dict]) -> list[dict]:
    return [{key: value for key, value in line.items() if key != "id"} for line in lines]


def prompts_at(price: str) -> tuple[ChargeSpec, ...]:
    return (overage("prompts", 0, price),)


def made_catalog() -> None:
    """S10's plans (starter 20.00, pro 50.00 a month; prompts at 0.01 and 0.005),
    a draft version 2 of pro, a plan in EUR and a plan priced per seat."""
    prompts_meter()
    published_version("starter", base_fee=D("20.00"), charges=prompts_at("0.01"))
    pro = published_version("pro", base_fee=D("50.00"), charges=prompts_at("0.005"))
    PlanVersionFactory(plan=pro.plan, base_fee=D("60.00"), status=PlanVersion.DRAFT)
    published_version("euro_pro", currency="EUR", base_fee=D("50.00"))
    published_version("team", seat_price=D("10.00"))
    published_version("team_trial", seat_price=D("10.00"), trial_days=14)
    published_version("team_plus", seat_price=D("20.00"))


@pytest.fixture(scope="module")
def _catalog_once(module_transaction):
    return module_transaction.once(made_catalog, "catalog")


@pytest.fixture
def catalog(_catalog_once, acme):
    """made_catalog, made once for this module (tests/shared_rows.py), and acme."""
    return _catalog_once.for_test()


def subscribe(api, plan_code: str = "starter", **body) -> dict:
    response = api.post(
        "/api/v1/subscriptions",
        {"customer": "acme", "plan": plan_code, "start": "2026-11-01T00:00:00Z", **body},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def prompts(count: int, *, day: datetime, prefix: str) -> None:
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": day.isoformat(),
        }
        for i in range(count)
    ]
    assert not events_ingest(events=events, now=day).rejected


def post(api, path: str, body: dict, *, at: datetime = NOV_16):
    with time_machine.travel(at, tick=False):
        return api.post(path, body, format="json")


def patch(api, subscription_id: int, body: dict, *, at: datetime = NOV_16):
    with time_machine.travel(at, tick=False):
        return api.patch(f"/api/v1/subscriptions/{subscription_id}", body, format="json")


def close(as_of: datetime) -> str:
    out = StringIO()
    with time_machine.travel(as_of, tick=False):
        call_command("close_periods", "--as-of", as_of.isoformat(), stdout=out)
    return out.getvalue()


def billing_state() -> dict:
    """Everything a subscription change may write, to show a refusal wrote nothing."""
    models = (Subscription, SubscriptionChange, Invoice, InvoiceLine, CreditNote, BilledPeriod)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "subscriptions": list(
            Subscription.objects.order_by("id").values_list(
                "version_id",
                "seats",
                "status",
                "scheduled_version_id",
                "cancel_at_period_end",
                "usage_from",
                "current_period_start",
                "current_period_end",
                "canceled_at",
            )
        ),
        "invoices": list(
            Invoice.objects.order_by("id").values_list("status", "number", "total", "subtotal")
        ),
    }


def invoice_body(api, invoice: Invoice) -> dict:
    return api.get(f"/api/v1/invoices/{invoice.pk}").json()


def line_amounts(body: dict) -> list[tuple[str, str]]:
    return [(line["kind"], line["amount"]) for line in body["lines"]]


def closing_invoice(period_start: datetime = NOV_1) -> Invoice:
    return Invoice.objects.get(reason="period", period_start=period_start)


def assert_refused(response, status: int, error_type: str, field: str | None) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["type"] == error_type
    if field is not None:
        assert field in error["fields"], error


# change-plan: S10


def test_s10_immediate_upgrade_answers_the_subscription_and_its_proration_invoice(api, catalog):
    # given: starter from November 1st, invoiced 20.00 in advance
    subscription = subscribe(api)
    assert Invoice.objects.get(reason="start").total == D("20.00")

    # when: an immediate change to pro on the 16th (15 of 30 days left), no usage yet
    response = post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        {"plan": "pro", "effective": "immediate", "at": "2026-11-16T00:00:00Z"},
    )

    # then: the subscription is on pro, its period unchanged
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("id", "plan", "version", "status", "seats")} == {
        "id": subscription["id"],
        "plan": "pro",
        "version": 1,
        "status": "active",
        "seats": 1,
    }
    assert (body["current_period_start"], body["current_period_end"]) == (
        "2026-11-01T00:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    # and the invoice charges the rest of the period on pro (API v1.3: the credit
    # for unused starter time is a credit note, not a negative line)
    invoice = body["invoice"]
    assert without_ids(invoice["lines"]) == [
        {
            "kind": "proration_charge",
            "description": "Remaining time on Pro (v1), 16 Nov \u2013 30 Nov 2026, 0.5 of Nov 2026",
            "meter": None,
            "quantity": "0.5",
            "unit_price": "50.00",
            "per": "1",
            "amount": "25.00",
            "share": "0.5000",
        },
    ]
    assert {
        k: invoice[k]
        for k in ("reason", "status", "number", "currency", "subtotal", "total", "period_start")
    } == {
        "reason": "plan_change",
        "status": "draft",
        "number": None,
        "currency": "USD",
        "subtotal": "25.00",
        "total": "25.00",
        "period_start": "2026-11-16T00:00:00Z",
    }
    # and the unused starter time, 10.00, is a credit note against the start
    # invoice (finalized first), off its amount due: 15.00 net, as S10 says
    note = body["credit_note"]
    start = Invoice.objects.get(reason="start")
    assert (start.status, note["invoice"], note["applied_to"]) == ("finalized", start.pk, "invoice")
    assert [(line["description"], line["amount"]) for line in note["lines"]] == [
        ("Unused time on Starter (v1), 16 Nov \u2013 30 Nov 2026, 0.5 of Nov 2026", "10.00")
    ]
    assert (note["total"], invoice_body(api, start)["amount_due"]) == ("10.00", "10.00")
    change = SubscriptionChange.objects.get(kind="plan_change")
    assert (change.how, change.effective_at, change.to_version.plan.code) == (
        "immediate",
        NOV_16,
        "pro",
    )

    # when: pro usage after the change, then the close at December 1st
    prompts(200, day=datetime(2026, 11, 20, tzinfo=UTC), prefix="p")
    output = close(DEC_1)

    # then: pro usage at pro prices and December's base fee of pro
    assert output.startswith("closed 1 period(s), finalized 2 invoice(s)")
    december = invoice_body(api, closing_invoice())
    assert [(line["kind"], line["description"], line["amount"]) for line in december["lines"]] == [
        ("overage", "Prompts over 0 included", "1.00"),
        ("base_fee", "Pro (Dec 2026)", "50.00"),
    ]
    assert december["total"] == "51.00"
    assert Invoice.objects.get(reason="plan_change").status == "finalized"


def test_s10_change_at_period_end_changes_nothing_now_and_the_close_applies_it(api, catalog):
    # given: starter, 100 prompts in November
    subscription = subscribe(api)
    prompts(100, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="p")
    before = billing_state()

    # when
    response = post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        {"plan": "pro", "effective": "period_end"},
    )

    # then: nothing invoiced, still on starter, the change scheduled for the period's end
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["plan"], body["invoice"]) == ("starter", None)
    after = billing_state()
    assert after["invoices"] == before["invoices"]
    assert after["rows"] == before["rows"] | {"SubscriptionChange": 2}
    change = SubscriptionChange.objects.get(kind="plan_change")
    assert (change.how, change.effective_at) == ("period_end", DEC_1)

    # when: the close at December 1st
    output = close(DEC_1)

    # then: November's usage at starter prices, December's base fee at pro's
    assert output.startswith("closed 1 period(s)")
    december = invoice_body(api, closing_invoice())
    assert line_amounts(december) == [("overage", "1.00"), ("base_fee", "50.00")]
    assert december["lines"][1]["description"] == "Pro (Dec 2026)"
    body = api.get(f"/api/v1/subscriptions/{subscription['id']}").json()
    assert (body["plan"], body["current_period_start"]) == ("pro", "2026-12-01T00:00:00Z")


CHANGE = {"plan": "pro", "effective": "immediate", "at": "2026-11-16T00:00:00Z"}


@pytest.mark.parametrize(
    ("changes", "status", "error_type", "field"),
    [
        pytest.param({"plan": "enterprise"}, 400, "invalid_request", "plan", id="unknown-plan"),
        pytest.param({"version": 2}, 409, "conflict", "version", id="draft-version"),
        pytest.param({"version": 7}, 400, "invalid_request", "version", id="no-such-version"),
        pytest.param({"plan": "euro_pro"}, 400, "invalid_request", "plan", id="other-currency"),
        pytest.param(
            {"at": "2026-12-01T00:00:00Z"}, 400, "invalid_request", "at", id="at-period-end"
        ),
        pytest.param(
            {"at": "2026-10-31T23:59:59Z"}, 400, "invalid_request", "at", id="at-before-period"
        ),
        pytest.param({"at": "2026-11-16T00:00:00"}, 400, "invalid_request", "at", id="at-naive"),
        pytest.param({"at": "mid-month"}, 400, "invalid_request", "at", id="at-not-a-time"),
        pytest.param(
            {"effective": "tomorrow"}, 400, "invalid_request", "effective", id="effective"
        ),
        pytest.param({"plan": "starter"}, 409, "conflict", None, id="same-version-immediately"),
    ],
)
def test_refused_plan_changes_change_nothing(api, catalog, changes, status, error_type, field):
    subscription = subscribe(api)
    before = billing_state()

    response = post(
        api, f"/api/v1/subscriptions/{subscription['id']}/change-plan", CHANGE | changes
    )

    assert_refused(response, status, error_type, field)
    assert billing_state() == before


def test_a_change_without_effective_is_refused(api, catalog):
    subscription = subscribe(api)
    before = billing_state()

    response = post(api, f"/api/v1/subscriptions/{subscription['id']}/change-plan", {"plan": "pro"})

    assert_refused(response, 400, "invalid_request", "effective")
    assert billing_state() == before


@pytest.mark.parametrize("effective", ["immediate", "period_end"])
def test_a_canceled_subscription_cannot_change_plan(api, catalog, effective):
    subscription = subscribe(api)
    canceled = post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/cancel",
        {"effective": "immediate", "at": "2026-11-10T00:00:00Z"},
    )
    assert canceled.json()["status"] == "canceled"
    before = billing_state()

    response = post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        CHANGE | {"effective": effective},
    )

    assert_refused(response, 409, "conflict", None)
    assert billing_state() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/change-plan", CHANGE),
        ("post", "/cancel", {"effective": "immediate"}),
        ("patch", "", {"seats": 5}),
        ("get", "", None),
    ],
)
def test_an_unknown_subscription_is_not_found(api, catalog, method, path, body):
    subscription = subscribe(api)
    before = billing_state()

    with time_machine.travel(NOV_16, tick=False):
        response = getattr(api, method)(
            f"/api/v1/subscriptions/{subscription['id'] + 1}{path}", body, format="json"
        )

    assert_refused(response, 404, "not_found", None)
    assert billing_state() == before


def test_two_immediate_changes_bill_each_change(api, catalog):
    # given: starter to pro on the 16th: 25.00 for pro, 10.00 credited on the start invoice
    subscription = subscribe(api)
    url = f"/api/v1/subscriptions/{subscription['id']}/change-plan"
    first = post(api, url, CHANGE).json()
    assert (first["invoice"]["total"], first["credit_note"]["total"]) == ("25.00", "10.00")

    # when: back to starter on the 21st (10 of 30 days left)
    response = post(api, url, CHANGE | {"plan": "starter", "at": "2026-11-21T00:00:00Z"})

    # then: starter charged for the last 10 days; the unused pro time credited by a
    # credit note against the invoice that charged it (the first change's)
    body = response.json()
    assert body["plan"] == "starter"
    assert line_amounts(body["invoice"]) == [("proration_charge", "6.67")]
    assert body["invoice"]["total"] == "6.67"
    note = body["credit_note"]
    assert (note["invoice"], note["total"], note["applied_to"]) == (
        first["invoice"]["id"],
        "16.67",
        "invoice",
    )
    assert invoice_body(api, Invoice.objects.get(pk=note["invoice"]))["amount_due"] == "8.33"

    # and no invoice is ever negative; the close bills December in full
    close(DEC_1)
    assert not Invoice.objects.filter(total__lt=0).exists()
    period = Invoice.objects.get(reason="period")
    assert (period.total, period.credits_applied, period.amount_due) == (
        D("20.00"),
        D("0.00"),
        D("20.00"),
    )


def test_a_second_immediate_change_at_the_same_time_is_billed_or_refused(api, catalog):
    # given: starter to pro at 2026-11-16T00:00:00Z (credit -10.00, charge 25.00)
    subscription = subscribe(api)
    url = f"/api/v1/subscriptions/{subscription['id']}/change-plan"
    first = post(api, url, CHANGE).json()["invoice"]
    before = billing_state()

    # when: back to starter at the same instant
    response = post(api, url, CHANGE | {"plan": "starter"})

    # then: either refused, changing nothing, or billed on an invoice of its own
    # (pro's 25.00 credited, starter's 10.00 charged), never answered with the first one
    if response.status_code == 409:
        assert billing_state() == before
        return
    body = response.json()
    assert body["plan"] == "starter"
    assert body["invoice"]["id"] != first["id"]
    assert line_amounts(body["invoice"]) == [
        ("proration_credit", "-25.00"),
        ("proration_charge", "10.00"),
    ]


# cancel


def test_cancel_at_period_end_changes_nothing_now_and_the_close_ends_it(api, catalog):
    # given: starter, 100 prompts in November (1.00 at 0.01)
    subscription = subscribe(api)
    prompts(100, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="p")
    before = billing_state()

    # when
    response = post(
        api, f"/api/v1/subscriptions/{subscription['id']}/cancel", {"effective": "period_end"}
    )

    # then: still active, nothing invoiced now, a history row for the period's end
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["canceled_at"], body["ended_at"], body["invoice"]) == (
        "active",
        None,
        None,
        None,
    )
    assert billing_state()["invoices"] == before["invoices"]
    change = SubscriptionChange.objects.get(kind="cancel")
    assert (change.how, change.effective_at) == ("period_end", DEC_1)

    # when: the close at December 1st
    close(DEC_1)

    # then: it ends, billed for November's usage and no further base fee
    body = api.get(f"/api/v1/subscriptions/{subscription['id']}").json()
    assert (body["status"], body["ended_at"]) == ("ended", "2026-12-01T00:00:00Z")
    last = invoice_body(api, closing_invoice())
    assert (line_amounts(last), last["total"], last["status"]) == (
        [("overage", "1.00")],
        "1.00",
        "finalized",
    )
    # and a later close bills nothing more
    assert close(datetime(2027, 1, 2, tzinfo=UTC)).startswith("closed 0 period(s)")
    assert Invoice.objects.count() == 2


def test_cancel_immediately_bills_usage_so_far_and_credits_the_unused_part(api, catalog):
    # given: starter, 100 prompts by the 10th
    subscription = subscribe(api)
    prompts(100, day=datetime(2026, 11, 10, tzinfo=UTC), prefix="p")

    # when: canceled on the 16th (15 of 30 days unused)
    response = post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/cancel",
        {"effective": "immediate", "at": "2026-11-16T00:00:00Z"},
    )

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["canceled_at"], body["ended_at"]) == (
        "canceled",
        "2026-11-16T00:00:00Z",
        "2026-11-16T00:00:00Z",
    )
    # the cancel's invoice bills the usage so far; the unused time is a credit note
    # of 10.00 against the start invoice, never a negative invoice
    invoice = body["invoice"]
    assert [(line["kind"], line["quantity"], line["amount"]) for line in invoice["lines"]] == [
        ("overage", "100", "1.00"),
    ]
    assert (invoice["reason"], invoice["total"]) == ("cancel", "1.00")
    note = body["credit_note"]
    assert (note["invoice_number"], note["total"], note["applied_to"]) == (
        Invoice.objects.get(reason="start").number,
        "10.00",
        "invoice",
    )
    change = SubscriptionChange.objects.get(kind="cancel")
    assert (change.how, change.effective_at) == ("immediate", NOV_16)

    # and usage after the cancellation is stored but never billed; no period closes
    prompts(50, day=datetime(2026, 11, 20, tzinfo=UTC), prefix="late")
    assert close(DEC_1).startswith("closed 0 period(s), finalized 1 invoice(s)")
    assert set(Invoice.objects.values_list("reason", flat=True)) == {"start", "cancel"}


@pytest.mark.parametrize("second", ["immediate", "period_end"])
def test_canceling_twice_is_refused(api, catalog, second):
    subscription = subscribe(api)
    url = f"/api/v1/subscriptions/{subscription['id']}/cancel"
    assert post(api, url, {"effective": "immediate"}).status_code == 200
    before = billing_state()

    response = post(api, url, {"effective": second}, at=datetime(2026, 11, 17, tzinfo=UTC))

    assert_refused(response, 409, "conflict", None)
    assert billing_state() == before


def test_an_ended_subscription_cannot_be_canceled(api, catalog):
    subscription = subscribe(api)
    url = f"/api/v1/subscriptions/{subscription['id']}/cancel"
    assert post(api, url, {"effective": "period_end"}).status_code == 200
    close(DEC_1)
    before = billing_state()

    response = post(api, url, {"effective": "immediate"}, at=datetime(2026, 12, 2, tzinfo=UTC))

    assert_refused(response, 409, "conflict", None)
    assert billing_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"effective": "tomorrow"}, "effective"),
        ({}, "effective"),
        ({"effective": "immediate", "at": "2026-12-01T00:00:00Z"}, "at"),
        ({"effective": "immediate", "at": "2026-11-16T00:00:00"}, "at"),
    ],
)
def test_refused_cancellations_change_nothing(api, catalog, body, field):
    subscription = subscribe(api)
    before = billing_state()

    response = post(api, f"/api/v1/subscriptions/{subscription['id']}/cancel", body)

    assert_refused(response, 400, "invalid_request", field)
    assert billing_state() == before


# seats


def test_added_seats_are_prorated_on_the_invoice_that_closes_the_period(api, catalog):
    # given: 2 seats at 10.00 from November 1st, invoiced 20.00 in advance
    subscription = subscribe(api, "team", seats=2)
    assert Invoice.objects.get(reason="start").total == D("20.00")
    invoices_before = billing_state()["invoices"]

    # when: 5 seats from the 16th
    response = patch(api, subscription["id"], {"seats": 5, "at": "2026-11-16T00:00:00Z"})

    # then: nothing invoiced now
    assert response.status_code == 200, response.content
    assert response.json()["seats"] == 5
    assert billing_state()["invoices"] == invoices_before
    change = SubscriptionChange.objects.get(kind="seats")
    assert (change.effective_at, change.details) == (NOV_16, {"from": 2, "to": 5})

    # when: the close
    close(DEC_1)

    # then: 3 seats x 10.00 x 15/30, and December's 5 seats in advance
    body = invoice_body(api, closing_invoice())
    assert without_ids(body["lines"]) == [
        {
            "kind": "proration_charge",
            "description": "Seats 2 to 5, 16 Nov \u2013 30 Nov 2026, 0.5 of Nov 2026",
            "meter": None,
            "quantity": "1.5",
            "unit_price": "10.00",
            "per": "1",
            "amount": "15.00",
            "share": "0.5000",
        },
        {
            "kind": "seats",
            "description": "5 seats (Dec 2026)",
            "meter": None,
            "quantity": "5",
            "unit_price": "10.00",
            "per": "1",
            "amount": "50.00",
            "share": None,
        },
    ]
    assert body["total"] == "65.00"


def test_removed_seats_are_credited_on_the_invoice_that_closes_the_period(api, catalog):
    subscription = subscribe(api, "team", seats=5)

    response = patch(api, subscription["id"], {"seats": 2}, at=NOV_16)
    close(DEC_1)

    assert response.json()["seats"] == 2
    body = invoice_body(api, closing_invoice())
    assert line_amounts(body) == [("proration_credit", "-15.00"), ("seats", "20.00")]
    assert body["total"] == "5.00"


def test_the_same_seat_count_writes_no_change(api, catalog):
    subscription = subscribe(api, "team", seats=2)
    before = billing_state()

    response = patch(api, subscription["id"], {"seats": 2})

    assert (response.status_code, response.json()["seats"]) == (200, 2)
    assert billing_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seats": 0}, "seats"),
        ({"seats": -1}, "seats"),
        ({"seats": "x"}, "seats"),
        ({"seats": True}, "seats"),
        ({"seats": 10_000_001}, "seats"),
        ({"seats": 2.5}, "seats"),
        ({"seats": None}, "seats"),
        ({}, "seats"),
        ({"seats": 5, "at": "2026-11-16T00:00:00"}, "at"),
        ({"seats": 5, "at": "2026-12-01T00:00:00Z"}, "at"),
    ],
)
def test_refused_seat_changes_change_nothing(api, catalog, body, field):
    subscription = subscribe(api, "team", seats=2)
    before = billing_state()

    response = patch(api, subscription["id"], body)

    assert_refused(response, 400, "invalid_request", field)
    assert billing_state() == before


def test_seats_of_a_canceled_subscription_cannot_change(api, catalog):
    subscription = subscribe(api, "team", seats=2)
    post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/cancel",
        {"effective": "immediate", "at": "2026-11-10T00:00:00Z"},
    )
    before = billing_state()

    response = patch(api, subscription["id"], {"seats": 5, "at": "2026-11-16T00:00:00Z"})

    assert_refused(response, 409, "conflict", None)
    assert billing_state() == before


def test_no_change_may_reach_back_before_an_immediate_plan_change(api, catalog):
    # given: starter to pro on the 16th; usage before it is billed already
    subscription = subscribe(api)
    url = f"/api/v1/subscriptions/{subscription['id']}"
    assert post(api, f"{url}/change-plan", CHANGE).status_code == 200
    before = billing_state()
    earlier = "2026-11-10T00:00:00Z"

    # when
    responses = [
        post(api, f"{url}/change-plan", CHANGE | {"plan": "starter", "at": earlier}),
        post(api, f"{url}/cancel", {"effective": "immediate", "at": earlier}),
        patch(api, subscription["id"], {"seats": 3, "at": earlier}),
    ]

    # then
    for response in responses:
        assert_refused(response, 400, "invalid_request", "at")
    assert billing_state() == before


# A seat change is billed by the close, at the terms the subscription has then;
# a plan change or a cancellation in between, or a trial, makes that the wrong bill.


def billed_in_all() -> D:
    """What the invoices charge less what their credit notes give back."""
    charged = sum(Invoice.objects.values_list("total", flat=True), D(0))
    return charged - sum(CreditNote.objects.values_list("total", flat=True), D(0))


def test_seats_added_then_canceled_immediately_bill_the_seats_used(api, catalog):
    # given: 2 seats at 10.00 from November 1st (20.00 in advance), 5 from the 10th
    subscription = subscribe(api, "team", seats=2)
    patch(api, subscription["id"], {"seats": 5, "at": "2026-11-10T00:00:00Z"})

    # when: canceled on the 16th
    post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/cancel",
        {"effective": "immediate", "at": "2026-11-16T00:00:00Z"},
    )
    close(DEC_1)

    # then: 2 seats for 9 days (6.00) and 5 seats for 6 days (10.00) in all
    assert billed_in_all() == D("16.00")


def test_seats_added_then_plan_changed_bill_each_part_at_its_price(api, catalog):
    # given: 2 seats at 10.00 from November 1st, 5 from the 10th
    subscription = subscribe(api, "team", seats=2)
    patch(api, subscription["id"], {"seats": 5, "at": "2026-11-10T00:00:00Z"})

    # when: an immediate change to 20.00 a seat on the 16th, then the close
    post(
        api,
        f"/api/v1/subscriptions/{subscription['id']}/change-plan",
        {"plan": "team_plus", "effective": "immediate", "at": "2026-11-16T00:00:00Z"},
    )
    close(DEC_1)

    # then: November is 2 x 10.00 x 9/30 + 5 x 10.00 x 6/30 + 5 x 20.00 x 15/30 = 66.00,
    # and December 5 x 20.00 = 100.00 in advance
    assert closing_invoice().lines.get(kind="seats").amount == D("100.00")
    assert billed_in_all() == D("166.00")


def test_seats_added_during_a_trial_are_not_charged_for_the_trial(api, catalog):
    # given: a 14-day trial from November 1st with 2 seats, 5 from the 8th
    subscription = subscribe(api, "team_trial", seats=2)
    patch(api, subscription["id"], {"seats": 5, "at": "2026-11-08T00:00:00Z"})

    # when: the trial ends on the 15th
    close(DEC_1)

    # then: only the first paid period's 5 seats in advance
    trial_close = invoice_body(api, closing_invoice())
    assert line_amounts(trial_close) == [("seats", "50.00")]

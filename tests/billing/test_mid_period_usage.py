"""Mid-period truth: after an immediate plan change, /usage, the portal and the
admin count the usage since the change at the new version's prices (the usage
before it is on the plan-change invoice), and agree with the closing invoice
to the cent. /usage takes only the query parameters it knows."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.subscriptions.lifecycle import subscription_change_plan
from billing.usage.alerts import usage_alerts_check
from billing.usage.ingestion import events_ingest
from customers.portal import portal_session_create
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    api_client,
    gpt4o_tokens_meter,
    overage,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_25 = datetime(2026, 11, 25, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def tokens(customer: str, amount: int, at: datetime, key: str) -> None:
    event = {
        "id": key,
        "customer": customer,
        "event_name": "llm.completion",
        "timestamp": at.isoformat(),
        "properties": {"input_tokens": amount},
    }
    assert events_ingest(events=[event], now=at).accepted == 1


def test_after_an_immediate_plan_change_usage_counts_from_the_change_and_equals_the_close(
    client,
):
    # given: v1 at 30.00 a month, 100,000 tokens included, 0.00002 a token beyond;
    # v2 at 45.00, the same allowance, 0.00001 a token beyond
    gpt4o_tokens_meter("input")
    v1 = published_version(
        "chat", base_fee=D("30.00"), charges=(overage("gpt4o_input_tokens", 100_000, "0.00002"),)
    )
    v2 = PlanVersionFactory(
        plan=v1.plan,
        base_fee=D("45.00"),
        charges=(overage("gpt4o_input_tokens", 100_000, "0.00001"),),
    )
    acme = CustomerFactory(external_id="acme")
    subscription = subscribe(acme, v1, NOV_1)
    tokens("acme", 300_000, datetime(2026, 11, 5, tzinfo=UTC), "before")

    # when: it moves to v2 on 16 Nov (half of November gone), then uses 250,000 more
    _, change = subscription_change_plan(
        subscription=subscription, version=v2, effective="immediate", at=NOV_16
    )
    tokens("acme", 250_000, datetime(2026, 11, 20, tzinfo=UTC), "after")

    # then: the plan-change invoice billed the 300,000 before it at v1: 200,000 x 0.00002,
    # and v2 for the rest of the period; the unused half of v1's fee is a credit
    # note against the start invoice (billing.invoicing.unused_time)
    assert {line.kind: line.amount for line in change.lines.all()} == {
        "overage": D("4.00"),
        "proration_charge": D("22.50"),
    }
    note = CreditNote.objects.get(invoice__subscription=subscription)
    assert (note.invoice.reason, note.total) == (Invoice.START, D("15.00"))

    # and /usage counts the 250,000 since the change at v2: 150,000 x 0.00001 = 1.50
    api = api_client("read")
    with time_machine.travel(NOV_25, tick=False):
        body = api.get("/api/v1/customers/acme/usage").json()
    (line,) = body["lines"]
    assert (line["quantity"], line["billable"], line["amount"]) == ("250000", "150000", "1.50")
    assert (body["usage_from"], body["invoiced"]) == ("2026-11-16T00:00:00Z", "4.00")
    # the period's fees as billed (v1 15 days 15.00, v2 15 days 22.50), the usage
    # invoiced (4.00) and the usage to come (1.50)
    assert body["subtotal"] == "43.00"

    # and the portal shows the same figures
    token = portal_session_create(customer=acme, now=NOV_25).token
    with time_machine.travel(NOV_25, tick=False):
        page = client.get(f"/portal/{token}/")
    (feature,) = page.context["features"]
    assert (feature["amount"], page.context["subtotal"]) == ("1.50", "43.00")

    # and the closing invoice bills exactly that usage
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(subscription=subscription, reason=Invoice.PERIOD)
    assert [line.amount for line in closing.lines.filter(kind="overage")] == [D("1.50")]


def test_usage_refuses_a_query_parameter_it_does_not_know():
    CustomerFactory(external_id="acme")
    api = api_client("read")

    response = api.get("/api/v1/customers/acme/usage?start=2026-11-01T00:00:00Z")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "start": ["not one of group_by, period_end, period_start"]
    }
    assert api.get("/api/v1/customers/acme/usage").status_code == 200


def test_between_a_periods_end_and_its_close_usage_and_check_answer_for_the_same_period():
    # given: November ended, the close has not run yet; 30 prompts on 1 Dec
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    version = published_version(
        "basic", base_fee=D("10.00"), charges=(overage("prompts", 100, "0.05"),)
    )
    acme = CustomerFactory(external_id="acme")
    subscription = subscribe(acme, version, NOV_1)
    events = [
        {
            "id": f"dec-{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": "2026-12-01T01:00:00+00:00",
        }
        for i in range(30)
    ]
    now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert events_ingest(events=events, now=now).accepted == 30
    subscription.refresh_from_db()
    assert subscription.current_period_end == DEC_1  # not advanced yet

    # when
    api = api_client("read")
    with time_machine.travel(now, tick=False):
        usage = api.get("/api/v1/customers/acme/usage").json()
        answer = api.post(
            "/api/v1/customers/acme/check", {"meter": "prompts", "quantity": "1"}, format="json"
        ).json()

    # then: both answer for December, and say so
    assert (usage["period_start"], usage["period_end"]) == (
        "2026-12-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
    )
    assert usage["lines"][0]["quantity"] == "30"
    assert (answer["period_start"], answer["period_end"], answer["used"]) == (
        "2026-12-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        "30",
    )


def test_check_says_whether_a_meter_not_in_the_plan_exists_at_all():
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    MeterFactory(code="sms", name="SMS", event_name="sms.sent")
    version = published_version(
        "basic", base_fee=D("10.00"), charges=(overage("prompts", 100, "0.05"),)
    )
    version.plan.name = "Basic"
    version.plan.save(update_fields=["name"])
    subscribe(CustomerFactory(external_id="acme"), version, NOV_1)
    api = api_client("read")

    def ask(meter: str) -> dict:
        return api.post(
            "/api/v1/customers/acme/check", {"meter": meter, "quantity": "1"}, format="json"
        ).json()

    assert (ask("smss")["reason"], ask("smss")["message"]) == (
        "meter_not_in_plan",
        "there is no meter 'smss'",
    )
    assert ask("sms")["message"] == "meter 'sms' is not charged by Basic v1"
    assert (ask("prompts")["reason"], ask("prompts")["message"]) == ("ok", "allowed")


def test_the_portal_shows_the_thresholds_passed_this_period(client):
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    version = published_version(
        "basic", base_fee=D("10.00"), charges=(overage("prompts", 200, "0.05"),)
    )
    acme = CustomerFactory(external_id="acme")
    subscribe(acme, version, NOV_1)
    at = datetime(2026, 11, 10, tzinfo=UTC)
    events = [
        {"id": f"p-{i}", "customer": "acme", "event_name": "prompt", "timestamp": at.isoformat()}
        for i in range(160)
    ]
    assert events_ingest(events=events, now=at).accepted == 160
    usage_alerts_check(customer_ids=[acme.pk], now=at)

    token = portal_session_create(customer=acme, now=at).token
    with time_machine.travel(at, tick=False):
        page = client.get(f"/portal/{token}/")

    (feature,) = page.context["features"]
    assert feature["thresholds"] == ["50%", "75%"]
    assert "Thresholds passed: 50%, 75% of included" in page.content.decode()


def test_after_an_immediate_plan_change_the_portal_counts_every_invoice_of_the_period_as_invoiced(
    client,
):
    # given: v1 at 30.00, v2 at 45.00 (0.00002 and 0.00001 a token beyond 100,000)
    gpt4o_tokens_meter("input")
    v1 = published_version(
        "chat", base_fee=D("30.00"), charges=(overage("gpt4o_input_tokens", 100_000, "0.00002"),)
    )
    v2 = PlanVersionFactory(
        plan=v1.plan,
        base_fee=D("45.00"),
        charges=(overage("gpt4o_input_tokens", 100_000, "0.00001"),),
    )
    acme = CustomerFactory(external_id="acme")
    subscription = subscribe(acme, v1, NOV_1)
    tokens("acme", 300_000, datetime(2026, 11, 5, tzinfo=UTC), "before")

    # when: it moves to v2 on 16 Nov and uses nothing since
    subscription_change_plan(
        subscription=subscription, version=v2, effective="immediate", at=NOV_16
    )

    # then: the period's two invoices bill 30.00 (start) + 4.00 + 22.50, and the
    # credit note for v1's unused half gives back 15.00: 41.50
    invoices = Invoice.objects.filter(subscription=subscription)
    credited = CreditNote.objects.get(invoice__subscription=subscription).total
    assert sum(invoice.total for invoice in invoices) - credited == D("41.50")
    # and the portal counts all of it as billed, as much as it has so far: the
    # start invoice, finalized for its credit note, less that note (15.00)
    # invoiced; the change's invoice upcoming while a draft (within the grace),
    # then invoiced
    token = portal_session_create(customer=acme, now=NOV_25).token
    with time_machine.travel(NOV_25, tick=False):
        page = client.get(f"/portal/{token}/")
    figures = ("subtotal", "invoiced", "upcoming")
    assert [page.context[figure] for figure in figures] == ["41.50", "15.00", "26.50"]
    [draft] = invoices.filter(status=Invoice.DRAFT)
    assert draft.reason == Invoice.PLAN_CHANGE
    with time_machine.travel(NOV_25, tick=False):
        invoice_finalize(invoice=draft, now=NOV_25, collect=False)
    with time_machine.travel(NOV_25, tick=False):
        page = client.get(f"/portal/{token}/")
    assert [page.context[figure] for figure in figures] == ["41.50", "41.50", None]


def test_after_an_immediate_plan_change_the_portal_shows_only_the_thresholds_its_usage_passed(
    client,
):
    # given: 200 prompts included; 220 used before a move to v2 on 16 Nov, none since
    MeterFactory(code="prompts", name="Prompts", event_name="prompt")
    v1 = published_version("basic", base_fee=D("10.00"), charges=(overage("prompts", 200, "0.05"),))
    v2 = PlanVersionFactory(
        plan=v1.plan, base_fee=D("12.00"), charges=(overage("prompts", 200, "0.04"),)
    )
    acme = CustomerFactory(external_id="acme")
    subscription = subscribe(acme, v1, NOV_1)
    at = datetime(2026, 11, 10, tzinfo=UTC)
    events = [
        {"id": f"p-{i}", "customer": "acme", "event_name": "prompt", "timestamp": at.isoformat()}
        for i in range(220)
    ]
    assert events_ingest(events=events, now=at).accepted == 220
    usage_alerts_check(customer_ids=[acme.pk], now=at)
    subscription_change_plan(
        subscription=subscription, version=v2, effective="immediate", at=NOV_16
    )

    # when the portal is read on 25 Nov
    token = portal_session_create(customer=acme, now=NOV_25).token
    with time_machine.travel(NOV_25, tick=False):
        page = client.get(f"/portal/{token}/")

    # then: the usage shown (since the change) passed no threshold
    (feature,) = page.context["features"]
    assert (feature["quantity"], feature["thresholds"]) == ("0", [])

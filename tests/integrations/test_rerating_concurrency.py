"""Re-rating under concurrency, on PostgreSQL: applied by several clients at once,
the difference is issued once; applied while the next period closes, October's
difference is billed once in all (by the correction or by the close's late usage,
never by both); and ingestion waits for it, then meters at today's mapping."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.invoicing.rerating import usage_rerate
from billing.models import UsageEvent
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from customers.services import customer_create
from invoices.models import Invoice, InvoiceLine
from tests.factories import api_client, llm_tokens_meter, subscribe
from tests.integrations.test_s38_rerating import (
    DEC_1,
    FINE_TUNE,
    NOV_1,
    OCT_1,
    S38_CARD,
    call_event,
    map_models,
    send_and_close,
)
from tests.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOV_5 = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)


@pytest.fixture
def october():
    llm_tokens_meter()
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [S38_CARD]}, format="json"
    )
    assert response.status_code == 201, response.json()
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, "tokens", start=OCT_1)
    invoice = send_and_close()
    map_models({FINE_TUNE: "gpt-4o"})
    return invoice


def apply(now: datetime = NOV_5):
    return usage_rerate(
        start=OCT_1,
        end=NOV_1,
        now=now,
        customer=Customer.objects.get(external_id="acme"),
        dry_run=False,
    )


def test_applied_by_four_clients_at_once_the_difference_is_issued_once(october):
    with time_machine.travel(NOV_5, tick=False):
        results = run_at_once(lambda _: apply(), clients=4)

    issued = [row.issued for rerating in results for row in rerating.rows if row.issued]
    (correction,) = Invoice.objects.filter(reason=Invoice.CORRECTION)
    assert [document.pk for document in issued] == [correction.pk]
    assert (correction.subtotal, correction.corrects_id) == (D("3.00"), october.pk)
    differences = sorted(row.difference for rerating in results for row in rerating.rows)
    assert differences == [D("0.00"), D("0.00"), D("0.00"), D("3.00")]


def test_applied_while_the_next_period_closes_octobers_difference_is_billed_once(october):
    def work(index: int):
        if index == 0:
            return apply(DEC_1)
        return periods_close(as_of=DEC_1)

    with time_machine.travel(DEC_1, tick=False):
        run_at_once(work, clients=2)

    corrections = Invoice.objects.filter(reason=Invoice.CORRECTION)
    # (a correction's lines are usage of October billed later too: late_usage lines)
    late = InvoiceLine.objects.filter(
        kind="late_usage", period_start=OCT_1, invoice__reason=Invoice.PERIOD
    )
    billed_again = sum(line.amount for line in late) + sum(i.subtotal for i in corrections)
    assert billed_again == D("3.00")
    # and once more, nothing
    with time_machine.travel(DEC_1, tick=False):
        (row,) = apply(DEC_1).rows
    assert (row.billed, row.rerated, row.issued) == (D("7.50"), D("7.50"), None)


def test_a_late_call_stored_beside_a_rerating_is_billed_once_too(october):
    # a call of October arriving while October is re-rated (ingestion waits for the
    # re-rating's rollup lock, or the re-rating for the batch's)
    late_call = call_event(
        "c3:input", model="gpt-4o", sent=FINE_TUNE, requested=None, tokens=1_000_000
    )

    def work(index: int):
        if index == 0:
            return apply()
        return events_ingest(events=[late_call], now=NOV_5)

    with time_machine.travel(NOV_5, tick=False):
        run_at_once(work, clients=2)
        apply()  # the late call's 2.50, when it was stored after the re-rating
        (row,) = apply().rows

    # 4,000,000 gpt-4o input tokens at 2.50: 10.00, of which 4.50 billed by October's
    # invoice and the rest by corrections, whatever came first
    assert UsageEvent.objects.filter(event_id="c3:input").exists()
    corrections = sum(i.subtotal for i in Invoice.objects.filter(reason=Invoice.CORRECTION))
    assert row.billed == row.rerated == D("10.00")
    assert corrections == D("5.50")

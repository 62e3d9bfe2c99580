"""Progressive billing under concurrency, for real, on PostgreSQL: four clients
post usage at the same moment, each with its own connection; each commit
queues the usage check that writes threshold invoices, and four workers then
run the queued checks at the same moment, all of them seeing the crossing. It
is billed once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.invoicing.close import periods_close
from billing.tasks import check_usage_alerts
from customers.services import customer_create
from invoices.models import Invoice
from plans.pricing import PricingSpec, TierSpec
from plans.rating import usage_and_true_up
from plans.services import meter_create
from plans.validation import ChargeSpec, VersionSpec
from tests.billing.test_ingest_concurrency import CLIENTS
from tests.factories import published_version, subscribe
from tests.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def total(lines) -> D:
    """What the lines bill together."""
    return sum((line.amount for line in lines), D(0))


NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
CHARGE = ChargeSpec(
    "runs",
    "overage",
    pricing=PricingSpec(
        "graduated", tiers=(TierSpec(D(100), D("0.10")), TierSpec(None, D("0.05")))
    ),
)


def test_four_clients_across_two_thresholds_give_exactly_two_threshold_invoices(
    transactional_db, api_key_secret, monkeypatch
):
    # given: S20's tiers, a threshold of 5.00
    meter_create(code="runs", name="Agent runs", event_name="agent.run", aggregation="count")
    published_version("agents", progressive_billing_threshold=D("5.00"), charges=(CHARGE,))
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(acme, "agents")
    sent = [0]
    # The checks the commits queue, run below by four workers at once.
    queued: list[list[int]] = []
    monkeypatch.setattr(
        check_usage_alerts, "apply_async", lambda args, kwargs=None, **o: queued.append(*args)
    )

    def clients_post(runs_each: int, at: datetime) -> None:
        start = sent[0]
        sent[0] += runs_each * CLIENTS

        def post(index: int) -> None:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_secret}")
            first = start + index * runs_each
            events = [
                {
                    "id": f"run-{n}",
                    "customer": "acme",
                    "event_name": "agent.run",
                    "timestamp": (at - timedelta(seconds=1)).isoformat(),
                }
                for n in range(first, first + runs_each)
            ]
            response = client.post("/api/v1/events", {"events": events}, format="json")
            assert response.status_code == 202, response.content

        with time_machine.travel(at, tick=False):
            run_at_once(post)
            assert len(queued) == CLIENTS
            run_at_once(lambda index: check_usage_alerts(queued[index]))
        queued.clear()

    # when: four clients post 13 runs each: only all four together reach the
    # threshold (52 runs, 5.20; any three: 3.90)
    clients_post(13, NOV_10)
    # then four clients post 17 runs each: 120 runs, 11.00, of which 5.80 not
    # invoiced (any three: 103 runs, 10.15, of which 4.95 not invoiced)
    clients_post(17, NOV_10 + timedelta(hours=1))

    # then: exactly two threshold invoices, of 5.20 and 5.80
    invoices = list(Invoice.objects.filter(reason=Invoice.THRESHOLD).order_by("id"))
    assert [invoice.subtotal for invoice in invoices] == [D("5.20"), D("5.80")]
    assert all(invoice.status == Invoice.FINALIZED for invoice in invoices)

    # and with the close, the period's invoices bill what one invoice would
    periods_close(as_of=DEC_1)
    closing = Invoice.objects.get(reason=Invoice.PERIOD)
    single = total(
        usage_and_true_up(
            VersionSpec(currency="USD", charges=(CHARGE,)), quantities={"runs": D(sent[0])}
        )
    )
    assert single == D("11.00")
    assert sum((i.subtotal for i in invoices), closing.subtotal) == single
    assert closing.subtotal == D("0.00")

"""S29's month, set up through the services and the API, for the journal tests."""

from datetime import UTC, datetime
from decimal import Decimal as D

import time_machine

from billing.usage.ingestion import events_ingest
from customers.models import Customer
from invoices.models import Invoice
from invoices.services import invoice_finalize
from plans.rating import LineInput
from plans.services import tax_rate_create
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    credits,
    period_draft,
    published_version,
    subscribe,
)
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
NOV_25 = datetime(2026, 11, 25, tzinfo=UTC)
NOV_28 = datetime(2026, 11, 28, tzinfo=UTC)
NOV_30 = datetime(2026, 11, 30, tzinfo=UTC)


def usage_invoice(customer: Customer, amount: str, *, now: datetime) -> Invoice:
    draft = period_draft(
        customer,
        [LineInput("usage", "API calls", "api_calls", D(1000), D("0.1"), D(amount))],
    )
    with time_machine.travel(now, tick=False):
        return invoice_finalize(invoice=draft, now=now, collect=False)


def s29_month(api) -> dict:
    """SCENARIOS.md S29. Customer A (VAT 20 %): 100.00 + 20.00 VAT, paid by bank,
    credited 10.00 + 2.00 to its credit balance. Customer B (exempt): 50 credits
    sold for 50.00 and paid, 30 used, 10 expire. The 50 credits are sold as two
    paid blocks on one day (40 drawn first, 10 that expire on the 25th): a block
    expires whole, so 10 expiring while 10 stay needs two."""
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    MeterFactory(code="api_calls", name="API calls", event_name="api_call")
    MeterFactory(code="runs", name="Runs", event_name="run")
    published_version("runs_b", charges=(credits("runs", 1),))
    a = CustomerFactory(external_id="a")
    b = CustomerFactory(external_id="b", tax_exempt=Customer.TAX_EXEMPT)
    subscribe(b, "runs_b", start=NOV_1)

    invoice = usage_invoice(a, "100.00", now=NOV_10)
    with time_machine.travel(NOV_10, tick=False):
        kept, _invoice = credits_grant(
            customer=b, credits=D(40), kind=CreditBlock.PAID, price=D("40.00"), now=NOV_10
        )
        expiring, _invoice = credits_grant(
            customer=b,
            credits=D(10),
            kind=CreditBlock.PAID,
            price=D("10.00"),
            priority=90,
            expires_at=NOV_25,
            now=NOV_10,
        )
    with time_machine.travel(NOV_28, tick=False):
        for paid in (invoice, kept.invoice, expiring.invoice):
            response = api.post(
                f"/api/v1/invoices/{paid.pk}/pay",
                {"reference": f"bank-{paid.number}", "paid_at": "2026-11-15T09:00:00Z"},
                format="json",
            )
            assert response.status_code == 200, response.content
        line = invoice.lines.get()
        response = api.post(
            f"/api/v1/invoices/{invoice.pk}/credit-notes",
            {"reason": "other", "lines": [{"invoice_line": line.pk, "amount": "10.00"}]},
            format="json",
        )
        assert response.status_code == 201, response.content
    events = [
        {"id": f"r{i}", "customer": "b", "event_name": "run", "timestamp": NOV_20.isoformat()}
        for i in range(30)
    ]
    assert events_ingest(events=events, now=NOV_20).accepted == 30
    assert credits_expire(now=NOV_30) == 1
    return {"a": a, "b": b, "invoice": invoice}

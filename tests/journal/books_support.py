"""S32's books (SCENARIOS.md), set up through the services: two sellers, a USD
one (the default) and an EUR one (`sas`), 1 USD = 0.90 EUR from 1 Oct and 0.92
from 15 Nov. The EUR seller bills a USD customer 100.00 on 5 Nov, paid on 20 Nov;
it bills an EUR customer 50.00 on 6 Nov; the USD seller bills its USD customer
30.00 on 7 Nov, paid on 9 Nov."""

from datetime import UTC, datetime
from decimal import Decimal as D

import time_machine

from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity, Customer
from invoices.models import Invoice
from invoices.services import invoice_finalize
from invoices.settlement import invoice_mark_paid
from plans.models import ExchangeRate
from plans.rating import LineInput
from tests.factories import CustomerFactory, default_seller, period_draft

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 10, tzinfo=UTC)
NOV_6 = datetime(2026, 11, 6, 10, tzinfo=UTC)
NOV_7 = datetime(2026, 11, 7, 10, tzinfo=UTC)
NOV_9 = datetime(2026, 11, 9, 10, tzinfo=UTC)
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 9, tzinfo=UTC)
NOV_21 = datetime(2026, 11, 21, tzinfo=UTC)


def rate(base: str, quote: str, value: str, effective_from: datetime) -> ExchangeRate:
    return ExchangeRate.objects.create(
        base=base, quote=quote, rate=D(value), effective_from=effective_from, source="ECB reference"
    )


def s32_rates() -> None:
    rate("USD", "EUR", "0.90", OCT_1)
    rate("USD", "EUR", "0.92", NOV_15)


def sellers() -> tuple[BillingEntity, BillingEntity]:
    """The USD seller (the default, `default`) and the EUR one (`sas`)."""
    inc = default_seller({"name": "Usage Billing Inc.", "country": "US"})
    sas = billing_entity_save(
        entity=BillingEntity(
            code="sas",
            legal_name="Usage Billing SAS",
            country="FR",
            tax_id="FR40303265045",
            invoice_prefix="FR",
            credit_note_prefix="AV",
            functional_currency="EUR",
            timezone="Europe/Paris",
        )
    )
    return inc, sas


def invoice(customer: Customer, amount: str, *, on: datetime) -> Invoice:
    """An October usage invoice of `amount`, issued `on` (the clock moved there:
    a document is dated when it is issued, invoices.issue_dates)."""
    draft = period_draft(
        customer,
        [LineInput("usage", "API calls", "api_calls", D(1000), D("0.1"), D(amount))],
        start=OCT_1,
        end=NOV_1,
    )
    with time_machine.travel(on, tick=False):
        return invoice_finalize(invoice=draft, now=on, collect=False)


def pay(paid: Invoice, *, on: datetime) -> None:
    with time_machine.travel(on, tick=False):
        invoice_mark_paid(invoice=paid, reference=f"bank-{paid.number}", now=on, paid_at=on)


def s32_books(*, with_rates: bool = True) -> dict:
    if with_rates:
        s32_rates()
    inc, sas = sellers()
    ny = CustomerFactory(external_id="ny", name="New York Inc", billing_entity="sas")
    paris = CustomerFactory(external_id="paris", currency="EUR", billing_entity="sas")
    boston = CustomerFactory(external_id="boston")
    documents = {
        "ny": invoice(ny, "100.00", on=NOV_5),
        "paris": invoice(paris, "50.00", on=NOV_6),
        "boston": invoice(boston, "30.00", on=NOV_7),
    }
    pay(documents["boston"], on=NOV_9)
    pay(documents["ny"], on=NOV_20)
    return {"inc": inc, "sas": sas, **documents}

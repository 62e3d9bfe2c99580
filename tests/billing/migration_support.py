"""What the bulk migration tests share (the admin's and the API's): a catalog,
subscribers with usage, and the state a migration may write."""

from datetime import UTC, datetime
from decimal import Decimal as D

from billing.models import (
    BilledPeriod,
    PlanMigrationItem,
    Subscription,
    SubscriptionChange,
)
from billing.usage.ingestion import events_ingest
from invoices.models import CreditNote, Invoice, InvoiceLine
from plans.models import PlanVersion
from plans.validation import ChargeSpec
from tests.factories import CustomerFactory, overage, prompts_meter, published_version, subscribe

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_6 = datetime(2026, 11, 6, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)


def prompts_over(included: int, price: str) -> tuple[ChargeSpec, ...]:
    return (overage("prompts", included, price),)


def migration_catalog() -> dict[str, PlanVersion]:
    """S1's ai_assistant (19.99, 200 prompts included, then 0.05) and S10's upgrade
    to pro at 49.99 (1,000 included, then 0.04); a plan in EUR."""
    prompts_meter()
    return {
        "ai_assistant": published_version(
            "ai_assistant", base_fee=D("19.99"), charges=prompts_over(200, "0.05")
        ),
        "pro": published_version("pro", base_fee=D("49.99"), charges=prompts_over(1000, "0.04")),
        "euro": published_version("euro", currency="EUR", base_fee=D("19.99")),
    }


def subscriber(name: str, plan: str = "ai_assistant", *, start=NOV_1, currency="USD", seats=1):
    customer = CustomerFactory(external_id=name, name=name.title(), currency=currency)
    return subscribe(customer, plan, start, seats=seats)


def prompts(customer: str, count: int, *, day: datetime = NOV_10) -> None:
    events = [
        {
            "id": f"{customer}-{day:%d}-{i}",
            "customer": customer,
            "event_name": "prompt",
            "timestamp": day.isoformat(),
        }
        for i in range(count)
    ]
    assert events_ingest(events=events, now=day).accepted == count


def three_subscribed() -> list[Subscription]:
    """acme and beta from November 1st, gamma from November 6th, all on ai_assistant;
    by the 10th acme used 250 prompts (50 over: 2.50) and gamma 230 (1.50)."""
    subscriptions = [subscriber("acme"), subscriber("beta"), subscriber("gamma", start=NOV_6)]
    prompts("acme", 250)
    prompts("gamma", 230)
    return subscriptions


def billing_state() -> dict:
    """Everything a migration may write to subscriptions and invoices."""
    models = (Subscription, SubscriptionChange, Invoice, InvoiceLine, CreditNote, BilledPeriod)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "subscriptions": list(
            Subscription.objects.order_by("id").values_list(
                "version_id", "scheduled_version_id", "usage_from", "status", "seats"
            )
        ),
        "invoices": list(Invoice.objects.order_by("id").values_list("reason", "status", "total")),
        "items": list(
            PlanMigrationItem.objects.order_by("id").values_list("status", "message", "invoice_id")
        ),
    }


def unused_credit_note(invoice: Invoice) -> CreditNote | None:
    """The credit note the change that wrote `invoice` issued for the unused time
    (billing.invoicing.unused_time: against the invoice that charged the fees)."""
    change = SubscriptionChange.objects.get(details__invoice=invoice.pk)
    note = change.details.get("credit_note")
    return CreditNote.objects.get(pk=note) if note else None


def billed_net(invoice: Invoice) -> D:
    """What a change billed in all: its invoice less its credit note."""
    note = unused_credit_note(invoice)
    return invoice.total - (note.total if note else D(0))


def line_sums(invoice: Invoice) -> dict[str, D]:
    """A change's figures as its preview shows them: the usage so far and the new
    fees on its invoice; the credit for the unused time, negative, from its credit
    note (and any credit line left on the invoice); the total net of the note."""
    lines = list(invoice.lines.all())
    left = sum((line.amount for line in lines if line.kind == "proration_credit"), D(0))
    charge = sum((line.amount for line in lines if line.kind == "proration_charge"), D(0))
    note = unused_credit_note(invoice)
    credited = note.total if note else D(0)
    return {
        "usage": invoice.total - left - charge,
        "credit": left - credited,
        "charge": charge,
        "total": invoice.total - credited,
    }

"""A customer's standing (services): good, past due, restricted or suspended.

It follows from the invoices the customer still owes: an invoice past its due
date makes it past due, one whose dunning ran its `restrict` step restricted,
its `suspend` step suspended; the worst of them is the customer's standing,
saved on the customer (which `check` reads with it, no other query) with since
when and the invoice that set it. It is worked out again:
- by the dunning run on the beat (invoices.dunning), after each step and for
  every customer not in good standing;
- as soon as a debt is settled: an invoice paid (by hand, the API, Stripe), a
  credit note or a void, the credit balance applied (standing_refresh_on_commit,
  once the document's transaction commits, under the customer's own lock: the
  lock order takes customers before invoices).
A change is announced once, with the webhook `customer.standing_changed`."""

import logging
from datetime import datetime

from django.db import transaction

from billing.models import STANDING_CHANGED
from billing.notifications import webhooks
from common.money import format_money
from common.periods import iso
from customers.locks import customer_lock
from customers.models import GOOD, PAST_DUE, RESTRICTED, SUSPENDED, Customer
from invoices.dunning_models import DunningRun, DunningStep
from invoices.models import Invoice
from invoices.selectors import left_to_pay

logger = logging.getLogger(__name__)

# The standings, the worst last.
LEVELS = (GOOD, PAST_DUE, RESTRICTED, SUSPENDED)
# Invoices a customer still owes (an uncollectible one is still owed: it can be paid).
OWED = (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE)
# What a step done on an invoice makes of the customer's standing.
STEP_STANDING = {DunningStep.RESTRICT: RESTRICTED, DunningStep.SUSPEND: SUSPENDED}


def is_owed(invoice: Invoice) -> bool:
    """owed_invoices' rule for one invoice at hand (no query)."""
    return invoice.status in OWED and invoice.due_at is not None and invoice.amount_due > 0


def owed_invoices(**filters):
    """Invoices left to pay (finalized or uncollectible, something still due), with
    a due date."""
    return left_to_pay(Invoice.objects.filter(status__in=OWED, due_at__isnull=False, **filters))


def standing_of(*, customer_id: int, now: datetime) -> tuple[str, Invoice | None]:
    """The standing the customer's invoices give it at `now`, and the invoice that
    sets it (of the worst, the one due first)."""
    past_due = list(
        owed_invoices(customer_id=customer_id, due_at__lte=now).order_by("due_at", "id")
    )
    if not past_due:
        return GOOD, None
    steps = DunningRun.objects.filter(
        invoice__in=past_due, outcome=DunningRun.DONE, action__in=list(STEP_STANDING)
    ).values_list("invoice_id", "action")
    level = {invoice.pk: PAST_DUE for invoice in past_due}
    for invoice_id, action in steps:
        level[invoice_id] = max(level[invoice_id], STEP_STANDING[action], key=LEVELS.index)
    # max() keeps the first of equals: of the worst, the invoice due first.
    worst = max(past_due, key=lambda invoice: LEVELS.index(level[invoice.pk]))
    return level[worst.pk], worst


def standing_refresh(*, customer_id: int, now: datetime) -> bool:
    """Work the customer's standing out again and save it; on a change, announce
    it (webhook customer.standing_changed, once: its id names the change). Under
    the customer's lock, in a transaction of its own. Whether it changed."""
    with transaction.atomic():
        customer = customer_lock(customer_id)
        standing, invoice = standing_of(customer_id=customer_id, now=now)
        invoice_id = invoice.pk if invoice is not None else None
        if standing == customer.standing and invoice_id == customer.standing_invoice_id:
            return False
        previous = customer.standing
        changed = standing != previous
        customer.standing = standing
        customer.standing_invoice_id = invoice_id
        fields = ["standing", "standing_invoice"]
        if changed:
            customer.standing_since = now
            fields.append("standing_since")
        customer.save(update_fields=fields)
        if changed:
            _announce(customer, previous=previous, invoice=invoice, now=now)
    return changed


def _announce(customer, *, previous: str, invoice: Invoice | None, now: datetime) -> None:
    owed = owed_invoices(customer_id=customer.pk, due_at__lte=now).order_by("due_at", "id")
    webhooks.webhook_event_publish(
        event_type=STANDING_CHANGED,
        data={
            "customer": customer.external_id,
            "standing": customer.standing,
            "previous": previous,
            "since": iso(customer.standing_since),
            "invoice": invoice.number if invoice is not None else None,
            "past_due": [
                {
                    "invoice": owed_invoice.number,
                    "amount_due": format_money(owed_invoice.amount_due, owed_invoice.currency),
                    "currency": owed_invoice.currency,
                    "due_at": iso(owed_invoice.due_at),
                }
                for owed_invoice in owed
            ],
        },
        customer=customer,
        now=now,
        event_id=(
            f"evt_customer_{customer.pk}_standing_{int(now.timestamp() * 1000)}_{customer.standing}"
        ),
    )


def standing_refresh_on_commit(*, customer_id: int, now: datetime) -> None:
    """Work the standing out again once the caller's transaction commits (at once
    without one), unless the customer is in good standing already: every way a
    debt is settled calls this. A failure is logged and does not undo the commit;
    the next dunning run (the beat) works every standing that is not good out
    again."""

    def refresh() -> None:
        if Customer.objects.filter(pk=customer_id, standing=GOOD).exists():
            return
        standing_refresh(customer_id=customer_id, now=now)

    transaction.on_commit(refresh, robust=True)

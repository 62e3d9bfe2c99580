"""Dunning on the beat (services): the steps of each customer's policy run on
its unpaid invoices when they fall due, once per invoice and step.

- A step is due at the invoice's due date plus its days, in the time zone the
  invoice was written in (its due date at 00:00 in Paris plus one day is 00:00
  in Paris the next day, whatever the clocks did meanwhile).
- The policy is the customer's own, else the one marked default; a customer with
  dunning off has none. A pause (`dunning_paused_until`) holds every step until
  its date; held steps then run.
- Each step writes a DunningRun under the invoice's lock (unique on the invoice
  and the step), so a run twice, or two workers at once, do it once. Steps
  that fell due together (a policy given late, a pause ending) run once each
  action: the latest reminder is sent, the others recorded as skipped.
- `remind` emails the invoice with its PDF and its pay link
  (invoices.reminders); `retry_payment` asks Stripe again (one more attempt of
  the invoice's payment, its own idempotency key), unless the card was
  declined for good (a hard decline) or Stripe is not configured; `restrict` and
  `suspend` set the customer's standing (invoices.standing), worked out again
  after the invoice's steps.
- Paid, credited or voided invoices are no longer owed: their steps left do not
  run (they are cancelled), and the standing comes back at once."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Prefetch, Q

from customers.models import GOOD, Customer
from invoices import collection
from invoices.dunning_models import DunningPolicy, DunningRun, DunningStep
from invoices.emails import reminder_email_schedule
from invoices.locks import invoice_lock
from invoices.models import Invoice, Payment
from invoices.standing import is_owed, owed_invoices, standing_refresh

logger = logging.getLogger(__name__)

# Invoices looked at in one statement.
BATCH = 500
# Steps that only make sense once when several fell due together.
ONCE_WHEN_LATE = (DunningStep.REMIND, DunningStep.RETRY_PAYMENT)


@dataclass
class DunningSummary:
    done: int = 0
    skipped: int = 0
    held: int = 0
    standings_changed: int = 0
    customers: set = field(default_factory=set)


def step_due_at(due_at: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The moment a step of `days` from this due date falls due: the same wall
    time, `days` calendar days later, in `zone`."""
    local = due_at.astimezone(zone)
    moved = datetime.combine(
        local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None)
    )
    return moved.replace(tzinfo=zone)


def policies() -> tuple[dict[int, DunningPolicy], DunningPolicy | None]:
    """Every policy with its steps, by id, and the default one."""
    found = {
        policy.pk: policy
        for policy in DunningPolicy.objects.prefetch_related(
            Prefetch("steps", queryset=DunningStep.objects.order_by("days_after_due", "id"))
        )
    }
    default = next((policy for policy in found.values() if policy.is_default), None)
    return found, default


def customer_policy(customer: Customer, found: dict, default) -> DunningPolicy | None:
    if customer.dunning_off:
        return None
    if customer.dunning_policy_id is not None:
        return found.get(customer.dunning_policy_id)
    return default


def _to_run(
    invoice: Invoice, policy: DunningPolicy, ran: set, now: datetime
) -> list[tuple[DunningStep, datetime]]:
    """The policy's steps due on this invoice at `now` not run yet (`ran`: the
    (action, days) already run), in order."""
    zone = invoice.text.zone
    due = [
        (step, step_due_at(invoice.due_at, step.days_after_due, zone))
        for step in policy.steps.all()
        if (step.action, step.days_after_due) not in ran
    ]
    due = [(step, at) for step, at in due if at <= now]
    return sorted(due, key=lambda pair: (pair[1], DunningStep.ORDER.index(pair[0].action)))


def dunning_run(*, now: datetime) -> DunningSummary:
    """Run every dunning step due at `now`, then work out again the standing of
    every customer who owes an invoice past due or is not in good standing.
    Safe to run any number of times, from several workers at once."""
    summary = DunningSummary()
    found, default = policies()
    steps = [step for policy in found.values() for step in policy.steps.all()]
    if steps:
        earliest = min(step.days_after_due for step in steps)
        # A step before the due date looks that far ahead (a day more for zones).
        horizon = now + timedelta(days=max(0, -earliest) + 1)
        invoices = owed_invoices(due_at__lte=horizon).select_related("customer").order_by("id")
        last_id = 0
        while True:
            batch = list(invoices.filter(id__gt=last_id)[:BATCH])
            if not batch:
                break
            last_id = batch[-1].pk
            ran = {invoice.pk: set() for invoice in batch}
            for invoice_id, action, days in DunningRun.objects.filter(
                invoice__in=batch
            ).values_list("invoice_id", "action", "days_after_due"):
                ran[invoice_id].add((action, days))
            for invoice in batch:
                _invoice_steps(invoice, found, default, ran[invoice.pk], now=now, summary=summary)
    _standings(now=now, summary=summary)
    return summary


def _invoice_steps(
    invoice: Invoice, found: dict, default, ran: set, *, now: datetime, summary
) -> None:
    customer = invoice.customer
    policy = customer_policy(customer, found, default)
    if policy is None:
        return
    pending = _to_run(invoice, policy, ran, now)
    if not pending:
        return
    if customer.dunning_paused_until is not None and customer.dunning_paused_until > now:
        summary.held += len(pending)
        return
    latest = {}
    for step, _at in pending:
        latest[step.action] = step.days_after_due
    for step, at in pending:
        superseded = step.action in ONCE_WHEN_LATE and step.days_after_due != latest[step.action]
        outcome = _step_run(invoice, policy, step, due_at=at, now=now, superseded=superseded)
        if outcome == DunningRun.DONE:
            summary.done += 1
        elif outcome == DunningRun.SKIPPED:
            summary.skipped += 1
    summary.customers.add(customer.pk)


def _step_run(invoice, policy, step, *, due_at: datetime, now: datetime, superseded: bool) -> str:
    """Run one step on one invoice, once: its DunningRun written under the
    invoice's lock with what it did. The outcome, or '' when it had run already
    or the invoice is no longer owed."""
    with transaction.atomic():
        locked = invoice_lock(invoice.pk)
        if not is_owed(locked):
            return ""
        run, created = DunningRun.objects.get_or_create(
            invoice=locked,
            action=step.action,
            days_after_due=step.days_after_due,
            defaults={
                "customer_id": locked.customer_id,
                "policy": policy,
                "due_at": due_at,
                "ran_at": now,
                "outcome": DunningRun.DONE,
            },
        )
        if not created:
            return ""
        if superseded:
            outcome, detail = DunningRun.SKIPPED, "superseded by a later step of the same action"
        elif locked.finalized_at is not None and due_at < locked.finalized_at:
            outcome, detail = DunningRun.SKIPPED, "due before the invoice was issued"
        else:
            outcome, detail = ACTIONS[step.action](run, now)
        run.outcome, run.detail = outcome, detail
        run.save(update_fields=["outcome", "detail"])
    logger.info("dunning: %s on %s: %s (%s)", step, locked, outcome, detail)
    return outcome


def _remind(run: DunningRun, now: datetime) -> tuple[str, str]:
    email = reminder_email_schedule(run=run, now=now)
    if email is None:
        return (
            DunningRun.SKIPPED,
            "no email: the customer has no address, or invoice emails are off",
        )
    return DunningRun.DONE, f"reminder emailed to {', '.join(email.recipients)}"


def _retry(run: DunningRun, now: datetime) -> tuple[str, str]:
    if not collection.enabled():
        return DunningRun.SKIPPED, "Stripe is not configured"
    payment = Payment.objects.filter(invoice_id=run.invoice_id).first()
    if payment is None:
        payment = collection.invoice_collection_schedule(invoice=run.invoice, now=now)
        return DunningRun.DONE, f"payment #{payment.pk} asked of Stripe"
    if collection.hard_declined(payment):
        return (
            DunningRun.SKIPPED,
            f"not tried again: the card was declined ({payment.decline_code})",
        )
    if payment.status in Payment.OPEN:
        return DunningRun.SKIPPED, f"payment #{payment.pk} is already {payment.status}"
    if not collection.payment_retry_now(payment=payment, now=now):
        return DunningRun.SKIPPED, f"payment #{payment.pk} is {payment.status}"
    return DunningRun.DONE, f"payment #{payment.pk}: one more attempt asked of Stripe"


def _standing_step(run: DunningRun, now: datetime) -> tuple[str, str]:
    if run.action == DunningStep.SUSPEND:
        return DunningRun.DONE, "account suspended"
    return DunningRun.DONE, "account restricted"


ACTIONS = {
    DunningStep.REMIND: _remind,
    DunningStep.RETRY_PAYMENT: _retry,
    DunningStep.RESTRICT: _standing_step,
    DunningStep.SUSPEND: _standing_step,
}


def _standings(*, now: datetime, summary: DunningSummary) -> None:
    """Work out again the standing of the customers whose invoices had steps,
    of those who owe an invoice past due in good standing still, and of those
    not in good standing (a debt settled by a way that did not say so)."""
    owing = (
        owed_invoices(due_at__lte=now, customer__standing=GOOD)
        .values_list("customer_id", flat=True)
        .distinct()
    )
    ids = set(summary.customers) | set(owing)
    ids |= set(Customer.objects.filter(~Q(standing=GOOD)).values_list("id", flat=True))
    for customer_id in sorted(ids):
        if standing_refresh(customer_id=customer_id, now=now):
            summary.standings_changed += 1

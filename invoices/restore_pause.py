"""After a restore, sending waits for an operator (billing.notifications.outbound_pause):
what is held meanwhile, by kind; the periods billed again, each number a customer
may hold that the restored database lost beside the number that replaces it; and
the resume, which lifts the pause and queues at once everything that was held
(`manage.py after_restore --status` and `--resume`, the admin's "Sending after a
restore" page).

A lost invoice is matched to the restored database's invoice that bills the same
thing: the same row when its draft was in the backup (its id, which the restore
step keeps from being given to any other row), else the invoice of the same
subscription, reason and period (the close's unique key), once numbered. A lost
document neither finds (a purchase or a credit note made after the backup, a
period not closed again yet) is "not billed again yet"."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from billing.models import ChannelMessage, WebhookDelivery
from billing.notifications import alerts, channels, webhooks
from billing.notifications.outbound_pause import outbound_pause_get, outbound_pause_lift
from common import customer_text
from common.task_sending import enqueue_on_commit
from customers.models import Customer
from invoices import collection
from invoices.e_invoices import access_points
from invoices.models import DocumentEmail, Invoice, Payment

# Lost invoices matched by period, this many to a query.
MATCH_CHUNK = 500


@dataclass(frozen=True)
class Held:
    """What sending holds, by kind: ids to queue on resume (a webhook delivery
    with whether it is an alert's; an e-invoice as (model, id))."""

    document_emails: list[int] = field(default_factory=list)
    alert_emails: list[int] = field(default_factory=list)
    channel_emails: list[int] = field(default_factory=list)
    channel_webhooks: list[int] = field(default_factory=list)
    webhooks: list[tuple[int, bool]] = field(default_factory=list)
    e_invoices: list[tuple[str, int]] = field(default_factory=list)
    charges: list[int] = field(default_factory=list)

    @property
    def emails(self) -> int:
        """E-mails of every kind: documents', alerts' and channels'."""
        return len(self.document_emails) + len(self.alert_emails) + len(self.channel_emails)

    @property
    def webhook_count(self) -> int:
        """Webhooks of every kind: the merchant's endpoints' and channels'."""
        return len(self.webhooks) + len(self.channel_webhooks)

    def counts(self) -> dict[str, int]:
        """Each kind's count, in the order they are said."""
        return {
            "document e-mails": len(self.document_emails),
            "alert e-mails": len(self.alert_emails),
            "channel e-mails": len(self.channel_emails),
            "channel webhooks (Slack, Teams, Discord)": len(self.channel_webhooks),
            "webhooks": len(self.webhooks),
            "Peppol e-invoices": len(self.e_invoices),
            "Stripe charges of invoices": len(self.charges),
        }


def outbound_held(*, paused_at: datetime, now: datetime) -> Held:
    """What waits to be sent: every pending document e-mail, channel message,
    webhook delivery and charge of an invoice (with Stripe), the alert e-mails of
    alerts raised from a day before `paused_at` (the beat's window for an alert's
    e-mail) to `now`, the e-invoices issued from two days before it (the beat's)
    that no access point took. Reads only."""
    channel_messages = ChannelMessage.objects.filter(status=ChannelMessage.PENDING).order_by("id")
    pending_charges = Payment.objects.filter(
        invoice__isnull=False, status__in=(Payment.PENDING, Payment.ATTEMPTING)
    )
    return Held(
        document_emails=list(
            DocumentEmail.objects.filter(status=DocumentEmail.PENDING)
            .order_by("id")
            .values_list("id", flat=True)
        ),
        alert_emails=alerts.unsent_alert_emails(
            since=paused_at - alerts.UNSENT_EMAIL_WINDOW, until=now
        ),
        channel_emails=list(
            channel_messages.filter(kind=ChannelMessage.EMAIL).values_list("id", flat=True)
        ),
        channel_webhooks=list(
            channel_messages.exclude(kind=ChannelMessage.EMAIL).values_list("id", flat=True)
        ),
        webhooks=[
            (delivery_id, alert_id is not None)
            for delivery_id, alert_id in WebhookDelivery.objects.filter(
                status=WebhookDelivery.PENDING
            )
            .order_by("id")
            .values_list("id", "alert_id")
        ],
        e_invoices=access_points.e_invoices_not_sent(
            since=paused_at - access_points.SWEEP_WITHIN, until=now, limit=None
        ),
        charges=(
            list(pending_charges.order_by("id").values_list("id", flat=True))
            if collection.enabled()
            else []
        ),
    )


@dataclass(frozen=True)
class RebilledPeriod:
    """A number a customer may hold that the restored database lost, and what
    replaces it: `new_number` None while its period is not billed again."""

    lost_number: str
    new_number: str | None
    customer_external_id: str | None
    customer_name: str | None
    customer_id: int | None
    period_start: datetime | None
    period_end: datetime | None
    emailed_at: str | None
    zone: str

    def period_text(self) -> str:
        """The period in the customer's time zone, named ('1 Nov - 30 Nov 2026
        (Europe/Paris)'), in the active language; '' when unknown."""
        if self.period_start is None or self.period_end is None:
            return ""
        zone = customer_text.zone(self.zone)
        dates = customer_text.date_range(self.period_start, self.period_end, zone)
        return customer_text.named_zone(dates, zone)


def rebilled_periods(*, lost: list[dict]) -> list[RebilledPeriod]:
    """Each lost document (the pause's `lost`, in its order) beside the invoice
    that bills it again here (the module's docstring), if any. Reads only: a
    few queries whatever the number of documents."""
    customers = Customer.objects.in_bulk({e["customer"] for e in lost if e.get("customer")})
    same_rows = (
        Invoice.objects.exclude(number=None)
        .select_related("customer")
        .in_bulk([e["document"] for e in lost if e.get("kind") == "invoices" and e.get("document")])
    )
    by_period = _invoices_by_period(e for e in lost if _period_key(e) is not None)
    periods = []
    for entry in lost:
        again = same_rows.get(entry.get("document")) if entry.get("kind") == "invoices" else None
        if again is None or again.customer_id != entry.get("customer"):
            again = by_period.get(_period_key(entry))
        if again is not None and again.number == entry["number"]:
            again = None
        customer = again.customer if again is not None else customers.get(entry.get("customer"))
        start = again.period_start if again is not None else _instant(entry.get("period_start"))
        end = again.period_end if again is not None else _instant(entry.get("period_end"))
        periods.append(
            RebilledPeriod(
                lost_number=entry["number"],
                new_number=again.number if again is not None else None,
                customer_external_id=customer.external_id if customer else None,
                customer_name=customer.name if customer else None,
                customer_id=entry.get("customer"),
                period_start=start,
                period_end=end,
                emailed_at=entry.get("emailed_at"),
                zone=customer.timezone if customer else "UTC",
            )
        )
    return periods


def _period_key(entry: dict) -> tuple | None:
    """(subscription, reason, period start, period end) of a lost invoice whose
    record says what it billed; None otherwise."""
    start, end = _instant(entry.get("period_start")), _instant(entry.get("period_end"))
    if not entry.get("subscription") or not entry.get("reason") or start is None or end is None:
        return None
    return (entry["subscription"], entry["reason"], start, end)


def _invoices_by_period(entries: Iterable[dict]) -> dict[tuple, Invoice]:
    keys = [_period_key(entry) for entry in entries]
    found: dict[tuple, Invoice] = {}
    for first in range(0, len(keys), MATCH_CHUNK):
        matches = Q()
        for subscription, reason, start, end in keys[first : first + MATCH_CHUNK]:
            matches |= Q(
                subscription_id=subscription, reason=reason, period_start=start, period_end=end
            )
        for invoice in (
            Invoice.objects.filter(matches).exclude(number=None).select_related("customer")
        ):
            key = (
                invoice.subscription_id,
                invoice.reason,
                invoice.period_start,
                invoice.period_end,
            )
            found[key] = invoice
    return found


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class PauseState:
    """The pause as an operator reads it: since when (None: not paused), who
    lifted the last one and when, what is held, the periods billed again."""

    paused_since: datetime | None
    resumed_at: datetime | None
    resumed_by: str
    held: Held
    periods: list[RebilledPeriod]


def outbound_pause_state(*, now: datetime) -> PauseState | None:
    """The pause's state at `now`, or None when no restore ever paused sending.
    Nothing is counted as held once sending is resumed. Reads only."""
    pause = outbound_pause_get()
    if pause is None:
        return None
    held = outbound_held(paused_at=pause.paused_at, now=now) if pause.paused_at else Held()
    return PauseState(
        paused_since=pause.paused_at,
        resumed_at=pause.resumed_at,
        resumed_by=pause.resumed_by,
        held=held,
        periods=rebilled_periods(lost=pause.lost),
    )


def outbound_resume(*, now: datetime, by: str) -> Held | None:
    """Lift the pause and queue, once it commits, everything it held (outbound_held):
    nothing waits for the beat's next sweep, nor misses it (a sweep's window and
    grace do not apply). Each sender claims its row, so what a sweep queues as well
    is sent once (an alert's e-mail, at least once, as ever). None when sending was
    not paused: nothing changes, nothing is queued."""
    with transaction.atomic():
        paused_at = outbound_pause_lift(now=now, by=by)
        if paused_at is None:
            return None
        held = outbound_held(paused_at=paused_at, now=now)
        for email_id in held.document_emails:
            enqueue_on_commit("invoices.tasks.send_document_email", email_id)
        for alert_id in held.alert_emails:
            enqueue_on_commit("billing.tasks.send_alert_email", alert_id)
        for message_id in (*held.channel_emails, *held.channel_webhooks):
            enqueue_on_commit(channels.TASK, message_id)
        for urgent in (True, False):
            webhooks.webhook_deliveries_enqueue(
                delivery_ids=[pk for pk, is_alert in held.webhooks if is_alert is urgent],
                urgent=urgent,
            )
        for model, document_id in held.e_invoices:
            enqueue_on_commit("invoices.tasks.e_invoice_send", model, document_id)
        for payment_id in held.charges:
            collection.attempt_after_commit(payment_id)
    return held

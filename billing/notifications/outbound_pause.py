"""The pause of what leaves after a restore (billing.models.OutboundPause): set by
the restore step (invoices.after_restore), read by every sender when it sends,
lifted by an operator once the periods billed again are read
(invoices.restore_pause.outbound_resume).

While paused, document e-mails, alert e-mails, channel messages, webhook
deliveries, Peppol e-invoices and Stripe charges of invoices are held: each sender
finds the pause before it claims its row and leaves it as it was (pending, its
attempts not counted, no retry spent), and the beat's sweeps find nothing due. The
work written meanwhile (a close's invoices, their e-mails) is written as ever.

One row, read with one indexed query per send: the database is the one place
every web, worker and beat process reads, so a resume reaches them all at once."""

from datetime import datetime

from django.db import transaction

from billing.models import OutboundPause


def outbound_paused() -> bool:
    """Whether sending is paused now: what every sender asks before it sends."""
    return OutboundPause.objects.filter(paused_at__isnull=False).exists()


def outbound_pause_get() -> OutboundPause | None:
    """The pause's row (paused or lifted), or None when no restore ever set it."""
    return OutboundPause.objects.filter(pk=OutboundPause.ONLY).first()


def outbound_pause_set(*, now: datetime, reason: str, lost: list[dict]) -> OutboundPause:
    """Pause sending (from `now`, or since when it is paused already) and add the
    `lost` documents to those the row keeps (by number: a number kept is kept as
    first recorded, so a second restore step that finds fewer lost, the close
    having billed their periods again since, loses none). Idempotent."""
    with transaction.atomic():
        OutboundPause.objects.get_or_create(pk=OutboundPause.ONLY)
        pause = OutboundPause.objects.select_for_update().get(pk=OutboundPause.ONLY)
        known = {entry.get("number") for entry in pause.lost}
        pause.lost = [*pause.lost, *(entry for entry in lost if entry["number"] not in known)]
        if pause.paused_at is None:
            pause.paused_at = now
            pause.resumed_at = None
            pause.resumed_by = ""
        pause.reason = reason
        pause.save()
    return pause


def outbound_pause_lift(*, now: datetime, by: str) -> datetime | None:
    """Lift the pause, saying when and by whom; since when it was paused, or None
    when sending was not paused (nothing changes). In the caller's transaction
    when there is one: the caller enqueues what was held once it commits."""
    with transaction.atomic():
        pause = OutboundPause.objects.select_for_update().filter(pk=OutboundPause.ONLY).first()
        if pause is None or pause.paused_at is None:
            return None
        paused_at = pause.paused_at
        pause.paused_at = None
        pause.resumed_at = now
        pause.resumed_by = by[:150]
        pause.save(update_fields=["paused_at", "resumed_at", "resumed_by"])
    return paused_at

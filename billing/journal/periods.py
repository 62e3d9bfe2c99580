"""Months finance locks: documents dated in a locked month are journaled on the
first day of the next open month (billing.journal.writer.booking_date). Only a
month that has ended can be locked; finance lifts a lock with a reason, kept on
the lock's row with who lifted it and when."""

import re
from datetime import date, datetime

from django.db import IntegrityError, transaction

from billing.journal.models import JournalPeriodLock
from billing.journal.writer import document_day, month_start
from common.errors import Conflict, InvalidRequest, NotFound

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)


def month_parse(text: str) -> date:
    """'2026-11' -> 2026-11-01; InvalidRequest for anything else."""
    found = MONTH.fullmatch(text or "")
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise InvalidRequest(
            f"a month is written YYYY-MM (2026-11), not {text!r}", fields={"month": ["YYYY-MM"]}
        )
    return date(int(found.group(1)), int(found.group(2)), 1)


def _last_month_ended(now: datetime) -> date:
    """The first day of the last month that has ended by `now`, in the journal's
    zone (UTC, as document_day)."""
    this_month = month_start(document_day(now))
    return date(this_month.year - (this_month.month == 1), (this_month.month - 2) % 12 + 1, 1)


def journal_month_lock(*, month: date, now: datetime, by: str = "") -> JournalPeriodLock:
    """Lock a month (its first day). A month that has not ended (the current one,
    a future one) is refused (400): locking it would push today's documents into
    a month to come. Locking a locked month is refused (409). Nothing changes on a
    refusal. Entries already written keep their dates: a lock moves only the
    entries written after it. `by`: who locks it, in words."""
    month = month_start(month)
    last = _last_month_ended(now)
    if month > last:
        raise InvalidRequest(
            f"{month:%Y-%m} has not ended: only a month that has ended can be locked "
            f"({last:%Y-%m} is the last)",
            fields={"month": ["not ended"]},
        )
    try:
        with transaction.atomic():
            return JournalPeriodLock.objects.create(month=month, locked_at=now, locked_by=by[:150])
    except IntegrityError as error:
        raise Conflict(f"{month:%Y-%m} is locked already") from error


REASON_MAX = JournalPeriodLock._meta.get_field("lift_reason").max_length


def journal_month_unlock(*, month: date, reason: str, by: str, now: datetime) -> JournalPeriodLock:
    """Lift a month's lock, saying why: the lock's row keeps the reason, who lifted
    it (`by`, in words) and when; documents written afterwards are journaled in the
    month again (entries written while it was locked keep their dates: a
    correction is a document of its own). Finance's alone: the API's `admin`
    scope, the admin's `billing.lift_journalperiodlock` permission. No reason, or
    one too long, is refused (400); a month not locked, 404. Nothing changes on a
    refusal."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest(
            "a reason is required to lift a month's lock", fields={"reason": ["required"]}
        )
    if len(reason) > REASON_MAX:
        raise InvalidRequest(
            f"the reason is at most {REASON_MAX} characters",
            fields={"reason": [f"at most {REASON_MAX} characters"]},
        )
    month = month_start(month)
    with transaction.atomic():
        # The lock in force, under its row lock: of two lifts at once, the second
        # finds it lifted and is told the month is not locked.
        lock = (
            JournalPeriodLock.objects.select_for_update()
            .filter(month=month, lifted_at__isnull=True)
            .first()
        )
        if lock is None:
            raise NotFound(f"{month:%Y-%m} is not locked")
        lock.lifted_at, lock.lifted_by, lock.lift_reason = now, by[:150], reason
        lock.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    return lock

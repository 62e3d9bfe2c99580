"""Months finance locks: documents dated in a locked month are journaled on the
first day of the next open month (billing.journal.writer.booking_date). Only a
month that has ended can be locked."""

import re
from datetime import date, datetime

from django.db import IntegrityError, transaction

from billing.core.errors import Conflict, InvalidRequest
from billing.journal.models import JournalPeriodLock
from billing.journal.writer import document_day, month_start

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


def journal_month_lock(*, month: date, now: datetime) -> JournalPeriodLock:
    """Lock a month (its first day). A month that has not ended (the current one,
    a future one) is refused (400): locking it would push today's documents into
    a month to come. Locking a locked month is refused (409). Nothing changes on a
    refusal. Entries already written keep their dates: a lock moves only the
    entries written after it."""
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
            return JournalPeriodLock.objects.create(month=month, locked_at=now)
    except IntegrityError as error:
        raise Conflict(f"{month:%Y-%m} is locked already") from error

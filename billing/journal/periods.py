"""Months finance locks: documents dated in a locked month are journaled on the
first day of the next open month (billing.journal.writer.booking_date)."""

import re
from datetime import date, datetime

from django.db import IntegrityError, transaction

from billing.core.errors import Conflict, InvalidRequest
from billing.journal.models import JournalPeriodLock

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII)


def month_parse(text: str) -> date:
    """'2026-11' -> 2026-11-01; InvalidRequest for anything else."""
    found = MONTH.fullmatch(text or "")
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        raise InvalidRequest(
            f"a month is written YYYY-MM (2026-11), not {text!r}", fields={"month": ["YYYY-MM"]}
        )
    return date(int(found.group(1)), int(found.group(2)), 1)


def journal_month_lock(*, month: date, now: datetime) -> JournalPeriodLock:
    """Lock a month (its first day). Locking a locked month is refused (409) and
    changes nothing. Entries already written keep their dates: a lock moves
    only the entries written after it."""
    try:
        with transaction.atomic():
            return JournalPeriodLock.objects.create(month=month.replace(day=1), locked_at=now)
    except IntegrityError as error:
        raise Conflict(f"{month:%Y-%m} is locked already") from error

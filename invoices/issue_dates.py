"""When a document is issued, and so the date it prints: its number, issue date,
due date and journal entries are given at the real moment it is finalized, never
at the moment it bills. A close run back-dated (`close_periods --as-of`) decides
which periods close and what they bill; what it issues is dated today, and
numbered after everything issued before it, as EU invoicing rules ask.

Two exceptions, each said where it happens:
- recording history on purpose (the demo's past months, an import from another
  system): inside `history_recorded()`, a document is dated at the moment it
  bills, as if it had been issued then;
- a clock that runs behind the moments billed: only a test's (production refuses
  a close in the future), where a document is dated at the moment it bills
  rather than before the period it closes has ended. Tests move the clock with
  time_machine; there is no flag for it in production."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.utils import timezone

_recording_history: ContextVar[bool] = ContextVar("recording_history", default=False)


def issue_moment(billed: datetime) -> datetime:
    """The moment a document billing `billed` (a period's end, a change's
    moment, now) is issued: now, or `billed` when that is later (a test's clock)
    or when history is being recorded."""
    if _recording_history.get():
        return billed
    return max(billed, timezone.now())


def recording_history() -> bool:
    return _recording_history.get()


@contextmanager
def history_recorded() -> Iterator[None]:
    """Within it, documents are dated at the moment they bill: for loading
    history on purpose (the demo's past months), never for a close."""
    token = _recording_history.set(True)
    try:
        yield
    finally:
        _recording_history.reset(token)

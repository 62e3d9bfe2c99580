"""What an invoice books to deferred revenue when it is issued, rather than to
revenue: what it sells to be earned later. One rule, read by the invoice's
journal entries (invoices.journal_entries) and by earned revenue and the
recognition entries (billing.revenue.earned, billing.revenue.recognition), so
the revenue report and the books recognize alike:

- what is sold to be used later (credit packs, credits, top-ups, a prepaid
  commit, and a commit's drawdown taking from it): earned as drawn, breakage
  at expiry, by the wallets' own documents;
- a fee billed in advance: a line earned straight-line over its service period
  (not usage, which is billed as it happened) whose service period ends after
  the invoice is issued. Recognized as it is earned by the recognition entries
  (deferred revenue -> revenue, per seller and day or month)."""

from datetime import datetime

from common.vocabulary import LineKind

# Earned as the usage happened, billed after it.
USAGE_KINDS = (LineKind.USAGE, LineKind.OVERAGE, LineKind.UNCOVERED_USAGE, LineKind.LATE_USAGE)
# Sold to be used later: deferred at issue, earned as drawn (and breakage).
SOLD_FOR_LATER = frozenset(
    {
        LineKind.CREDIT_PACK,
        LineKind.CREDITS,
        LineKind.TOP_UP,
        LineKind.COMMIT,
        LineKind.COMMIT_DRAWDOWN,
    }
)
# Lines that are no fee: usage, what is sold for later, and what earns nothing
# itself (the discount, tax, the credit balance applied, threshold invoices
# taken off).
NOT_FEES = frozenset(
    {
        *USAGE_KINDS,
        *SOLD_FOR_LATER,
        LineKind.DISCOUNT,
        LineKind.TAX,
        LineKind.CREDITS_APPLIED,
        LineKind.USAGE_INVOICED,
    }
)


def billed_in_advance(
    *,
    kind: str,
    period_start: datetime | None,
    period_end: datetime | None,
    issued_at: datetime | None,
) -> bool:
    """Whether a line is a fee billed in advance: a fee with a service period
    that ends after its invoice was issued (`issued_at`; None: not issued), by
    an invoice issued once the journal deferred such fees (DeferralStart)."""
    return (
        issued_at is not None
        and kind not in NOT_FEES
        and not issued_before_deferral(issued_at)
        and period_start is not None
        and period_end is not None
        and period_start < period_end
        and period_end > issued_at
    )


def deferred_at_issue(
    *,
    kind: str,
    period_start: datetime | None,
    period_end: datetime | None,
    issued_at: datetime | None,
) -> bool:
    """Whether the invoice books the line to deferred revenue when issued."""
    return kind in SOLD_FOR_LATER or billed_in_advance(
        kind=kind, period_start=period_start, period_end=period_end, issued_at=issued_at
    )


_START: list = []


def issued_before_deferral(issued_at: datetime) -> bool:
    """Whether an invoice issued at `issued_at` was issued before the journal
    deferred fees billed in advance (DeferralStart, read once a process): it
    booked them to revenue at issue."""
    if not _START:
        from billing.journal.models import DeferralStart

        _START.append(DeferralStart.objects.values_list("since", flat=True).first())
    return _START[0] is not None and issued_at < _START[0]


def deferral_start_forget() -> None:
    """Read DeferralStart again at the next question (tests that set it)."""
    _START.clear()

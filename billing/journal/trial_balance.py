"""A seller's trial balance: per account, its balance at the start of a date
range (opening), the debits and credits dated in it and its balance at the end
(closing = opening + debit - credit), in the seller's functional currency. Every
document balances in it, so the closings add up to zero."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Case, DecimalField, F, Max, Q, Sum, Value, When
from django.db.models.functions import Coalesce

from billing.journal.entities import functional_currency_of
from billing.journal.functional import functional_missing_refusal
from billing.journal.models import MONEY, JournalEntry
from common.errors import InvalidRequest
from common.money import format_money
from common.spreadsheet_csv import Figure, SpreadsheetCsv

ZERO = Decimal(0)


@dataclass(frozen=True)
class TrialBalanceLine:
    account: str
    account_name: str
    opening: Decimal
    debit: Decimal
    credit: Decimal

    @property
    def closing(self) -> Decimal:
        """Debit balance at the range's end (negative: a credit balance)."""
        return self.opening + self.debit - self.credit


@dataclass(frozen=True)
class EntityTrialBalance:
    billing_entity: str
    currency: str
    start: date
    end: date
    lines: list[TrialBalanceLine]


def _signed(condition: Q, field: str):
    money = DecimalField(**MONEY)
    return Coalesce(
        Sum(Case(When(condition, then=F(field)), default=Value(ZERO), output_field=money)),
        Value(ZERO),
        output_field=money,
    )


def entity_trial_balance(*, billing_entity: str, start: date, end: date) -> EntityTrialBalance:
    """The trial balance of a seller (its code, checked by books_entity) for the
    entries dated in [start, end), ordered by account code: every account with an
    entry dated before `end`, named as its latest entry names it. Refused (400,
    `missing_rates`) while an entry dated before `end` waits for its exchange
    rate: its functional amount is unknown, so would every balance be."""
    if end < start:
        raise InvalidRequest(
            f"to ({end}) is before from ({start})", fields={"to": ["not before from"]}
        )
    entries = JournalEntry.objects.filter(billing_entity=billing_entity, date__lt=end)
    functional_missing_refusal(entries, what="the trial balance")
    before, within = Q(date__lt=start), Q(date__gte=start)
    rows = list(
        entries.values("account")
        .annotate(
            opening_debit=_signed(before, "functional_debit"),
            opening_credit=_signed(before, "functional_credit"),
            debit=_signed(within, "functional_debit"),
            credit=_signed(within, "functional_credit"),
            latest=Max("id"),
        )
        .order_by("account")
    )
    names = dict(
        JournalEntry.objects.filter(pk__in=[row["latest"] for row in rows]).values_list(
            "account", "account_name"
        )
    )
    lines = [
        TrialBalanceLine(
            account=row["account"],
            account_name=names[row["account"]],
            opening=row["opening_debit"] - row["opening_credit"],
            debit=row["debit"],
            credit=row["credit"],
        )
        for row in rows
    ]
    return EntityTrialBalance(
        billing_entity, functional_currency_of(billing_entity), start, end, lines
    )


TRIAL_BALANCE_COLUMNS = [
    "billing_entity",
    "account",
    "account_name",
    "currency",
    "opening",
    "debit",
    "credit",
    "closing",
]


def trial_balance_lines(balance: EntityTrialBalance) -> Iterator[str]:
    """The trial balance as CSV, one line an account."""
    writer = SpreadsheetCsv()
    yield writer.row(TRIAL_BALANCE_COLUMNS)
    money = balance.currency
    for line in balance.lines:
        yield writer.row(
            [
                balance.billing_entity,
                line.account,
                line.account_name,
                money,
                Figure(format_money(line.opening, money)),
                Figure(format_money(line.debit, money)),
                Figure(format_money(line.credit, money)),
                Figure(format_money(line.closing, money)),
            ]
        )

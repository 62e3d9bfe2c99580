"""Gap-free document numbers: INV-2026-000001 for invoices, CN-2026-000001 for
credit notes, one sequence per prefix and year: the seller's year, in its zone
(BillingEntity.timezone), so that a seller's sequence turns over once, at its
own new year, whatever zone the machine or the customer is in."""

import re
from datetime import datetime

from django.db import connection

from common.customer_text import zone
from invoices.models import InvoiceSequence

# A number: the sequence's name, a dash, the position (6 digits, more past 999,999).
NUMBER = re.compile(r"^(?P<sequence>.+)-(?P<position>\d+)$")


def number_of(sequence: str, position: int) -> str:
    """The number at `position` of the sequence named `sequence` (INV-2026-000001)."""
    return f"{sequence}-{position:06d}"


def number_parts(number: str) -> tuple[str, int] | None:
    """The sequence's name and the position of a number (number_of's inverse), or
    None for what is no number."""
    match = NUMBER.match(number)
    return (match["sequence"], int(match["position"])) if match else None


def numbering_year(moment: datetime, seller) -> int:
    """The year a document `seller` issues at `moment` is numbered in: the year
    it is then in the seller's zone (UTC for a seller without one)."""
    return moment.astimezone(zone(getattr(seller, "timezone", ""))).year


def next_number(prefix: str, year: int) -> str:
    """Take the next number of the year's sequence (next_numbers)."""
    return next_numbers(prefix, year, 1)[0]


def next_numbers(prefix: str, year: int, count: int) -> list[str]:
    """Take the next `count` numbers of the year's sequence, in order: one UPDATE,
    which locks the sequence row until the caller's transaction ends, so numbers
    are gap-free (a rollback gives them back) and never taken twice. The caller
    uses every number it takes, in the same transaction."""
    name = f"{prefix}-{year}"
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE invoices_invoicesequence SET next_number = next_number + %s "
                "WHERE name = %s RETURNING next_number - %s",
                [count, name, count],
            )
            row = cursor.fetchone()
        if row is not None:
            return [number_of(name, number) for number in range(row[0], row[0] + count)]
        InvoiceSequence.objects.get_or_create(name=name)
    raise RuntimeError(f"sequence {name} could not be created")

"""Gap-free document numbers: INV-2026-000001 for invoices, CN-2026-000001 for
credit notes, one sequence per prefix and year."""

from django.db import connection

from invoices.models import InvoiceSequence


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
            return [f"{name}-{number:06d}" for number in range(row[0], row[0] + count)]
        InvoiceSequence.objects.get_or_create(name=name)
    raise RuntimeError(f"sequence {name} could not be created")

"""Gap-free document numbers: INV-2026-000001 for invoices, CN-2026-000001 for
credit notes, one sequence per prefix and year."""

from django.db import connection

from invoices.models import InvoiceSequence


def next_number(prefix: str, year: int) -> str:
    """Take the next number of the year's sequence: one UPDATE, which locks the
    sequence row until the caller's transaction ends, so numbers are gap-free (a
    rollback gives them back) and never taken twice."""
    name = f"{prefix}-{year}"
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE invoices_invoicesequence SET next_number = next_number + 1 "
                "WHERE name = %s RETURNING next_number - 1",
                [name],
            )
            row = cursor.fetchone()
        if row is not None:
            return f"{name}-{row[0]:06d}"
        InvoiceSequence.objects.get_or_create(name=name)
    raise RuntimeError(f"sequence {name} could not be created")

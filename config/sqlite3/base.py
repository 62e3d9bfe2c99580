"""Django's SQLite backend, reading whole decimals back exactly.

SQLite stores a decimal column's value as an INTEGER when it is whole and fits
in 64 bits, exactly, and otherwise as a REAL (a double, of which 15 significant
digits survive). Django reads both through a float context of 15 digits, so a
whole total of 16 to 19 digits that SQLite kept exactly (1000000000000001 tokens,
the sum of two 15-digit quantities) came back rounded. Here an INTEGER becomes
the Decimal it is; a REAL is read as Django reads it. What still has no exact
form in SQLite is a value with a fraction beyond 15 significant digits: the
application refuses such inputs there (common.money.storable_exactly),
and PostgreSQL keeps every digit."""

from decimal import Decimal

from django.db.backends.sqlite3 import base, operations
from django.db.models.expressions import Col


class DatabaseOperations(operations.DatabaseOperations):
    def get_decimalfield_converter(self, expression):
        rounded = super().get_decimalfield_converter(expression)
        # As Django: a column's value to its field's places, a computed one as it is.
        quantum = None
        if isinstance(expression, Col):
            quantum = Decimal(1).scaleb(-expression.output_field.decimal_places)

        def converter(value, expression, connection):
            if type(value) is not int:
                return rounded(value, expression, connection)
            whole = Decimal(value)
            if quantum is None:
                return whole
            return whole.quantize(quantum, context=expression.output_field.context)

        return converter


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

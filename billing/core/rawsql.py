"""Hand-written reads for the hot paths: the check in front of every AI call and
the usage read. Compiling a queryset costs about a millisecond, most of what a
check costs; these reads send fixed SQL instead. The SQL is plain enough for
PostgreSQL and SQLite alike, and values go in and come out converted exactly as
the ORM converts them (an aware datetime in, a Decimal out, on either backend).
Everything else keeps the ORM."""

from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import Field, Model


def _param(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


@cache
def _converters(vendor: str, fields: tuple[Field | None, ...]) -> tuple:
    """Per column: (expression, converters) as the ORM's compiler gets them."""
    del vendor  # part of the cache key: converters differ per backend
    columns = []
    for field in fields:
        if field is None:
            columns.append((None, ()))
            continue
        column = field.get_col(field.model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        columns.append((column, tuple(found)))
    return tuple(columns)


def rows(sql: str, params: list, fields: tuple[Field | None, ...]) -> list[tuple]:
    """The rows of `sql`, whose columns hold values of `fields`, in that order (None:
    a column taken as it comes, such as text)."""
    columns = _converters(connection.vendor, fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, [_param(p) for p in params])
        found = cursor.fetchall()
    if not any(converters for _, converters in columns):
        return found
    converted = []
    for row in found:
        values = []
        for value, (column, converters) in zip(row, columns, strict=True):
            for converter in converters:
                value = converter(value, column, connection)
            values.append(value)
        converted.append(tuple(values))
    return converted


def ids(sql: str, params: list) -> list[int]:
    """The first column of `sql`'s rows: ids, found by fixed SQL so that the
    instances are loaded (by the ORM) only when there are any."""
    with connection.cursor() as cursor:
        cursor.execute(sql, [_param(p) for p in params])
        return [row[0] for row in cursor.fetchall()]


def execute(sql: str, params: list) -> int:
    """Run a fixed write; returns how many rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, [_param(p) for p in params])
        return cursor.rowcount


def lock_clause() -> str:
    """' FOR UPDATE' where the database locks rows (PostgreSQL), '' elsewhere
    (SQLite, which writes one transaction at a time)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def model_fields(model: type[Model], attnames: tuple[str, ...]) -> tuple[Field, ...]:
    """The model's fields of these attnames, in the model's order, as `instance`
    takes them."""
    return tuple(f for f in model._meta.concrete_fields if f.attname in attnames)


def instance(fields: tuple[Field, ...], values) -> Model:
    """An instance of the fields' model from these of its columns (the others load
    on access, as with `.only()`); `fields` in the model's field order."""
    model = fields[0].model
    return model.from_db(connection.alias, tuple(f.attname for f in fields), values)


def converters_cache_clear() -> None:
    _converters.cache_clear()

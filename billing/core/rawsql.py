"""Hand-written reads for the hot paths: the check in front of every AI call and
the usage read. Compiling a queryset costs about a millisecond, most of what a
check costs; these reads send fixed SQL instead. The SQL is plain enough for
PostgreSQL and SQLite alike, and values go in and come out converted exactly as
the ORM converts them (an aware datetime in, a Decimal out, on either backend).
On PostgreSQL they run on the connection's `prepared_cursor` where it has one
(config.postgresql): prepared once they run often, so not planned on every run.
Everything else keeps the ORM."""

from datetime import datetime
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model


def _param(db, value):
    if isinstance(value, datetime):
        return db.ops.adapt_datetimefield_value(value)
    return value


@cache
def _converters(vendor: str, fields: tuple[Field | None, ...]) -> tuple:
    """The columns that need converting, as the ORM's compiler converts them:
    (position, expression, converters) for each."""
    del vendor  # part of the cache key: converters differ per backend
    columns = []
    for position, field in enumerate(fields):
        if field is None:
            continue
        column = field.get_col(field.model._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            columns.append((position, column, tuple(found)))
    return tuple(columns)


def rows(sql: str, params: list, fields: tuple[Field | None, ...]) -> list[tuple]:
    """The rows of `sql`, whose columns hold values of `fields`, in that order (None:
    a column taken as it comes, such as text)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
    columns = _converters(db.vendor, fields)
    with getattr(db, "prepared_cursor", db.cursor)() as cursor:
        cursor.execute(sql, [_param(db, p) for p in params])
        found = cursor.fetchall()
    if not columns:
        return found
    converted = []
    for row in found:
        if len(row) != len(fields):
            raise ValueError(f"{len(row)} columns for {len(fields)} fields")
        values = list(row)
        for position, column, converters in columns:
            value = values[position]
            for converter in converters:
                value = converter(value, column, db)
            values[position] = value
        converted.append(tuple(values))
    return converted


def ids(sql: str, params: list) -> list[int]:
    """The first column of `sql`'s rows: ids, found by fixed SQL so that the
    instances are loaded (by the ORM) only when there are any."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(sql, [_param(db, p) for p in params])
        return [row[0] for row in cursor.fetchall()]


def execute(sql: str, params: list) -> int:
    """Run a fixed write; returns how many rows it changed."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(sql, [_param(db, p) for p in params])
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
    return model.from_db(DEFAULT_DB_ALIAS, tuple(f.attname for f in fields), values)


def converters_cache_clear() -> None:
    _converters.cache_clear()

"""Hand-written reads for the hot paths: the check in front of every AI call and
the usage read. Compiling a queryset costs about a millisecond, most of what a
check costs; these reads send fixed SQL instead. The SQL is plain enough for
PostgreSQL and SQLite alike, and values go in and come out converted exactly as
the ORM converts them (an aware datetime in, a Decimal out, on either backend).
On PostgreSQL they run on the connection's `prepared_cursor` where it has one
(config.postgresql): prepared once they run often, so not planned on every run.
The period close's writes (its invoice, lines, billed period and the
subscription's update) go through `insert` and `update`: the model's own
instances and value preparation, without compiling a statement each time, and
prepared as the reads are (a period close sends each of its statements once per
subscription; planning them was a sixth of its PostgreSQL time). `execute`
alone binds on the client: its statements (the finalization's batch UPDATE)
vary with every batch, so preparing them would only churn the connection's
statement cache (psycopg keeps the 100 last used). An IN list of `ids` or the
rows of an `insert` vary less (a few sizes recur). Everything else keeps the
ORM.

A request that reads the same statements every time (a check: its customer and
wallets, then the same period's usage) may read them ahead (`read_ahead`): the
statements its previous two reads under the same key both ran after the first,
among those marked `ahead` (a statement whose rows mean the same whichever of
the request's statements ran before it: not one whose rows must be read after
another's, as the edge cache's aggregate after its counts), are sent in the
first one's round trip on PostgreSQL; a statement then run with the same text
and parameters takes the rows read ahead instead of a round trip of its own.
Nothing is cached but which statements to send: their rows are read in the same
request, after it began, each statement in its own snapshot as it would have
been. A statement sent ahead and not asked for costs its execution; one that
fails fails the request, as it would have when asked."""

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.models import Field, Model, signals
from django.db.models.base import DEFERRED


def _prepared_cursor(db):
    """A cursor whose statements PostgreSQL prepares once they recur (config.
    postgresql); a plain cursor on other databases."""
    return getattr(db, "prepared_cursor", db.cursor)()


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


def rows(
    sql: str, params: list, fields: tuple[Field | None, ...], *, ahead: bool = False
) -> list[tuple]:
    """The rows of `sql`, whose columns hold values of `fields`, in that order (None:
    a column taken as it comes, such as text). `ahead`: the statement may be read
    ahead in a read_ahead block, its rows meaning the same whichever of the
    request's statements ran before it."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the proxy looks it up
    columns = _converters(db.vendor, fields)
    found = _found(db, sql, [_param(db, p) for p in params], ahead=ahead)
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


def ids(sql: str, params: list, *, ahead: bool = False) -> list[int]:
    """The first column of `sql`'s rows: ids, found by fixed SQL so that the
    instances are loaded (by the ORM) only when there are any. `ahead` as `rows`."""
    db = connections[DEFAULT_DB_ALIAS]
    found = _found(db, sql, [_param(db, p) for p in params], ahead=ahead)
    return [row[0] for row in found]


def _found(db, sql: str, values: list, *, ahead: bool) -> list[tuple]:
    answers = _answers.get()
    if answers:
        known = answers.pop(_statement(sql, values), None)
        if known is not None:
            return list(known)
    reading = _reading.get()
    if reading is None:
        return _fetched(db, sql, values)
    return reading.rows(db, sql, values, ahead=ahead)


def _fetched(db, sql: str, values: list) -> list[tuple]:
    with _prepared_cursor(db) as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall()


def _fetched_together(db, statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """The rows of each statement, all sent in one round trip (psycopg's pipeline
    mode). PostgreSQL runs them in order, each in its own snapshot, in one
    implicit transaction: an error fails them all."""
    cursors = [_prepared_cursor(db) for _ in statements]  # connects, if need be
    try:
        with db.wrap_database_errors, db.connection.pipeline():
            for cursor, (sql, values) in zip(cursors, statements, strict=True):
                cursor.execute(sql, values)
        return [cursor.fetchall() for cursor in cursors]
    except Exception:
        # A statement the failure aborted may have been one psycopg was preparing
        # (its prepare_threshold-th run): psycopg then counts it prepared although
        # the server never made it, and every later run of it on this connection
        # would fail. Outside a transaction, a new connection; inside one, the
        # rollback it now needs clears psycopg's statements.
        if not db.in_atomic_block:
            db.close()
        raise
    finally:
        for cursor in cursors:
            cursor.close()


# A statement as read_ahead knows it: its text and its parameters, each with its
# type and written out (1, 1.0 and True are equal in Python, Decimal("1") and
# Decimal("1.0") too, not in SQL).
Statement = tuple[str, tuple]


def _statement(sql: str, values: list) -> Statement:
    return (sql, tuple((type(v), repr(v)) for v in values))


class _Reading:
    """One read_ahead block: the statements to send with its first, the rows read
    ahead (by statement), and the statements marked `ahead` it ran after the first."""

    def __init__(self, ahead: dict[Statement, tuple[str, tuple]]):
        self.ahead = ahead
        self.first = True
        self.read: dict[Statement, list[tuple]] = {}
        self.ran: dict[Statement, tuple[str, tuple]] = {}

    def rows(self, db, sql: str, values: list, *, ahead: bool) -> list[tuple]:
        if self.first:
            self.first = False
            if not self.ahead or db.vendor != "postgresql":
                return _fetched(db, sql, values)
            together = [(sql, values), *((text, list(sent)) for text, sent in self.ahead.values())]
            found, *read = _fetched_together(db, together)
            self.read = dict(zip(self.ahead, read, strict=True))
            return found
        if not ahead:
            return _fetched(db, sql, values)
        statement = _statement(sql, values)
        if len(self.ran) < READ_AHEAD_STATEMENTS:
            self.ran.setdefault(statement, (sys.intern(sql), tuple(values)))
        if statement in self.read:
            return self.read.pop(statement)
        return _fetched(db, sql, values)


# At most this many statements are sent ahead of a first (a usage read sends 9, its
# holds' among them), and this many keys remembered per process (the least recently
# used forgotten first).
READ_AHEAD_STATEMENTS = 10
READ_AHEAD_KEYS = 2_000


class _RanBefore:
    """By key, the statements the last block ran after its first, and those of
    them the block before it ran too: the ones sent ahead. A statement whose
    parameters change every time (the clock) is never sent ahead."""

    def __init__(self):
        self._blocks: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def steady(self, key) -> dict[Statement, tuple[str, tuple]]:
        """The statements to send ahead of the key's next block: each with its text
        and parameters."""
        with self._lock:
            found = self._blocks.get(key)
            if found is None:
                return {}
            self._blocks.move_to_end(key)
            return found[1]

    def ahead(self, key) -> tuple[tuple[str, tuple], ...]:
        """The texts and parameters of the statements to send ahead."""
        return tuple(self.steady(key).values())

    def note(self, key, ran: dict[Statement, tuple[str, tuple]]) -> None:
        with self._lock:
            before = self._blocks.get(key)
            steady = {s: sent for s, sent in ran.items() if before is not None and s in before[0]}
            self._blocks[key] = (frozenset(ran), steady)
            self._blocks.move_to_end(key)
            while len(self._blocks) > READ_AHEAD_KEYS:
                self._blocks.popitem(last=False)

    def forget(self, key) -> None:
        """Nothing sent ahead of the key's next two blocks (a key not known stays so)."""
        with self._lock:
            if key in self._blocks:
                self._blocks[key] = (frozenset(), {})

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()


ran_before = _RanBefore()
_reading: ContextVar[_Reading | None] = ContextVar("rawsql_reading", default=None)


@contextmanager
def read_ahead(key) -> Iterator[None]:
    """Read ahead in this block (see the module's docstring): the block's first
    statement (by `rows` or `ids`) is sent with the statements marked `ahead` that
    the last two blocks of `key` both ran after their first, and those are then
    answered from the rows read. For reads that repeat (a check of one customer's
    meter): `key` names what the block reads. A block that fails sends nothing
    ahead of the key's next two. Blocks do not nest."""
    if _reading.get() is not None:
        raise RuntimeError("read_ahead blocks do not nest")
    reading = _Reading(ran_before.steady(key))
    token = _reading.set(reading)
    try:
        yield
    except BaseException:
        ran_before.forget(key)
        raise
    finally:
        _reading.reset(token)
    ran_before.note(key, reading.ran)


# Rows a caller read for a group at once, by statement (`answered`).
_answers: ContextVar[dict[Statement, list[tuple]] | None] = ContextVar(
    "rawsql_answers", default=None
)


def statement_key(sql: str, params: list) -> Statement:
    """The statement `rows` or `ids` would run with these parameters, as
    `answered` knows it."""
    db = connections[DEFAULT_DB_ALIAS]
    return _statement(sql, [_param(db, p) for p in params])


@contextmanager
def answered(answers: dict[Statement, list[tuple]]) -> Iterator[None]:
    """Statements whose rows the caller has read already, for a group at once
    (say, one statement finding which of a group's subscriptions have a discount
    running, for the group's close): in this block, each of them (`rows` or `ids`
    with the same text and parameters, statement_key) takes its rows from
    `answers` the first time it runs, instead of a round trip; it reads as usual
    after that, and so do statements not among them. The caller answers only what
    its block cannot change before the statement runs."""
    token = _answers.set(dict(answers))
    try:
        yield
    finally:
        _answers.reset(token)


def having_rows(table: str, column: str, keys) -> set[int]:
    """Which of these keys (ids) have a row in `table` under `column`: one
    statement for all (what a group's `answered` reads first)."""
    keys = sorted(set(keys))
    if not keys:
        return set()
    marks = ", ".join(["%s"] * len(keys))
    return set(
        ids(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IN ({marks})", keys)  # noqa: S608 (names from the models)
    )


def answers_where_none(sql: str, table: str, column: str, asked: list[tuple[int, list]]) -> dict:
    """For statements `sql` asked with these (key, parameters), where a key with no
    row in `table` under `column` (having_rows) is known to find nothing: those
    keys' statements answered with no rows (`answered`), one statement for all."""
    having = having_rows(table, column, [key for key, _params in asked])
    return {statement_key(sql, params): [] for key, params in asked if key not in having}


def answers_alike(sql: str, params_each: list[list]) -> dict[Statement, list[tuple]]:
    """For statements the caller knows read the same rows whichever of
    `params_each` they run with: the first run once, its rows answering all
    (`answered`)."""
    if not params_each:
        return {}
    db = connections[DEFAULT_DB_ALIAS]
    first = [_param(db, p) for p in params_each[0]]
    found = _fetched(db, sql, first)
    return {statement_key(sql, params): found for params in params_each}


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
    on access, as with `.only()`); `fields` in the model's field order. Made by the
    model's `from_db`, as the ORM makes it, given every field's value or DEFERRED in
    its place (from_db would look each field up among the names: some 10 us a check)."""
    model, names, positions = _layout(fields)
    if positions is not None:
        values = [DEFERRED if p is None else values[p] for p in positions]
    return model.from_db(DEFAULT_DB_ALIAS, names, values)


@cache
def _layout(fields: tuple[Field, ...]) -> tuple[type[Model], tuple[str, ...], tuple | None]:
    """The fields' model, their attnames, and for each of the model's concrete fields
    the position of its value among the fields' (None: deferred); None when the
    fields are all of them, in order."""
    model = fields[0].model
    names = tuple(f.attname for f in fields)
    concrete = tuple(f.attname for f in model._meta.concrete_fields)
    if names == concrete:
        return model, names, None
    return model, names, tuple(names.index(n) if n in names else None for n in concrete)


def converters_cache_clear() -> None:
    _converters.cache_clear()
    _layout.cache_clear()


def _plain_placeholders(fields: tuple[Field, ...]) -> None:
    """Refuse fields whose values the ORM writes with their own SQL (binary,
    arrays, ranges): insert and update write every value as a plain %s."""
    special = [f.name for f in fields if hasattr(f, "get_placeholder")]
    if special:
        raise ValueError(f"fields with their own placeholders: {special}")


@cache
def _insert_sql(vendor: str, model: type[Model]) -> tuple[str, str, tuple[Field, ...]]:
    """INSERT INTO the model's table (its columns but the auto primary key), the
    placeholders of one row, and the fields in that order."""
    del vendor  # part of the cache key: quoting differs per backend
    meta = model._meta
    fields = tuple(
        f for f in meta.concrete_fields if not ((f.primary_key and f.db_returning) or f.generated)
    )
    _plain_placeholders(fields)
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "  # noqa: S608 (names from the model)
    )
    return head, f"({', '.join(['%s'] * len(fields))})", fields


def has_save_receivers(model: type[Model]) -> bool:
    """Whether a receiver listens to the model's saves (which `insert` would skip)."""
    return signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)


def insert(objs: list[Model]) -> None:
    """Insert these new instances of one model in one fixed statement, setting
    their primary keys, with their values prepared exactly as Model.save and
    bulk_create prepare them (Field.pre_save, then get_db_prep_save). It sends
    no signals: for models that no receiver (audit history) listens to, on the
    hot paths where compiling an INSERT costs more than the statement."""
    if not objs:
        return
    model = type(objs[0])
    if has_save_receivers(model):
        # A receiver (say an audit history added later) would silently miss these rows.
        raise ValueError(f"{model.__name__} has save receivers: save it through the ORM")
    db = connections[DEFAULT_DB_ALIAS]
    if not db.features.can_return_rows_from_bulk_insert:  # an SQLite before 3.35
        for obj in objs:
            obj.save(force_insert=True)
        return
    head, row, fields = _insert_sql(db.vendor, model)
    pk = model._meta.pk
    # Rows a statement, within the parameter limits of both databases.
    per_statement = max(1, 30_000 // len(fields))
    returned = []
    for first in range(0, len(objs), per_statement):
        chunk = objs[first : first + per_statement]
        params = [f.get_db_prep_save(f.pre_save(obj, True), db) for obj in chunk for f in fields]
        values = ", ".join([row] * len(chunk))
        with _prepared_cursor(db) as cursor:
            cursor.execute(f"{head}{values} RETURNING {db.ops.quote_name(pk.column)}", params)
            returned += cursor.fetchall()
    if len(returned) != len(objs):
        raise RuntimeError(f"{len(returned)} rows inserted for {len(objs)}")
    # RETURNING gives rows in the order of VALUES on PostgreSQL and SQLite alike
    # (as Django's own bulk_create relies on).
    for obj, (value,) in zip(objs, returned, strict=True):
        for converter in pk.get_db_converters(db):
            value = converter(value, pk, db)
        setattr(obj, pk.attname, value)
        obj._state.adding = False
        obj._state.db = DEFAULT_DB_ALIAS


@cache
def _update_sql(vendor: str, model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple]:
    """UPDATE of these fields (by name) of one row of the model, and the fields."""
    del vendor  # part of the cache key: quoting differs per backend
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    _plain_placeholders(fields)
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608 (names from the model)
    return sql, fields


def update(obj: Model, update_fields: tuple[str, ...]) -> None:
    """obj.save(update_fields=update_fields) in fixed SQL, for a saved instance of
    a model without parents: the same pre_save and post_save signals (the audit
    history listens to them), the values prepared as Model.save prepares them
    (Field.pre_save, then get_db_prep_save), and the same refusal when no row
    was updated. Saves compiling the UPDATE on the hot paths."""
    db = connections[DEFAULT_DB_ALIAS]
    model = type(obj)
    names = frozenset(update_fields)
    signals.pre_save.send(
        sender=model, instance=obj, raw=False, using=DEFAULT_DB_ALIAS, update_fields=names
    )
    sql, fields = _update_sql(db.vendor, model, tuple(update_fields))
    params = [f.get_db_prep_save(f.pre_save(obj, False), db) for f in fields]
    with _prepared_cursor(db) as cursor:
        cursor.execute(sql, [*params, obj.pk])
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
    obj._state.db = DEFAULT_DB_ALIAS
    obj._state.adding = False
    signals.post_save.send(
        sender=model,
        instance=obj,
        created=False,
        update_fields=names,
        raw=False,
        using=DEFAULT_DB_ALIAS,
    )

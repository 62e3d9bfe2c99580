"""config.postgresql: the health check before a request's first query sends
nothing yet still finds a connection the server closed, and the written-out
reads of the hot paths (common.rawsql) become prepared statements while
the ORM's queries never do."""

import time

import pytest
from django.db import close_old_connections, connection, connections

from common import rawsql
from plans.models import Meter

pytestmark = pytest.mark.postgres


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_closed_is_replaced_before_the_next_request():
    # given: a connection in use, then ended by the server (as a restart ends it)
    pid = backend_pid()
    assert connection.is_usable()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    # when: the server's goodbye has arrived (it is sent, not answered)
    for _ in range(200):
        if not connection.is_usable():
            break
        time.sleep(0.05)

    # then: the check finds it unusable, and the next request's first query runs on a
    # new connection instead of failing
    assert not connection.is_usable()
    close_old_connections()  # what Django does at every request's start
    assert backend_pid() != pid


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


@pytest.mark.django_db
def test_written_out_reads_are_prepared_and_the_orms_queries_are_not():
    sql = "SELECT COUNT(*), MAX(id) FROM plans_meter WHERE code <> %s"
    fields = (Meter._meta.get_field("id"), Meter._meta.get_field("id"))

    for _ in range(6):
        assert rawsql.rows(sql, ["none"], fields) == [(0, None)]
        assert not Meter.objects.exclude(code="none").exists()

    statements = prepared_statements()
    assert any("FROM plans_meter WHERE code <> $1" in s for s in statements), statements
    assert not any('"plans_meter"' in s for s in statements), statements


def read_ahead_block() -> list:
    """A read_ahead block (common.rawsql): its first statement, then one that,
    from the third block on, travels with the first."""
    with rawsql.read_ahead("backend test"):
        first = rawsql.rows("SELECT pg_backend_pid()", [], (None,))
        return first + rawsql.rows(
            "SELECT COUNT(*) FROM plans_meter WHERE code <> %s", ["x"], (None,), ahead=True
        )


@pytest.mark.django_db(transaction=True)
def test_a_read_ahead_that_loses_its_connection_is_a_database_error_and_the_next_one_reconnects():
    from django.db import OperationalError

    # given: blocks whose second statement is sent ahead, prepared as the others
    for _ in range(7):
        pid, (count,) = read_ahead_block()
    assert count == 0 and rawsql.ran_before.ahead("backend test") != ()
    assert any("code <> $1" in s for s in prepared_statements())

    # when: the server ends the connection before the next block
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid[0]])
    finally:
        other.close()
    time.sleep(0.2)

    # then: the round trip fails as Django's OperationalError (an API request answers
    # 503: common.outage), and nothing is sent ahead of the next block, which runs on
    # a new connection
    with pytest.raises(OperationalError):
        read_ahead_block()
    assert rawsql.ran_before.ahead("backend test") == ()
    close_old_connections()
    new_pid, (count,) = read_ahead_block()
    assert new_pid != pid and count == 0


@pytest.mark.django_db(transaction=True)
def test_a_read_ahead_that_fails_leaves_no_statement_psycopg_thinks_prepared():
    """A statement error in the round trip aborts the statements after it. One of
    them may be in its run that psycopg prepares (the 5th on the connection), and
    psycopg would then count it prepared though the server never made it: every
    later run of it on that connection would fail. The connection is replaced."""
    from django.db import DatabaseError

    plus_one, slow = "SELECT %s::int + 1", "SELECT 1 FROM pg_sleep(%s)"

    def block():
        with rawsql.read_ahead("failing"):
            rawsql.rows("SELECT 0", [], (None,))
            rawsql.rows(slow, [0.05], (None,), ahead=True)
            return rawsql.rows(plus_one, [1], (None,), ahead=True)

    # given: `plus_one` run 4 times in blocks and once more alone, so that its next
    # run, in the next block's round trip behind `slow`, is the one that prepares it
    for _ in range(4):
        assert block() == [(2,)]
    rawsql.rows(plus_one, [1], (None,))
    assert rawsql.ran_before.ahead("failing") != ()

    # when: `slow` fails in that round trip (a statement timeout)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '20ms'")
    with pytest.raises(DatabaseError):
        block()
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")

    # then: every later run of `plus_one` answers, in blocks and alone
    for _ in range(3):
        assert block() == [(2,)]
        assert rawsql.rows(plus_one, [1], (None,)) == [(2,)]

"""config.postgresql: the health check before a request's first query sends
nothing yet still finds a connection the server closed, and the written-out
reads of the hot paths (billing.core.rawsql) become prepared statements while
the ORM's queries never do."""

import time

import pytest
from django.db import close_old_connections, connection, connections

from billing.core import rawsql
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

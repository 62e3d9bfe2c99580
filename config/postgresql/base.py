"""Django's PostgreSQL backend with two savings on every request:

- The health check sends nothing. With CONN_HEALTH_CHECKS, Django checks a reused
  connection before a request's first query by sending `SELECT 1`: a round trip
  on every request, about as long as the check endpoint's own queries. Here the
  check looks at the connection instead. Between requests an idle connection
  receives nothing unasked, so a socket with something to read means the server
  spoke first: the termination message a restart or an administrator's kill
  sends before closing, or the close itself. Such a connection, or one the
  driver already knows is broken, is unusable, and Django opens a new one, as
  after a failed `SELECT 1`. A connection that vanished without a word (a cable
  pulled, a host gone) `SELECT 1` would not have caught in time either: it waits
  for the network's timeout. The statement then fails, the request is answered
  503 (common.outage), and the connection is replaced before the next request.

- `prepared_cursor`, for the written-out SQL of the hot paths and the period
  close (common.rawsql): it binds parameters on the server, so psycopg prepares
  a statement once it has run prepare_threshold times (5) on the connection and
  PostgreSQL stops planning it on every run; planning the check's four-table
  join costs several times its execution. The ORM keeps Django's client-side
  binding, which never prepares but takes any SQL the ORM writes.
"""

import select

from django.db.backends.postgresql import base
from django.utils.asyncio import async_unsafe
from psycopg import pq


def _has_unread_input(fileno: int) -> bool:
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status == pq.TransactionStatus.UNKNOWN:
            return False
        try:
            return not _has_unread_input(connection.fileno())
        except (OSError, ValueError):
            return False

    @async_unsafe
    def prepared_cursor(self):
        """A cursor as `cursor()` gives (Django's wrapper: query logging, execute
        wrappers, error translation), binding its parameters on the server."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = base.ServerBindingCursor(self.connection)
            # As create_cursor does: the connection's time zone unless it has one.
            loader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, pq.Format.TEXT)
            if self.timezone != loader.timezone:
                base.register_tzloader(self.timezone, cursor)
        return self._prepare_cursor(cursor)

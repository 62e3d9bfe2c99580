"""kombu's Redis transport, with a channel whose connection is gone failing as a lost
connection (which kombu and Celery handle) rather than with an AttributeError (which
ends the worker). config/celery.py makes it the transport of redis:// and rediss://
URLs (register); docs/running.md, "Broker restarts".

Why (kombu 5.7.0, the latest release): when Redis goes away under a worker, Celery
`collect()`s the lost connection, which closes its channel and detaches the
transport (its `client` set to None); a channel whose pending BRPOP reply could not
be read stays half open. Celery then closes the connection again, the channel again,
and its QoS restores the unacknowledged messages (the task in hand) through a new
pool, whose parameters read `transport.client.hostname`: AttributeError, outside the
errors Celery ignores there, and the worker exits ("Unrecoverable error"). Only a
worker holding a message at that moment, so an idle one survives. The same read
fails an acknowledgement sent on such a channel.

A lost connection instead: the restore is skipped as it is when Redis cannot be
reached, the worker reconnects, and the messages stay in Redis's unacked hash,
which a worker's restore_visible queues again once the visibility timeout passes
(kombu's default, an hour); every task is safe to run twice.
"""

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    # kombu's defaults are None: no bound on a connect or a read. In the compose
    # drill (scripts/compose_check.sh) one worker, holding a message when Redis's
    # container stopped, logged "Restoring 2 unacknowledged message(s)" and then
    # nothing, missing heartbeats, while the others reconnected: an unbounded socket
    # call is the one wait that can last that long. Bounded, such a wait ends as a
    # lost connection, which the worker handles by reconnecting. The BRPOP reads
    # poll every second (kombu), far inside the read bound. Transport options
    # override these.
    socket_connect_timeout = 5
    socket_timeout = 30
    socket_keepalive = True

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the channel's connection to the broker is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


def register() -> None:
    """Make this the transport of redis:// and rediss:// URLs in this process, in
    kombu's table of URL schemes: the broker's, and any other a connection is given
    (kombu still reads TLS from the scheme's name). Not Celery's broker_transport,
    which would apply to a filesystem:// URL too."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"

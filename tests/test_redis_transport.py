"""config/redis_transport.py: a channel holding an unacknowledged message, whose
transport Connection.collect() detached (as Celery leaves it when Redis goes away),
is closed as one whose connection is lost, not with the AttributeError that ended the
worker; the message stays in Redis's unacked hash for the visibility timeout to
queue again. The broker drill (tests/test_broker_drill.py) shows it on real workers."""

import pytest
import redis
from kombu import Connection

from config.celery import app
from tests.workers import redis_broker

QUEUE = "test_redis_transport"


@pytest.fixture
def broker():
    url = redis_broker()
    client = redis.Redis.from_url(url)
    yield url, client
    client.delete(QUEUE, "unacked", "unacked_index")
    client.close()


def held_message(connection: Connection):
    """The default channel with one message taken and not acknowledged (in its QoS,
    and in Redis's unacked hash, as a worker holds its task)."""
    channel = connection.default_channel
    channel.queue_declare(QUEUE)
    channel.basic_publish(channel.prepare_message("hello"), exchange="", routing_key=QUEUE)
    message = channel.basic_get(QUEUE, no_ack=False)
    assert message is not None
    return channel, message.delivery_tag


def test_a_detached_channel_with_a_held_message_closes_as_a_lost_connection(broker):
    url, client = broker
    connection = Connection(url, transport="config.redis_transport:Transport")
    channel, tag = held_message(connection)
    # given: what collect() leaves when Redis went away under a BRPOP: the channel still
    # open (its close failed reading the reply) and the transport detached
    connection.transport.client = None

    # when: Celery closes the connection again, ignoring the connection's errors
    connection.close()

    # then: no AttributeError; the message is still held in Redis for the restore
    assert channel.closed
    assert client.hexists("unacked", tag)
    assert client.llen(QUEUE) == 0


def test_kombus_own_transport_ended_the_worker_there(broker):
    """What config/redis_transport.py is for: kombu 5.7.0's transport raises there
    (when a kombu release no longer does, the project can drop its transport)."""
    url, _ = broker
    connection = Connection(url, transport="kombu.transport.redis:Transport")
    held_message(connection)
    connection.transport.client = None

    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'hostname'"):
        connection.close()


def test_an_acknowledgement_on_a_detached_channel_is_a_lost_connection(broker):
    """A task that finishes after its connection was lost: Celery logs the failed
    acknowledgement (a connection error), and the worker goes on."""
    url, client = broker
    connection = Connection(url, transport="config.redis_transport:Transport")
    channel, tag = held_message(connection)
    channel._disconnect_pools()
    connection.transport.client = None

    with pytest.raises(connection.connection_errors):
        channel.basic_ack(tag)
    assert client.hexists("unacked", tag)
    connection.close()


def test_a_redis_broker_uses_it_and_a_filesystem_one_does_not(tmp_path):
    from config.redis_transport import Transport

    url = redis_broker()
    with app.connection_for_read(url) as connection:
        assert isinstance(connection.transport, Transport)
        assert connection.as_uri().startswith("redis://")
    with Connection("filesystem://", transport_options={"data_folder_in": str(tmp_path)}) as fs:
        assert not isinstance(fs.transport, Transport)


def test_the_channels_connections_bound_their_connects_and_reads(broker):
    # given: a channel of the project's transport, no transport options
    url, _ = broker
    connection = Connection(url, transport="config.redis_transport:Transport")
    try:
        # when: the parameters its connections are made with are read
        params = connection.default_channel._connparams()

        # then: a connect and a read each end within a bound (kombu leaves both
        # unbounded), and dead peers are found by keepalive
        assert params["socket_connect_timeout"] == 5
        assert params["socket_timeout"] == 30
        assert params["socket_keepalive"] is True
    finally:
        connection.release()

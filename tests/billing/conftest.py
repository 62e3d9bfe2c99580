import pytest

from customers.services import customer_create


@pytest.fixture
def acme(db):
    return customer_create(external_id="acme", name="Acme Inc", currency="USD")


@pytest.fixture
def beta(db):
    return customer_create(external_id="beta", name="Beta LLC", currency="USD")


@pytest.fixture
def webhook_receiver():
    """A real HTTP receiver on 127.0.0.1 that verifies signatures (set its `secret`
    and `now`) and records what it received."""
    from tests.billing.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def endpoint(db, webhook_receiver):
    """An enabled webhook endpoint for every event type, pointing at the receiver."""
    from billing.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.create(url=webhook_receiver.url, description="tests")
    webhook_receiver.secret = endpoint.secret
    return endpoint

import pytest

from customers.services import customer_create


@pytest.fixture
def acme(db):
    return customer_create(external_id="acme", name="Acme Inc", currency="USD")


@pytest.fixture
def beta(db):
    return customer_create(external_id="beta", name="Beta LLC", currency="USD")


@pytest.fixture
def webhook_receiver(settings):
    """A real HTTP receiver on 127.0.0.1 that verifies signatures (set its `secret`
    and `now`) and records what it received. Webhooks may go to 127.0.0.1 while it
    runs, as BILLING_WEBHOOK_ALLOWED_HOSTS allows in development."""
    from tests.billing.webhook_receiver import WebhookReceiver

    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def endpoint(db, webhook_receiver):
    """An enabled webhook endpoint for every event type, pointing at the receiver."""
    from billing.models import WebhookEndpoint

    endpoint = WebhookEndpoint(url=webhook_receiver.url, description="tests")
    endpoint.full_clean()
    endpoint.save()
    webhook_receiver.secret = endpoint.secret
    return endpoint

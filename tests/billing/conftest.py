import pytest

from tests.factories import CustomerFactory


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme")


@pytest.fixture
def beta(db):
    return CustomerFactory(external_id="beta", name="Beta LLC")


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

import pytest

from customers.services import customer_create


@pytest.fixture
def acme(db):
    return customer_create(external_id="acme", name="Acme Inc", currency="USD")


@pytest.fixture
def beta(db):
    return customer_create(external_id="beta", name="Beta LLC", currency="USD")

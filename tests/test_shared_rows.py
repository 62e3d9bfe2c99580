"""Rows made once for a module (tests/shared_rows.py): every test of the module finds
them as they were made, whatever the tests before it wrote or changed in memory."""

import pytest

from customers.models import Customer
from customers.services import customer_create

pytestmark = pytest.mark.django_db


def made_customer() -> Customer:
    return customer_create(external_id="shared", name="Shared", currency="USD")


@pytest.fixture(scope="module")
def _shared_once(module_transaction):
    return module_transaction.once(made_customer, "shared")


@pytest.fixture
def shared(_shared_once, db) -> Customer:
    return _shared_once.for_test()


@pytest.mark.parametrize("turn", [1, 2])
def test_what_a_test_writes_is_gone_for_the_next(shared, turn):
    assert Customer.objects.get().name == shared.name == "Shared"
    assert shared.pk == Customer.objects.get().pk
    shared.name = f"changed in turn {turn}"
    shared.save()
    customer_create(external_id=f"added-{turn}", name="Added", currency="USD")
    assert Customer.objects.count() == 2


def test_the_rows_are_made_once_for_the_module(shared, _shared_once):
    assert _shared_once.shared

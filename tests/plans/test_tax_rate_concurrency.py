"""A tax rate archived while a customer is given it, for real, on PostgreSQL: the
archive holds the rate's row and the customer's update waits for it, so a
customer never ends up holding an archived rate (it would silently be taxed at
the default rates). Each round releases both at the same moment."""

from decimal import Decimal as D

import pytest

from billing.core.errors import BillingError
from customers.models import Customer
from customers.services import customer_update
from plans.models import TaxRate
from plans.services import tax_rate_create, tax_rate_update
from tests.factories import CustomerFactory
from tests.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 6


@pytest.mark.parametrize("replaced_by", ["de_vat_2027", None], ids=["replaced", "refused"])
def test_a_customer_given_a_rate_while_it_is_archived_never_holds_it_archived(
    transactional_db, replaced_by
):
    tax_rate_create(code="de_vat_2027", name="MwSt.", percentage=D("20"), country="DE")
    outcomes = set()
    for round_ in range(ROUNDS):
        # given: a rate of 19 % and a customer without rates of its own
        rate = tax_rate_create(
            code=f"de_vat_{round_}", name="MwSt.", percentage=D("19"), country="DE"
        )
        customer = CustomerFactory(external_id=f"berlin_{round_}", currency="EUR")

        def work(index: int, rate=rate, customer=customer) -> str:
            try:
                if index == 0:
                    tax_rate_update(rate=rate, active=False, replaced_by=replaced_by)
                else:
                    customer_update(customer=customer, tax_rates=[rate.code])
            except BillingError as error:
                return f"{'archive' if index == 0 else 'update'} {error.status_code}"
            return "archived" if index == 0 else "given"

        # when: the rate is archived and given to the customer at the same moment
        archive, update = run_at_once(work, clients=2)
        outcomes.add((archive, update))

        # then: whichever came first, the customer holds no archived rate
        held = list(Customer.objects.get(pk=customer.pk).tax_rates.values_list("code", "active"))
        archived = not TaxRate.objects.get(pk=rate.pk).active
        if replaced_by:
            assert (archive, archived) == ("archived", True)
            # given first, then moved; or refused as archived
            expected = {"given": [("de_vat_2027", True)], "update 400": []}
            assert held == expected[update], (archive, update)
        else:
            # the archive refused (the customer holds it), or the update refused
            assert (archive, update) in {("archive 409", "given"), ("archived", "update 400")}
            assert held == ([(rate.code, True)] if update == "given" else [])
            assert archived == (archive == "archived")
    print(f"outcomes over {ROUNDS} rounds: {sorted(outcomes)}")

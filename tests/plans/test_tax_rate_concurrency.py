"""A tax rate archived while a customer is given it, for real, on PostgreSQL: the
archive holds the rate's row and the customer's update waits for it, so a
customer never ends up holding an archived rate (it would silently be taxed at
the default rates). Each round releases both at the same moment."""

from decimal import Decimal as D

import pytest

from common.errors import BillingError
from customers.models import Customer
from customers.services import customer_update
from plans.models import TaxRate
from plans.services import tax_rate_create, tax_rate_update
from tests.factories import CustomerFactory
from tests.threads import beside_a_close, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 6


@pytest.mark.parametrize("replaced_by", ["de_vat_2027", None], ids=["replaced", "plain"])
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
            # given first, then let go by the archive; or refused as archived
            assert (archive, archived) == ("archived", True)
            assert update in {"given", "update 400"}
            assert held == []
    print(f"outcomes over {ROUNDS} rounds: {sorted(outcomes)}")


def test_a_rate_is_archived_while_a_close_writes_its_holders_invoices(settings):
    """The archive locks the rate's holders (no key update: plans.tax_rates) while a
    close commits their invoices, each taking a key share of its customer's row:
    with FOR UPDATE, the archive held acme and waited for globex's share, while the
    close waited to write acme's invoice, and one of them was aborted."""
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    # given: acme and globex (in id order) hold a rate of their own, tax-exempt (their
    # invoices name no rate)
    old = tax_rate_create(code="old", name="Old", percentage=D("10"))
    tax_rate_create(code="new", name="New", percentage=D("12"))
    acme, globex = (
        CustomerFactory(external_id=name, currency="USD") for name in ("acme", "globex")
    )
    for customer in (acme, globex):
        customer_update(customer=customer, tax_rates=["old"], tax_exempt=Customer.TAX_EXEMPT)
        customer.refresh_from_db()  # the close's drafts read it exempt

    # when: the rate is archived, replaced by another, while a close writes globex's
    # invoice, then acme's
    failed = beside_a_close(
        lambda: tax_rate_update(rate=old, active=False, replaced_by="new"),
        first=globex,
        then=acme,
    )

    # then: neither aborted; both hold the new rate
    assert failed == []
    for customer in (acme, globex):
        assert list(customer.tax_rates.values_list("code", flat=True)) == ["new"]

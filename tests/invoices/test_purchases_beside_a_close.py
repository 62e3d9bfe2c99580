"""Purchases beside a close's finalization, for real on PostgreSQL: the one lock
order (billing.locks). A sale locks its wallet, never its customer, then takes
an invoice number; the close's finalization locks the customers with a credit
balance, then its drafts, then the number, and takes a key share of every
customer it invoiced as it commits. When a sale's wallet lock also locked the
customer's row (FOR UPDATE, through the lock's join), the sale waited for the
number the close held while the close's commit waited for that customer: a
deadlock within the first rounds, and 70 in 200 rounds where both sides try an
aborted transaction again (PostgreSQL counts those the retries hide)."""

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import OperationalError, connection

from billing.invoicing.close import drafts_finalize
from common.periods import month_start
from invoices.credit_balance import credit_balance
from invoices.models import Invoice
from tests.factories import CustomerFactory, period_draft
from tests.invoices.conftest import base_fee_lines, finalized_invoice
from tests.threads import first_then_second, run_at_once
from tests.wallets.support import wallet_of
from wallets.ledger import wallet_get_or_create
from wallets.locks import wallet_lock
from wallets.models import Wallet
from wallets.purchases import money_top_up

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("wallets_stay_consistent"),
]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
ROUNDS = 200
# The customers the buyers top up, one each a round.
BUYERS = (0, 1)


def deadlocks() -> int:
    """The deadlocks PostgreSQL has detected in this database (its statistics)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_purchases_beside_a_close_never_deadlock(settings):
    # given: three customers, the first with 2,500.00 of credit balance, which
    # its invoices draw on (so that the close's finalization locks it first)
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0
    customers = [CustomerFactory(external_id=f"c{n}", name=f"C{n}") for n in range(3)]
    finalized_invoice(customers[0], base_fee_lines("-2500.00"), start=NOV_1, end=NOV_1)
    before = deadlocks()

    # when: 200 months, each closing with a draft of 10.00 for every customer,
    # finalized by the close's finalization while buyers top up their wallets
    for month in range(1, ROUNDS + 1):
        start, as_of = month_start(NOV_1, months=month - 1), month_start(NOV_1, months=month)
        for customer in customers:
            period_draft(customer, base_fee_lines("10.00"), start=start, end=as_of)

        def close_or_buy(index: int, as_of=as_of) -> None:
            if index == 0:
                drafts_finalize(as_of=as_of)
                return
            buyer = customers[BUYERS[index - 1]]
            money_top_up(customer=buyer, amount=D("5.00"), currency="USD", now=as_of)

        run_at_once(close_or_buy, clients=1 + len(BUYERS))

    # then: no deadlock (none a retry could have hidden either); every invoice
    # finalized, numbered once and gap-free each year; every top-up granted
    assert deadlocks() - before == 0
    assert Invoice.objects.filter(reason=Invoice.PERIOD).count() == 1 + 3 * ROUNDS
    assert not Invoice.objects.filter(status=Invoice.DRAFT).exists()
    assert Invoice.objects.filter(reason=Invoice.PURCHASE).count() == 2 * ROUNDS
    taken: Counter = Counter()
    for number in Invoice.objects.order_by("number").values_list("number", flat=True):
        _prefix, year, serial = number.rsplit("-", 2)
        taken[year] += 1
        assert int(serial) == taken[year], number
    balances = [wallet_of(customers[n], Wallet.MONEY, "USD").balance for n in BUYERS]
    assert balances == [D("1000.00"), D("1000.00")]
    # 2,500.00 less the 200 invoices of 10.00 it paid
    assert credit_balance(customers[0]) == D("500.00")


def test_a_wallet_lock_leaves_its_customer_to_a_key_share():
    # given: a customer's money wallet, locked by a sale's transaction
    acme = CustomerFactory(external_id="acme")
    wallet = wallet_get_or_create(customer=acme, kind=Wallet.MONEY, currency="USD")

    def key_share() -> str:
        # What a commit's foreign key check takes of the customer an invoice names.
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM customers_customer WHERE id = %s FOR KEY SHARE NOWAIT",
                    [acme.pk],
                )
            return "taken"
        except OperationalError as refused:
            return str(refused).splitlines()[0]

    # when: a key share of the customer is asked for meanwhile
    _, shared = first_then_second(lambda: wallet_lock(wallet), key_share)

    # then: it is taken at once (the wallet's lock holds the wallet's row only)
    assert shared == "taken"

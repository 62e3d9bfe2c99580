"""Issue 52, on PostgreSQL: the expiry run several times at once (beat ticks
overlapping, two workers) rolls a period's unused plan credits over exactly
once: one rollover block, one expiry, the wallet exact."""

from datetime import timedelta
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from tests.factories import CustomerFactory, MeterFactory, credits, published_version, subscribe
from tests.threads import run_at_once
from tests.wallets.support import assert_wallet_consistent, ingest, repeat, wallet_of
from tests.wallets.test_credits_rollover import END_1, END_3, START
from wallets.ledger import credits_expire
from wallets.models import CreditBlock, LedgerEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_expiry_run_at_once_rolls_over_once():
    MeterFactory(code="agent_runs", event_name="agent.run")
    paris = CustomerFactory(external_id="paris", timezone_name="Europe/Paris")
    published_version(
        "credits_plan",
        credits_per_period=D(1000),
        credits_rollover_percent=D(50),
        credits_rollover_periods=2,
        charges=(credits("agent_runs", 1),),
    )
    subscribe(paris, "credits_plan", START)
    at = START + timedelta(days=1)
    ingest(repeat(400, "agent.run", at, prefix="p1", customer="paris"), now=at)
    periods_close(as_of=END_1)

    expired = run_at_once(lambda _index: credits_expire(now=END_1), clients=4)

    assert sum(expired) == 1
    (rolled,) = CreditBlock.objects.filter(source=CreditBlock.ROLLOVER)
    assert (rolled.amount, rolled.remaining, rolled.expires_at) == (D(300), D(300), END_3)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.EXPIRY).get().amount == D(-300)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.ROLLOVER).count() == 2
    assert wallet_of(paris).balance == D(1300)
    assert_wallet_consistent(wallet_of(paris))

"""Tiered money draw-down under concurrent batches, for real, on PostgreSQL: each
event costs what it adds to the period's price, which depends on the usage before
it; batches append to the rollup tail without waiting on each other
(billing.usage.folding), so the draw takes a per-customer lock before it reads
the usage so far. Whatever order the batches commit in, the wallet is drawn
exactly the period's whole price."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.usage.ingestion import events_ingest
from tests.factories import subscribe
from tests.threads import run_at_once
from tests.wallets.support import assert_wallet_consistent, event, wallet_of
from wallets.purchases import money_top_up

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
CLIENTS = 6


def test_concurrent_batches_on_graduated_tiers_draw_the_whole_price(catalog, acme, settings):
    """Six batches of 300 units at once cross both tier bounds (1,000 and 2,000):
    1,800 units cost 1,000 x 0.01 + 800 x 0.005 + the second tier's flat 1.00 =
    15.00, whoever commits first."""
    settings.BILLING_FOLD_MS = 10**9  # the batches stay in the tail
    subscribe(acme, "graduated", NOV_1)
    money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_1)

    def post(i: int) -> None:
        batch = [event(f"b{i}", "tokens", NOW + timedelta(seconds=i), n=300)]
        assert events_ingest(events=batch, now=NOW + timedelta(minutes=1)).accepted == 1

    run_at_once(post, CLIENTS)
    wallet = assert_wallet_consistent(wallet_of(acme, "money", "USD"))
    assert wallet.balance == D("85.00")

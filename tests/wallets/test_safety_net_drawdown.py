"""Safety net for the draw-down rules that the worked scenarios cannot tell apart
(S15's blocks expire in the order of their priority):

- blocks are drawn by priority first, soonest expiry only within a priority
  (wallets.ledger._block_order for the draw-down, wallets.selectors.blocks_usable
  for the order the wallet endpoint shows);
- a block is not usable at its exact expiry instant (`expires_at <= now` is
  expired), for the draw-down, the check and the wallet endpoint, and the expiry
  task takes it at that very instant.

Time is set explicitly: `now` for the services, time_machine for the API."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from tests.factories import check_v1, subscribe
from tests.wallets.support import (
    assert_wallet_consistent,
    ingest,
    repeat,
    state,
    wallet_of,
)
from wallets.ledger import credits_expire, credits_grant
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
NOV_30 = datetime(2026, 11, 30, tzinfo=UTC)
DEC_31 = datetime(2026, 12, 31, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)


def runs(count: int, *, prefix: str, at: datetime = NOW) -> None:
    """`count` agent runs at `at` (2 credits each on the runner plan)."""
    ingest(repeat(count, "agent.run", at, prefix=prefix), now=at)


def remaining(*blocks: CreditBlock) -> list[D]:
    return [CreditBlock.objects.get(pk=b.pk).remaining for b in blocks]


def usage_entries(customer) -> list[tuple]:
    return [
        (e.block_id, e.amount, e.balance_after)
        for e in wallet_of(customer).ledger.filter(kind=LedgerEntry.USAGE).order_by("id")
    ]


@pytest.fixture
def priority_against_expiry(catalog, acme):
    """Three blocks whose order by priority is the reverse of their order by expiry:
    `first` (priority 10, expiring Dec 31), `undated` (priority 10, no expiry) and
    `urgent` (priority 50, expiring soonest, Nov 30); 100 credits each."""
    subscribe(acme, "runner", NOV_1)
    # Granted in an order unlike either ordering, so that age decides nothing.
    urgent, _ = credits_grant(
        customer=acme, credits=D(100), priority=50, expires_at=NOV_30, now=NOV_1
    )
    undated, _ = credits_grant(customer=acme, credits=D(100), priority=10, now=NOV_1)
    first, _ = credits_grant(
        customer=acme, credits=D(100), priority=10, expires_at=DEC_31, now=NOV_1
    )
    return first, undated, urgent


# Draw order: priority before soonest expiry


def test_priority_is_drawn_before_a_sooner_expiry(acme, priority_against_expiry):
    """Rule: priority first; soonest expiry (none last) only between blocks of one
    priority. Expiry first would have drawn `urgent` whole and left `undated`."""
    first, undated, urgent = priority_against_expiry

    # when: 75 runs, 150 credits
    runs(75, prefix="r")

    # then: all of `first`, half of `undated`; `urgent` untouched despite expiring first
    assert remaining(first, undated, urgent) == [D(0), D(50), D(100)]
    assert usage_entries(acme) == [
        (first.pk, D(-100), D(200)),
        (undated.pk, D(-50), D(150)),
    ]
    assert_wallet_consistent(wallet_of(acme))


def test_the_wallet_endpoint_lists_blocks_in_draw_order(api, acme, priority_against_expiry):
    """Rule: the blocks the wallet endpoint shows are in the order usage draws them
    (wallets.selectors.blocks_usable), priority before expiry."""
    first, undated, urgent = priority_against_expiry

    with time_machine.travel(NOW, tick=False):
        body = api.get("/api/v1/customers/acme/wallets").json()

    credits = body["results"][0]
    assert [b["id"] for b in credits["blocks"]] == [first.pk, undated.pk, urgent.pk]
    assert [b["priority"] for b in credits["blocks"]] == [10, 10, 50]


# Not drawable at the exact expiry instant


@pytest.fixture
def expiring_at_now(catalog, acme):
    """A block of 100 credits at priority 10 expiring exactly at NOW (it would be
    drawn first while usable), and a fallback block of 100 without expiry."""
    subscribe(acme, "runner", NOV_1)
    expiring, _ = credits_grant(
        customer=acme, credits=D(100), priority=10, expires_at=NOW, now=NOV_1
    )
    fallback, _ = credits_grant(customer=acme, credits=D(100), now=NOV_1)
    return expiring, fallback


def test_a_block_pays_until_a_second_before_its_expiry(acme, expiring_at_now):
    expiring, fallback = expiring_at_now

    runs(5, prefix="r", at=NOW - ONE_SECOND)

    assert remaining(expiring, fallback) == [D(90), D(100)]


def test_a_block_is_not_drawn_at_its_exact_expiry_instant(acme, expiring_at_now):
    """Rule: `expires_at <= now` is expired; at the very instant the block is gone
    for the draw-down, although the expiry task has not run yet."""
    expiring, fallback = expiring_at_now

    # when: 5 runs (10 credits) stamped and ingested at the expiry instant
    runs(5, prefix="r", at=NOW)

    # then: the fallback pays; the expiring block keeps its 100 for the expiry task
    assert remaining(expiring, fallback) == [D(100), D(90)]
    assert usage_entries(acme) == [(fallback.pk, D(-10), D(190))]
    assert not UncoveredUsage.objects.exists()
    assert_wallet_consistent(wallet_of(acme))


def test_a_block_alone_at_its_expiry_instant_leaves_the_usage_uncovered(catalog, acme):
    subscribe(acme, "runner", NOV_1)
    expiring, _ = credits_grant(customer=acme, credits=D(100), expires_at=NOW, now=NOV_1)

    runs(5, prefix="r", at=NOW)

    assert remaining(expiring) == [D(100)]
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.meter, uncovered.quantity, uncovered.shortfall) == (
        "agent_runs",
        D(5),
        D(10),
    )
    assert_wallet_consistent(wallet_of(acme))


def test_the_check_does_not_count_a_block_at_its_expiry_instant(api, catalog, acme):
    """Rule: the check answers as the draw-down would draw (usable balance:
    `expires_at > now`), so at the expiry instant the credits are insufficient."""
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(100), expires_at=NOW, now=NOV_1)

    def check(at: datetime) -> dict:
        before = state()
        with time_machine.travel(at, tick=False):
            response = api.post(
                "/api/v1/customers/acme/check",
                {"meter": "agent_runs", "quantity": 1},
                format="json",
            )
        assert response.status_code == 200, response.content
        assert state() == before
        return check_v1(response.json())

    assert check(NOW - ONE_SECOND) == {
        "allowed": True,
        "model": "credits",
        "reason": "ok",
        "used": "0",
        "included": None,
        "remaining": "50",
        "balance": "100",
    }
    assert check(NOW) == {
        "allowed": False,
        "model": "credits",
        "reason": "insufficient_credits",
        "used": "0",
        "included": None,
        "remaining": "0",
        "balance": "0",
    }


def test_the_wallet_endpoint_does_not_list_a_block_at_its_expiry_instant(
    api, acme, expiring_at_now
):
    expiring, fallback = expiring_at_now

    def listed(at: datetime) -> list[int]:
        with time_machine.travel(at, tick=False):
            body = api.get("/api/v1/customers/acme/wallets").json()
        return [b["id"] for b in body["results"][0]["blocks"]]

    assert listed(NOW - ONE_SECOND) == [expiring.pk, fallback.pk]
    assert listed(NOW) == [fallback.pk]


def test_the_expiry_task_takes_a_block_at_its_exact_expiry_instant(acme, expiring_at_now):
    """Rule: the expiry task and the draw-down agree on the instant: what the
    draw-down no longer takes at `expires_at` is expired by a run at `expires_at`."""
    expiring, _ = expiring_at_now

    assert credits_expire(now=NOW - ONE_SECOND) == 0
    assert credits_expire(now=NOW) == 1

    expiring.refresh_from_db()
    assert (expiring.remaining, expiring.expired_at) == (D(0), NOW)
    entry = LedgerEntry.objects.get(kind=LedgerEntry.EXPIRY)
    assert (entry.block_id, entry.amount, entry.balance_after, entry.occurred_at) == (
        expiring.pk,
        D(-100),
        D(100),
        NOW,
    )
    assert_wallet_consistent(wallet_of(acme))

"""Purchases credited or voided while usage draws from what they sold, for real on
PostgreSQL (tests/invoices/test_purchase_credit_notes.py, test_purchase_void.py):
whichever commits first, the other waits for it and then finds what is left."""

import threading
from decimal import Decimal as D

import pytest
from django.db import connection

from common.errors import Conflict
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_void
from plans.models import CreditPack
from tests.factories import subscribe
from tests.invoices.purchase_support import (
    NOV_1,
    NOV_5,
    NOW,
)
from tests.invoices.test_purchase_credit_notes import entries, issue, remaining, runs_100
from tests.invoices.test_purchase_void import CREDITS_USED
from tests.threads import first_then_second, run_at_once
from tests.wallets.support import (
    ingest,
    repeat,
    wallet_of,
)
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage, Wallet
from wallets.purchases import credit_pack_purchase, money_top_up

pytestmark = pytest.mark.django_db


def together(*work) -> list:
    """Run each callable in its own thread and database connection, released at
    once; returns each one's result or the Conflict it raised."""
    start = threading.Barrier(len(work))
    results: list = [None] * len(work)

    def worker(i: int) -> None:
        try:
            start.wait(timeout=30)
            results[i] = work[i]()
        except Conflict as refused:
            results[i] = refused
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker is stuck (deadlock?)"
    return results


# Concurrency, for real on PostgreSQL


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_note_waits_for_usage_drawing_from_the_pack_then_is_refused(acme):
    # given: pack runs_100; 20 runs (40 credits) drawn from it, not committed yet
    subscribe(acme, "runner", NOV_1)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    runs = repeat(20, "agent.run", NOW, prefix="run")

    # when: a note for 69.30 (70 credits) comes meanwhile
    _, noted = first_then_second(lambda: ingest(runs, now=NOW), lambda: issue(invoice, "69.30"))

    # then: it waited for the wallet's lock and found 60 credits left
    assert isinstance(noted, Conflict)
    assert noted.message == (
        "40 of the 100 credits sold on this invoice were already used; "
        "at most 59.40 of this line can be credited"
    )
    assert (wallet_of(acme).balance, remaining(block), CreditNote.objects.count()) == (60, 60, 0)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_usage_waits_for_a_note_then_finds_what_is_left(acme):
    # given: pack runs_100; 69.30 of it credited (70 credits), not committed yet
    subscribe(acme, "runner", NOV_1)
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)
    runs = repeat(20, "agent.run", NOW, prefix="run")

    # when: 20 runs (40 credits) arrive meanwhile
    first_then_second(lambda: issue(invoice, "69.30"), lambda: ingest(runs, now=NOW))

    # then: the 30 credits left paid for 15 runs; 5 are uncovered
    assert (wallet_of(acme).balance, remaining(block)) == (0, 0)
    assert UncoveredUsage.objects.get().quantity == D(5)
    assert [e[2] for e in entries(wallet_of(acme), LedgerEntry.CREDIT_NOTE)] == [D(-70)]
    assert Invoice.objects.get(pk=invoice.pk).credited == D("69.30")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_notes_at_once_each_take_back_their_share(acme):
    block, invoice = credit_pack_purchase(customer=acme, pack=runs_100(), now=NOV_5)

    notes = run_at_once(lambda _: issue(invoice, "49.50"), clients=2)

    assert sorted(note.number for note in notes) == ["CN-2026-000001", "CN-2026-000002"]
    assert (wallet_of(acme).balance, remaining(block)) == (0, 0)
    assert [e[2] for e in entries(wallet_of(acme), LedgerEntry.CREDIT_NOTE)] == [D(-50), D(-50)]
    assert Invoice.objects.get(pk=invoice.pk).amount_due == 0


@pytest.fixture
def runner_pack(acme):
    """acme on the runner plan (2 credits a run) with pack runs_100 as its only credits."""
    subscribe(acme, "runner", NOV_1)
    return credit_pack_purchase(
        customer=acme, pack=CreditPack.objects.get(code="runs_100"), now=NOV_5
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_void_waits_for_usage_drawing_from_the_pack_then_is_refused(acme, runner_pack):
    # given: 20 runs (40 credits) drawn from the pack, not committed yet
    block, invoice = runner_pack
    runs = repeat(20, "agent.run", NOW, prefix="run")

    # when: the void comes meanwhile
    _, voided = first_then_second(
        lambda: ingest(runs, now=NOW), lambda: invoice_void(invoice=invoice, reason="", now=NOW)
    )

    # then: it waited for the wallet's lock and saw the credits used
    assert isinstance(voided, Conflict)
    assert voided.message == CREDITS_USED
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.FINALIZED
    assert (wallet_of(acme).balance, CreditNote.objects.count()) == (D(60), 0)
    assert CreditBlock.objects.get(pk=block.pk).remaining == D(60)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_usage_waits_for_a_void_then_finds_no_credits(acme, runner_pack):
    # given: the pack's invoice voided, not committed yet
    block, invoice = runner_pack
    runs = repeat(20, "agent.run", NOW, prefix="run")

    # when: 20 runs arrive meanwhile
    first_then_second(
        lambda: invoice_void(invoice=invoice, reason="", now=NOW), lambda: ingest(runs, now=NOW)
    )

    # then: the pack went back whole, and the runs found nothing to draw
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.VOID
    assert (wallet_of(acme).balance, CreditNote.objects.count()) == (D(0), 1)
    assert CreditBlock.objects.get(pk=block.pk).remaining == D(0)
    assert UncoveredUsage.objects.get().quantity == D(20)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_voids_at_once_take_back_once(acme):
    _, invoice = money_top_up(customer=acme, amount=D("100.00"), currency="USD", now=NOV_5)

    results = together(
        lambda: invoice_void(invoice=invoice, reason="", now=NOW),
        lambda: invoice_void(invoice=invoice, reason="", now=NOW),
    )

    assert sorted(isinstance(r, Conflict) for r in results) == [False, True]
    assert wallet_of(acme, Wallet.MONEY, "USD").balance == D(0)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.VOID).count() == 1
    assert CreditNote.objects.count() == 1

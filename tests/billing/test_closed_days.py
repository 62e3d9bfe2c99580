"""The closed days' group sums kept per process (billing.usage.closed_days): a rate
card's read of the same range keeps the sums of the days before its last one, and of
the current day's hours before the current one, from its second read on and reads
only the rows from the current hour on after that; and the next read
counts whatever changed those days since: a late event (folded, or still among the
unfolded events), one stored by another process, one stored while the sums were
being read, a rebuild of a meter's rollups or of the daily rollups. PostgreSQL only
(SQLite reads the whole range every time)."""

import subprocess
import sys
from datetime import timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction

from billing.models import UsagePropertyDailyRollup
from billing.usage import breakdowns, closed_days
from billing.usage.breakdowns import usage_combinations
from billing.usage.closed_days import closed_days_cache
from billing.usage.folding import fold_clock, unfolded_events, usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.rebuild import meter_usage_rebuild
from common import rawsql
from customers.services import customer_create
from tests.billing.test_folding import ROOT, folder_env
from tests.billing.test_group_daily_rollups import (
    GPT_INPUT,
    NOV_19,
    NOV_20,
    NOW,
    card_meter,
    every_hour,
    ingest,
)

pytestmark = pytest.mark.postgres

# From the 19th at 00:30 to NOW (the 21st at 12:00): the 19th's hours after its first
# (hourly rows) and the 20th (its daily rows) are closed; the 21st's hours are read
# every time.
START = NOV_19 + timedelta(minutes=30)
GPT = (("model", "gpt-4o"), ("token_type", "input"))
O1 = (("model", "o1"), ("token_type", None))
# The whole hours of the read: closed, and the current day's.
FIRST, CUT, LAST = NOV_19 + timedelta(hours=1), NOV_20 + timedelta(days=1), NOW
WHOLE, CLOSED, TODAY = (FIRST, LAST), (FIRST, CUT), (CUT, LAST)
# every_hour's events in the read: 59 of n=1 (the 19th's 00:10 is before it) and o1's 10.
READ = {GPT: D(59), O1: D(10)}


@pytest.fixture(autouse=True)
def at_now():
    """The reads at NOW: the 21st is the current day."""
    with time_machine.travel(NOW, tick=False):
        yield


def read(customer_id: int, meter, end=NOW) -> dict:
    return usage_combinations(customer_id=customer_id, meters=[meter], start=START, end=end)[
        meter.id
    ]


@pytest.fixture
def summed(monkeypatch):
    """The whole hours' ranges whose group sums were read, in order."""
    spans = []
    params = breakdowns.whole_hours_params

    def recording(customer_id, start, end, rest=(), **kwargs):
        spans.append((start, end))
        return params(customer_id, start, end, rest, **kwargs)

    monkeypatch.setattr(breakdowns, "whole_hours_params", recording)
    return spans


@pytest.fixture
def acme(db):
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")
    return customer, meter


def test_the_closed_days_are_kept_from_the_second_read_and_read_no_more(acme, summed):
    customer, meter = acme
    reads = [read(customer.pk, meter) for _ in range(4)]

    # the first read reads the range as before, the second keeps its closed days and
    # the current day's hours before the current one (NOW is on the hour: all of
    # them), the next ones read the fingerprint only
    assert reads == [READ] * 4
    assert summed == [WHOLE, CLOSED, TODAY]
    assert len(closed_days_cache) == 2


def test_a_read_to_the_periods_end_keeps_the_days_before_the_current_one(acme, summed):
    """A statement reads to its period's end: the days before the current one are
    kept, and an event of the current day leaves them so; it lands in the current
    day's hours kept (before NOW's), read again, and the hours from NOW's on are
    read every time."""
    customer, meter = acme
    month_end = NOV_20 + timedelta(days=11)
    for _ in range(3):
        assert read(customer.pk, meter, month_end) == READ
    ingest("acme", [("today", NOW - timedelta(minutes=30), 5, GPT_INPUT)])
    summed.clear()

    assert read(customer.pk, meter, month_end) == {**READ, GPT: D(64)}
    assert summed == [(CUT, NOW), (NOW, month_end)]
    summed.clear()
    assert read(customer.pk, meter, month_end) == {**READ, GPT: D(64)}
    assert summed == [(NOW, month_end)]


def test_an_event_of_the_current_hour_leaves_the_kept_hours(acme, summed):
    """Events of the hour under way (the ones arriving all the time) land after the
    kept hours: a read reads its rows, and those of no kept range."""
    customer, meter = acme
    month_end = NOV_20 + timedelta(days=11)
    later = NOW + timedelta(minutes=40)
    with time_machine.travel(later, tick=False):
        for _ in range(3):
            assert read(customer.pk, meter, month_end) == READ
        ingest("acme", [("this hour", NOW + timedelta(minutes=10), 5, GPT_INPUT)], now=later)
        summed.clear()

        assert read(customer.pk, meter, month_end) == {**READ, GPT: D(64)}
        assert summed == [(NOW, month_end)]


def test_a_new_hour_keeps_the_hours_again_from_its_second_read(acme, summed):
    """An hour later the kept hours end an hour later: a new entry, read afresh by
    the first read of the new hour (the days still kept), kept by the second."""
    customer, meter = acme
    for _ in range(3):
        assert read(customer.pk, meter, NOW + timedelta(hours=2)) == READ
    summed.clear()

    with time_machine.travel(NOW + timedelta(hours=1, minutes=5), tick=False):
        reads = [read(customer.pk, meter, NOW + timedelta(hours=2)) for _ in range(3)]

    assert reads == [READ] * 3
    an_hour_on = NOW + timedelta(hours=1)
    assert summed == [
        (CUT, NOW + timedelta(hours=2)),
        (CUT, an_hour_on),
        (an_hour_on, NOW + timedelta(hours=2)),
        (an_hour_on, NOW + timedelta(hours=2)),
    ]


@pytest.mark.parametrize("folded", [True, False], ids=["folded", "left unfolded"])
def test_a_late_event_of_a_closed_day_is_counted_by_the_next_read(acme, folded, monkeypatch):
    customer, meter = acme
    for _ in range(3):
        assert read(customer.pk, meter) == READ

    # when: an event of the 20th arrives the next day
    late = [("late", NOV_20 + timedelta(hours=3), D("2.5"), GPT_INPUT)]
    if folded:
        ingest("acme", late)
    else:
        monkeypatch.setattr(fold_clock, "fold_if_due", lambda: None)
        batch = [
            {"id": "late", "customer": "acme", "event_name": "llm"}
            | {"timestamp": late[0][1].isoformat(), "properties": {"n": "2.5", **GPT_INPUT}}
        ]
        assert events_ingest(events=batch, now=NOW).rejected == []
        assert unfolded_events() == 1

    # then: the next read counts it, and so do the reads after (kept again)
    expected = {**READ, GPT: D("61.5")}
    assert [read(customer.pk, meter) for _ in range(3)] == [expected] * 3
    # and the fold, which moves it into the rollups, changes nothing
    usage_fold(wait=True)
    assert read(customer.pk, meter) == expected


@pytest.mark.django_db(transaction=True)
def test_an_event_stored_by_another_process_is_counted_by_the_next_read():
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")
    for _ in range(3):
        assert read(customer.pk, meter) == READ

    # when: another process stores (and folds) an event of the 19th
    script = (
        "from datetime import datetime; from decimal import Decimal; "
        "from billing.usage.ingestion import events_ingest; "
        "from billing.usage.folding import usage_fold; "
        "e = {'id': 'other', 'customer': 'acme', 'event_name': 'llm', "
        "'timestamp': '2026-11-19T05:00:00+00:00', "
        "'properties': {'n': 7, 'model': 'gpt-4o', 'token_type': 'input'}}; "
        f"assert events_ingest(events=[e], now=datetime.fromisoformat('{NOW.isoformat()}'))"
        ".rejected == []; usage_fold(wait=True)"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=folder_env(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    # then: this process's next read counts it
    assert read(customer.pk, meter) == {**READ, GPT: D(66)}


def test_an_event_stored_while_the_sums_are_read_makes_the_next_read_read_again(
    acme, monkeypatch, summed
):
    customer, meter = acme
    read(customer.pk, meter)  # seen, not kept
    fingerprints = closed_days.fingerprints

    def event_arrives_after(*args):
        counts = fingerprints(*args)
        ingest("acme", [("between", NOV_20 + timedelta(hours=1), 4, GPT_INPUT)])
        return counts

    monkeypatch.setattr(closed_days, "fingerprints", event_arrives_after)
    expected = {**READ, GPT: D(63)}
    assert read(customer.pk, meter) == expected  # its sums were read after the event
    monkeypatch.setattr(closed_days, "fingerprints", fingerprints)

    # the entries' fingerprints were read before the event: never used, read again
    summed.clear()
    assert [read(customer.pk, meter) for _ in range(2)] == [expected] * 2
    assert summed == [CLOSED, TODAY]


def test_a_read_inside_a_transaction_keeps_nothing(acme):
    customer, meter = acme
    read(customer.pk, meter)
    with transaction.atomic():
        assert read(customer.pk, meter) == READ
    assert len(closed_days_cache) == 0


def test_a_meter_rebuild_is_read_by_a_process_that_kept_the_meter_before(acme):
    """A process that holds the meter's definition from before the rebuild (a
    published version's meter is not checked again: MeterCache.by_code_frozen)
    still reads the rebuilt rollups: the revision is read with the fingerprint."""
    customer, meter = acme
    # given: sums kept from daily rows gone wrong behind the services' back
    UsagePropertyDailyRollup.objects.filter(day=NOV_20).update(value_sum=D(1000))
    for _ in range(3):
        wrong = read(customer.pk, meter)
    assert wrong[GPT] == D(59) - 24 + 1000

    # when: the meter's rollups are rebuilt (the same events: the same counts)
    meter_usage_rebuild(meter_id=meter.id)

    # then: the definition from before reads the rebuilt sums
    assert read(customer.pk, meter) == READ


def test_rebuild_daily_rollups_is_read_by_the_next_read(acme):
    """The command renews every meter's revision: sums kept from daily rows gone
    wrong (written by processes of an older code, say) are not used again."""
    customer, meter = acme
    UsagePropertyDailyRollup.objects.filter(day=NOV_20).update(value_sum=D(1000))
    for _ in range(3):
        assert read(customer.pk, meter)[GPT] == D(59) - 24 + 1000

    with time_machine.travel(NOW, tick=False):
        call_command("rebuild_daily_rollups", stdout=StringIO())

    assert read(customer.pk, meter) == READ


def test_a_read_inside_a_transaction_reads_its_counts_when_it_asks_for_them(acme, sent_ahead):
    """A read inside a transaction must take EdgeCache.kept_before before it reads
    its counts, so within a read-ahead block its counts (the closed days' and the
    edges') are read when asked, never sent ahead with the block's first statement;
    the rows it does not keep still are."""
    customer, meter = acme
    with transaction.atomic():
        for _ in range(4):
            with rawsql.read_ahead(("a read in a transaction",)):
                rawsql.rows("SELECT 1", [], (None,))  # the block's first, as a customer's
                assert read(customer.pk, meter, NOW + timedelta(days=9)) == READ

    ahead = [text for block in sent_ahead for text in block[1:]]
    assert ahead, "nothing was sent ahead"
    assert not [text for text in ahead if text.startswith(("SELECT m.id", "SELECT edge,"))]

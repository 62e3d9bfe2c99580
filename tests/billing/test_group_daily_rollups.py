"""Daily group rollups (billing.models.UsagePropertyDailyRollup): each is its day's
hourly group rows added up, written with them (by the fold on PostgreSQL for the
days before the database's, then rolled up: tests/billing/test_group_days_roll.py;
at ingestion on SQLite; by the rebuilds), and a group read (breakdowns, rate-card
combinations, one combination alone) adds a row a whole UTC day and the hourly rows
only for the hours around them. Migration 0031 builds the daily rows of the group
rows already stored. Both databases. (That every daily group row equals its day's
events after folds and beside ingestion: tests/billing/test_folding.py.)"""

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import UsageFoldWatermark, UsagePropertyDailyRollup, UsagePropertyRollup
from billing.usage.breakdowns import combination_quantity, usage_combinations, usage_groups
from billing.usage.folding import usage_fold
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.rebuild import meter_usage_rebuild
from billing.usage.rollups import day_of
from customers.services import customer_create
from plans.services import meter_create

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NOV_19 = datetime(2026, 11, 19, tzinfo=UTC)
NOV_20 = NOV_19 + timedelta(days=1)
GPT_INPUT = {"model": "gpt-4o", "token_type": "input"}
CUSTOMERS = itertools.count()
# (On SQLite a rollup's day is stored as the cursor writes an aware datetime, with
# its offset, where the ORM compares without: the tests select days by range.)


def card_meter(code: str = "tokens", aggregation: str = "sum"):
    """A meter grouping by model and token type, as a rate card prices it."""
    made = meter_create(
        code=code,
        name=code,
        event_name="llm",
        aggregation=aggregation,
        value_property="" if aggregation == "count" else "n",
        group_by=["model", "token_type"],
    )
    return meter_cache.by_id()[made.id]


def ingest(customer: str, events: list[tuple], *, now: datetime = NOW, fold: bool = True) -> None:
    """Events (id, timestamp, n, properties), folded (`fold`)."""
    batch = [
        {
            "id": event_id,
            "customer": customer,
            "event_name": "llm",
            "timestamp": at.isoformat(),
            "properties": {"n": n, **properties},
        }
        for event_id, at, n, properties in events
    ]
    with time_machine.travel(now, tick=False):
        assert events_ingest(events=batch).rejected == []
    if fold:
        usage_fold(wait=True)


def every_hour(customer: str) -> None:
    """One gpt-4o input event of n=1 in every hour from Nov 19 00:00 to Nov 21 11:00,
    and an o1 output event of n=10 at Nov 20 06:30."""
    events = [(f"h{i}", NOV_19 + timedelta(hours=i, minutes=10), 1, GPT_INPUT) for i in range(60)]
    events.append(("o1", NOV_20 + timedelta(hours=6, minutes=30), 10, {"model": "o1"}))
    ingest(customer, events)


def hourly_added_up() -> dict[tuple, tuple]:
    """The hourly group rows added up per day: count, sum, max and latest value."""
    days: dict[tuple, list] = defaultdict(lambda: [0, D(0), None, None])
    for r in UsagePropertyRollup.objects.all():
        row = days[r.customer_id, r.meter_id, day_of(r.hour), r.position, r.group_value]
        row[0] += r.event_count
        row[1] += r.value_sum
        if r.value_max is not None and (row[2] is None or r.value_max > row[2]):
            row[2] = r.value_max
        if r.latest_at is not None and (row[3] is None or r.latest_at > row[3][0]):
            row[3] = (r.latest_at, r.latest_value)
    return {
        key: (n, total, top, latest and latest[1]) for key, (n, total, top, latest) in days.items()
    }


def daily_rows() -> dict[tuple, tuple]:
    return {
        (r.customer_id, r.meter_id, r.day, r.position, r.group_value): (
            r.event_count,
            r.value_sum,
            r.value_max,
            r.latest_value if r.latest_at else None,
        )
        for r in UsagePropertyDailyRollup.objects.all()
    }


def test_a_group_read_takes_whole_days_from_the_daily_rows_and_the_other_hours_from_the_hourly(
    db,
):
    """The hourly group rows of Nov 20 are made wrong on purpose: a read of a range
    with Nov 20 as a whole day does not see them (it adds the day's row), a read of
    some of its hours does; the breakdowns, the combinations and one combination
    alone alike."""
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")
    assert UsagePropertyDailyRollup.objects.filter(customer=acme).count() == 4
    UsagePropertyRollup.objects.filter(
        customer=acme, hour__gte=NOV_20, hour__lt=NOV_20 + timedelta(days=1)
    ).update(value_sum=D(100))

    def reads(start, end):
        combinations = usage_combinations(
            customer_id=acme.pk, meters=[meter], start=start, end=end
        )[meter.id]
        by_model = usage_groups(customer_id=acme.pk, meter=meter, by="model", start=start, end=end)
        alone = combination_quantity(
            customer_id=acme.pk, meter=meter, values=GPT_INPUT, start=start, end=end
        )
        gpt_input = (("model", "gpt-4o"), ("token_type", "input"))
        return (
            combinations[gpt_input],
            alone,
            {g.key["model"]: g.quantity for g in by_model},
        )

    # 19th 22:00 to 21st 02:00: two hours, the whole 20th (24 from its daily row), two hours
    assert reads(NOV_19 + timedelta(hours=22), NOV_20 + timedelta(hours=26)) == (
        28,
        28,
        {"gpt-4o": 28, "o1": 10},
    )
    # The 20th's hours 03:00 to 07:00: hourly rows, as they now are (100 each)
    assert reads(NOV_20 + timedelta(hours=3), NOV_20 + timedelta(hours=7)) == (
        400,
        400,
        {"gpt-4o": 400, "o1": 100},
    )
    # From 19th 00:30 (its 00:10 event is before it): the edge hour from the raw
    # events, the 19th's other hours and the 21st's from hourly rows, the 20th its day
    assert reads(NOV_19 + timedelta(minutes=30), NOW) == (59, 59, {"gpt-4o": 59, "o1": 10})


def test_a_late_event_adds_to_its_days_row(db):
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")

    # when: an event of the 19th arrives two days later, after the day's row was written
    ingest("acme", [("late", NOV_19 + timedelta(hours=5, minutes=59), D("2.5"), GPT_INPUT)])

    # then: it adds to the day's row (no second row), and the reads count it
    assert list(
        UsagePropertyDailyRollup.objects.filter(
            customer=acme, day__gte=NOV_19, day__lt=NOV_20, group_value__contains="gpt-4o"
        ).values_list("event_count", "value_sum")
    ) == [(25, D("26.5"))]
    assert daily_rows() == hourly_added_up()
    assert combination_quantity(
        customer_id=acme.pk, meter=meter, values=GPT_INPUT, start=NOV_19, end=NOW
    ) == D("62.5")


EVENTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60 * 3600 - 1),  # seconds after Nov 19 00:00
        st.sampled_from([D(1), D("2.5"), D(7), D("0.001")]),
        st.sampled_from(["gpt-4o", "o1", None]),
        st.sampled_from(["input", "output", None]),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(EVENTS, min_size=1, max_size=3))
def test_every_daily_group_row_is_its_hourly_rows_added_up(db, batches):
    """Whatever the events and however they are split into batches and folds: every
    meter's daily group rows (combinations only for count and sum, each property's
    too for max and latest) equal its hourly group rows added up per day."""
    if not meter_cache.by_code("sum_tokens"):
        for aggregation in ("count", "sum", "max", "latest"):
            card_meter(f"{aggregation}_tokens", aggregation)
    code = f"c{next(CUSTOMERS)}"
    customer_create(external_id=code, name=code, currency="USD")
    ids = itertools.count()
    for batch in batches:
        events = []
        for seconds, n, model, token_type in batch:
            properties = {
                name: value
                for name, value in (("model", model), ("token_type", token_type))
                if value is not None
            }
            events.append(
                (f"{code}-{next(ids)}", NOV_19 + timedelta(seconds=seconds), n, properties)
            )
        ingest(code, events)

    assert daily_rows() == hourly_added_up()
    assert UsagePropertyDailyRollup.objects.exists()


def test_rebuild_daily_rollups_recomputes_the_group_days_from_the_hourly_rows(db):
    """After an upgrade during which processes of the code before kept writing hourly
    group rows only, the command puts every day right again."""
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    card_meter()
    every_hour("acme")
    expected = daily_rows()
    UsagePropertyDailyRollup.objects.filter(day__gte=NOV_19, day__lt=NOV_20).delete()
    UsagePropertyDailyRollup.objects.update(event_count=1, value_sum=D(1))

    call_command("rebuild_daily_rollups", stdout=StringIO())

    assert daily_rows() == expected == hourly_added_up()
    assert UsagePropertyDailyRollup.objects.filter(customer=acme).count() == 4


def test_a_days_latest_is_its_latest_hour_that_has_one(db):
    """Hours folded while a meter was not `latest` have no latest columns: the day
    takes its latest from the hours that have them (NULLs last: PostgreSQL sorts
    them first in a descending order, and the day read none)."""
    customer_create(external_id="acme", name="Acme", currency="USD")
    card_meter(aggregation="latest")
    every_hour("acme")
    last_hour = UsagePropertyRollup.objects.filter(hour__gte=NOV_19, hour__lt=NOV_20).latest("hour")
    UsagePropertyRollup.objects.filter(pk=last_hour.pk).update(
        latest_at=None, latest_event_id="", latest_value=None
    )

    call_command("rebuild_daily_rollups", stdout=StringIO())

    assert daily_rows() == hourly_added_up()
    nov_19 = [v for (_, _, day, _, _), v in daily_rows().items() if NOV_19 <= day < NOV_20]
    assert nov_19 and all(latest is not None for *_, latest in nov_19)


def test_a_meter_rebuild_writes_its_group_days_again(db):
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")
    expected = daily_rows()
    UsagePropertyDailyRollup.objects.update(event_count=1, value_sum=D(1))

    assert meter_usage_rebuild(meter_id=meter.id) == 61

    # (a sum meter's latest columns are not read: the rebuild writes them, a fold not)
    assert {k: v[:3] for k, v in daily_rows().items()} == {k: v[:3] for k, v in expected.items()}
    assert (
        combination_quantity(
            customer_id=acme.pk,
            meter=meter_cache.by_id()[meter.id],
            values=GPT_INPUT,
            start=NOV_19,
            end=NOW,
        )
        == 60
    )


@pytest.mark.django_db(transaction=True)
def test_migration_0031_builds_the_daily_rows_of_the_stored_hourly_group_rows():
    before = [("billing", "0030_plan_migration_message_words")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Customer = apps.get_model("customers", "Customer")
    Meter = apps.get_model("plans", "Meter")
    Rollup = apps.get_model("billing", "UsagePropertyRollup")
    customer = Customer.objects.create(external_id="acme", name="Acme", currency="USD")
    meter = Meter.objects.create(
        code="tokens",
        name="T",
        event_name="llm",
        aggregation="sum",
        value_property="n",
        group_by=["model", "token_type"],
    )
    hours = [NOV_19 + timedelta(hours=h) for h in (0, 5, 23, 24, 47)]
    combination = card_meter_combination_text()
    for i, hour in enumerate(hours):
        for position, value in ((2, combination), (2, "other")):
            Rollup.objects.create(
                customer_id=customer.id,
                meter_id=meter.id,
                hour=hour,
                position=position,
                group_value=value,
                event_count=i + 1,
                value_sum=D("1.5") * (i + 1),
                value_max=D(10 - i),
                latest_at=hour + timedelta(minutes=59),
                latest_event_id=f"e{i}",
                latest_value=D(i),
            )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    days = list(
        UsagePropertyDailyRollup.objects.filter(group_value=combination)
        .order_by("day")
        .values_list("day", "event_count", "value_sum", "value_max", "latest_value")
    )
    assert days == [
        (NOV_19, 6, D(9), D(10), D(2)),
        (NOV_20, 9, D("13.5"), D(7), D(4)),
    ]
    assert UsagePropertyDailyRollup.objects.count() == 4
    # and an event ingested afterwards adds to the migrated day's row, not a second one
    meter_cache.clear()
    ingest("acme", [("late", NOV_19 + timedelta(hours=5, minutes=30), 2, GPT_INPUT)])
    assert list(
        UsagePropertyDailyRollup.objects.filter(
            day__gte=NOV_19, day__lt=NOV_20, group_value=combination
        ).values_list("event_count", "value_sum")
    ) == [(7, D(11))]


def card_meter_combination_text() -> str:
    """The group text of the combination (gpt-4o, input), as ingestion writes it."""
    from billing.usage.metering import combination_text

    return combination_text(["gpt-4o", "input"])


def test_reads_are_the_same_from_the_daily_rows_as_from_the_hourly_ones(db):
    """The answers of every group read, for random events over two and a half days
    and ranges on the hour or not, are those read from the hourly group rows alone
    (as before the daily group rollups): the daily rows emptied, every range read
    with no whole day. Count, sum, max and latest meters."""
    rng = random.Random(31)
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meters = [card_meter(f"{a}_tokens", a) for a in ("count", "sum", "max", "latest")]
    events = []
    for i in range(400):
        properties = {}
        for name, values in (("model", ["gpt-4o", "o1", None]), ("token_type", ["input", None])):
            if (value := rng.choice(values)) is not None:
                properties[name] = value
        at = NOV_19 + timedelta(seconds=rng.randrange(60 * 3600))
        events.append((f"e{i}", at, D(rng.randrange(1, 1000)) / 10, properties))
    ingest("acme", events[:200])
    ingest("acme", events[200:])
    ranges = [
        (NOV_19, NOW),
        (NOV_19 + timedelta(hours=3, minutes=7), NOW - timedelta(minutes=41)),
        (NOV_20, NOV_20 + timedelta(days=1)),
    ]

    def answers():
        found = []
        for start, end in ranges:
            found.append(
                usage_combinations(customer_id=acme.pk, meters=meters, start=start, end=end)
            )
            for meter in meters:
                for by in ("model", "token_type"):
                    groups = usage_groups(
                        customer_id=acme.pk, meter=meter, by=by, start=start, end=end
                    )
                    found.append([(g.key, g.quantity) for g in groups])
                found.append(
                    combination_quantity(
                        customer_id=acme.pk, meter=meter, values=GPT_INPUT, start=start, end=end
                    )
                )
        return found

    from_days = answers()
    # Without daily rows a read of whole days would miss them: the hours alone, read
    # by splitting every range at each midnight and noon inside it (no whole day in
    # a piece)
    UsagePropertyDailyRollup.objects.all().delete()
    assert any(from_days[0][meters[1].id].values())
    hours_only = []
    for start, end in ranges:
        cuts = [start]
        cut = day_of(start) + timedelta(hours=12)
        while cut < end:
            if cut > start:
                cuts.append(cut)
            cut += timedelta(hours=12)
        cuts.append(end)
        hours_only.append(list(itertools.pairwise(cuts)))
    assert from_days == answers_of_pieces(acme.pk, meters, hours_only)


def answers_of_pieces(customer_id: int, meters, pieces_of_ranges) -> list:
    """The reads of test_reads_are_the_same_..., each range read piece by piece (no
    piece holds a whole day) and added up: count and sum added, max the greatest,
    latest the last piece's with usage."""
    found = []

    def combine(meter, values: list[D]) -> D:
        values = [v for v in values if v is not None]
        if not values:
            return D(0)
        if meter.aggregation in ("count", "sum"):
            return sum(values, D(0))
        if meter.aggregation == "max":
            return max(values)
        # latest: the last piece's with usage (a piece without reads as 0)
        return ([v for v in values if v] or [D(0)])[-1]

    for pieces in pieces_of_ranges:
        by_piece = [
            usage_combinations(customer_id=customer_id, meters=meters, start=s, end=e)
            for s, e in pieces
        ]
        combined = {}
        for meter in meters:
            keys = {k for piece in by_piece for k in piece[meter.id]}
            combined[meter.id] = {
                k: combine(meter, [piece[meter.id].get(k) for piece in by_piece]) for k in keys
            }
        found.append(combined)
        for meter in meters:
            for by in ("model", "token_type"):
                groups: dict = {}
                for s, e in pieces:
                    for g in usage_groups(
                        customer_id=customer_id, meter=meter, by=by, start=s, end=e
                    ):
                        groups.setdefault(g.key[by], []).append(g.quantity)
                quantities = {k: combine(meter, v) for k, v in groups.items()}
                found.append(
                    [
                        ({by: k}, q)
                        for k, q in sorted(
                            quantities.items(), key=lambda g: (-g[1], g[0] is None, g[0] or "")
                        )
                    ]
                )
            found.append(
                combine(
                    meter,
                    [
                        combination_quantity(
                            customer_id=customer_id, meter=meter, values=GPT_INPUT, start=s, end=e
                        )
                        for s, e in pieces
                    ],
                )
            )
    return found


@pytest.mark.postgres
def test_a_meter_rebuild_after_a_detach_keeps_the_detached_months_group_days(db):
    """January 2031's events are detached (billing.usage.detaching): a rebuild of the
    meter recomputes February's group rows from its events and keeps January's, hourly
    and daily, as they were; the reads of both months are unchanged."""
    from billing.tasks import detach_event_months
    from billing.usage.partitions import event_partitions_ensure

    jan_1, feb_1, mar_1 = (datetime(2031, m, 1, tzinfo=UTC) for m in (1, 2, 3))
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    event_partitions_ensure(around=jan_1, back=0, ahead=1)
    # As if the database's clock read March 2031: the folds write these days' daily
    # rows (billing.usage.folding.group_days_roll).
    UsageFoldWatermark.objects.update_or_create(pk=1, defaults={"group_days_before": mar_1})
    for month, prefix in ((jan_1, "jan"), (feb_1, "feb")):
        events = [
            (f"{prefix}{i}", month + timedelta(hours=7 * i, minutes=5), i + 1, GPT_INPUT)
            for i in range(10)
        ]
        ingest("acme", events, now=month + timedelta(days=3))

    def reads():
        return [
            usage_combinations(customer_id=acme.pk, meters=[meter], start=s, end=e)
            for s, e in ((jan_1, feb_1), (feb_1, mar_1))
        ]

    before, hourly = daily_rows(), UsagePropertyRollup.objects.count()
    read = reads()
    with time_machine.travel(datetime(2032, 3, 15, 9, tzinfo=UTC), tick=False):
        assert "billing_usageevent_y2031m01" in detach_event_months.apply().get()

    assert meter_usage_rebuild(meter_id=meter.id) == 10

    after = daily_rows()
    assert {k: v[:3] for k, v in after.items()} == {k: v[:3] for k, v in before.items()}
    assert after == hourly_added_up()
    assert UsagePropertyRollup.objects.count() == hourly
    assert reads() == read
    assert read[0][meter.id] == {(("model", "gpt-4o"), ("token_type", "input")): D(55)}

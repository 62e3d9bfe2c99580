"""The daily group rollups are whole before a day (the fold watermark's
group_days_before, billing.usage.folding): a fold adds to them only for the days
before it, and the first fold of a new day rolls the days since up from their hourly
group rows. A group read takes its whole days from the daily rows only before that
day, and the later ones from the hourly rows (billing.usage.whole_hours).

The day is the database's: these tests set it back to a day of their events, as if
those days had passed with the folder stopped, and make the daily rows of the days
after it wrong on purpose (a day not rolled yet has none but the late events', or a
rebuild's), so that a read that took them would answer wrong."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from billing.models import UsageFoldWatermark, UsagePropertyDailyRollup
from billing.usage.breakdowns import combination_quantity, usage_combinations, usage_groups
from billing.usage.folding import (
    HOUR_ORIGIN,
    committed_bound,
    fold_clock,
    fold_through,
    usage_fold,
)
from billing.usage.rollups import day_of, rollup_lock
from customers.services import customer_create
from tests.billing.test_group_daily_rollups import (
    GPT_INPUT,
    NOV_19,
    NOV_20,
    NOW,
    card_meter,
    daily_rows,
    every_hour,
    hourly_added_up,
    ingest,
)

pytestmark = pytest.mark.postgres

DAY = timedelta(days=1)
NOV_21 = NOV_20 + DAY
GPT = (("model", "gpt-4o"), ("token_type", "input"))


def whole_before(day) -> None:
    """The day the daily group rollups are whole before, as a fold leaves it."""
    UsageFoldWatermark.objects.update_or_create(pk=1, defaults={"group_days_before": day})


def db_today():
    """The database's UTC day, which the fold rolls up to."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT date_bin('1 day', now(), {HOUR_ORIGIN})")
        return cursor.fetchone()[0]


def reads(customer_id: int, meter, start, end) -> tuple:
    """A range's gpt-4o input tokens by the three group reads."""
    return (
        usage_combinations(customer_id=customer_id, meters=[meter], start=start, end=end)[
            meter.id
        ].get(GPT, D(0)),
        combination_quantity(
            customer_id=customer_id, meter=meter, values=GPT_INPUT, start=start, end=end
        ),
        {
            g.key["model"]: g.quantity
            for g in usage_groups(
                customer_id=customer_id, meter=meter, by="model", start=start, end=end
            )
        },
    )


RANGES = [
    (NOV_19, NOW),  # two whole days, then hours
    (NOV_19 + timedelta(hours=22), NOV_21 + timedelta(hours=2)),  # hours, the 20th, hours
    (NOV_19, NOV_21),  # two whole days only
    (NOV_20 + timedelta(hours=3), NOV_20 + timedelta(hours=7)),  # hours of one day
]


@pytest.mark.parametrize("whole_until", [NOV_19, NOV_20, NOV_21, NOV_21 + DAY, None])
def test_a_group_read_takes_no_daily_row_of_a_day_not_rolled_up(db, whole_until):
    """Whatever day the daily rows are whole before (before, inside or after a range's
    whole days; null: every day, as written before billing 0032), the reads answer
    what the events say, though every daily row of that day on is wrong."""
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")
    expected = [reads(acme.pk, meter, start, end) for start, end in RANGES]
    assert expected[0] == (60, 60, {"gpt-4o": 60, "o1": 10})

    whole_before(whole_until)
    if whole_until is not None:
        UsagePropertyDailyRollup.objects.filter(day__gte=whole_until).update(value_sum=D(1000))

    assert [reads(acme.pk, meter, start, end) for start, end in RANGES] == expected


def test_the_first_fold_after_the_day_rolls_the_days_since_up(db, monkeypatch):
    """The day was the 20th: the rows of the 20th and later are wrong (a rebuild's,
    say). A late event of the 19th folded then adds to its day's row; one of the 20th
    to its hour's only. The next fold rolls the 20th up to the database's day: every
    daily row is its hours added up again, and no read changed on the way."""
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    every_hour("acme")
    whole_before(NOV_20)
    UsagePropertyDailyRollup.objects.filter(day__gte=NOV_20).update(value_sum=D(1000))
    nov_20_rows = daily_rows()

    late = [
        ("late19", NOV_19 + timedelta(hours=5, minutes=30), D("2.5"), GPT_INPUT),
        ("late20", NOV_20 + timedelta(hours=5, minutes=30), D(4), GPT_INPUT),
    ]
    monkeypatch.setattr(fold_clock, "fold_if_due", lambda: None)  # folded below
    ingest("acme", late, fold=False)
    # A fold that does not roll (as a meter's rebuild folds first).
    with transaction.atomic():
        rollup_lock(shared=True)
        fold_through(committed_bound())

    nov_19 = {k: v for k, v in daily_rows().items() if k[2] < NOV_20}
    assert nov_19 == {k: v for k, v in hourly_added_up().items() if k[2] < NOV_20}
    assert {k: v for k, v in daily_rows().items() if k[2] >= NOV_20} == {
        k: v for k, v in nov_20_rows.items() if k[2] >= NOV_20
    }
    before_roll = reads(acme.pk, meter, NOV_19, NOW)
    assert before_roll == (D("66.5"), D("66.5"), {"gpt-4o": D("66.5"), "o1": 10})

    usage_fold(wait=True)

    assert UsageFoldWatermark.objects.get().group_days_before == db_today()
    assert daily_rows() == hourly_added_up()
    assert reads(acme.pk, meter, NOV_19, NOW) == before_roll
    assert reads(acme.pk, meter, NOV_19, NOV_21) == (
        D("54.5"),
        D("54.5"),
        {"gpt-4o": D("54.5"), "o1": 10},
    )


def test_a_fold_of_the_current_day_writes_its_hours_only(db):
    """Events of the database's current day: the fold writes their hourly group rows
    and no daily row, and the days before it get theirs; the reads count them all."""
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    meter = card_meter()
    now = timezone.now().replace(microsecond=0)
    today = day_of(now)
    moments = [today - DAY + timedelta(hours=3), today - DAY + timedelta(hours=20), now]
    ingest(
        "acme",
        [(f"e{i}", at - timedelta(seconds=1), 1, GPT_INPUT) for i, at in enumerate(moments)],
        now=now,
    )

    days, rolled_to = {k[2] for k in daily_rows()}, db_today()
    assert UsageFoldWatermark.objects.get().group_days_before == rolled_to
    assert days == {d for d in (today - DAY, today) if d < rolled_to}
    assert {k[2] for k in hourly_added_up()} == {today - DAY, today}
    assert reads(acme.pk, meter, today - DAY, now + timedelta(hours=1))[0] == 3


@pytest.mark.django_db(transaction=True)
def test_back_to_0031_every_day_is_rolled_up_first():
    """The code before 0032 reads every whole day from the daily rows: migrating back
    rolls up the days from the watermark's day on (their rows here wrong, or missing)
    before the column goes; and forward again, the hours' BRIN index is back."""
    customer_create(external_id="acme", name="Acme", currency="USD")
    card_meter()
    every_hour("acme")
    expected = hourly_added_up()
    whole_before(NOV_20)
    UsagePropertyDailyRollup.objects.filter(day__gte=NOV_20, day__lt=NOV_21).update(
        value_sum=D(1000)
    )
    UsagePropertyDailyRollup.objects.filter(day__gte=NOV_21).delete()

    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0031_group_daily_rollups")])

    assert daily_rows() == expected
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'usage_group_hour_brin'")
        assert cursor.fetchall() == [
            (
                "CREATE INDEX usage_group_hour_brin ON public.billing_usagepropertyrollup "
                "USING brin (hour)",
            )
        ]

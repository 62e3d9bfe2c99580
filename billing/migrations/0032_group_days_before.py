"""The day up to which the daily group rollups are whole (billing.usage.folding):
from here on a fold adds to them only for the days before it, and rolls each day
up from the hourly group rows once it has passed. Null until the first fold of the
new code, which sets it to its day: the code before this one wrote every day's rows
with every fold. Processes of that code still folding during an upgrade keep adding
to the current day's rows, which the roll replaces; their reads (which take every
whole day from the daily rows) miss a day's events between its end and the first
fold after it (a second, with the folder service).

PostgreSQL: a BRIN index on the hourly group rows' hour, by which the roll finds a
day's rows among every customer's (the primary key starts with the customer); an
hour's rows are written together, so the table's pages follow the hours, and the
index is a few pages, cheap to keep up at every insert.

Back to 0031: the days from that day on are rolled up first (the code before reads
every day's daily rows), under the folders' and the rollup locks."""

from importlib import import_module

from django.db import migrations, models

FOLD_LOCK_KEY = 7_310_624_002
ROLLUP_LOCK_KEY = 7_310_624_001
BRIN = "usage_group_hour_brin"
# The days from the watermark's day on, each its hourly rows added up, as 0031 built
# every day's, replacing what they held.
DAYS_0031 = import_module("billing.migrations.0031_group_daily_rollups").DAYS_FROM_HOURS
HOURS_SINCE = (
    "FROM billing_usagepropertyrollup\n"
    "WHERE hour >= (SELECT max(group_days_before) FROM billing_usagefoldwatermark)\n"
)
DAYS_FROM_HOURS = DAYS_0031.replace("FROM billing_usagepropertyrollup\n", HOURS_SINCE) + (
    "\nON CONFLICT (customer_id, meter_id, day, position, group_value) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}"
        for column in (
            "event_count",
            "value_sum",
            "value_max",
            "latest_at",
            "latest_event_id",
            "latest_value",
        )
    )
)


def brin_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX {BRIN} ON billing_usagepropertyrollup USING brin (hour)"
        )


def days_rolled_up(apps, schema_editor):
    """Every day's daily group rows whole again, as the code before reads them."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK_KEY])
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
        cursor.execute(DAYS_FROM_HOURS)
        cursor.execute(f"DROP INDEX IF EXISTS {BRIN}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0031_group_daily_rollups"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagefoldwatermark",
            name="group_days_before",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(brin_create, days_rolled_up),
    ]

"""Daily group rollups (billing.models.UsagePropertyDailyRollup): the hourly group
rows added up per UTC day, so that a read of a period (a rate card's rows, a
breakdown) adds a row a day and group instead of 24. Built here from the hourly
group rows already stored; the events not folded yet are added to both by the next
fold. Processes of the code before this one that keep ingesting or folding
meanwhile write hourly rows only: `manage.py rebuild_daily_rollups` recomputes the
days after the upgrade. PostgreSQL: with room on each page for the fold's updates,
as the other rollups (billing 0022)."""

import django.db.models.deletion
from django.db import migrations, models

COLUMNS = (
    "customer_id, meter_id, day, position, group_value, event_count, value_sum, "
    "value_max, latest_at, latest_event_id, latest_value"
)
LATEST = "ORDER BY latest_at DESC NULLS LAST, latest_event_id DESC NULLS LAST"
FILLFACTOR = 50

# PostgreSQL: one statement, under the rollup lock held exclusively (a fold running
# meanwhile is waited for: billing.usage.rollups.ROLLUP_LOCK_KEY).
DAYS_FROM_HOURS = f"""
INSERT INTO billing_usagepropertydailyrollup ({COLUMNS})
SELECT customer_id, meter_id, date_trunc('day', hour, 'UTC'), position, group_value,
    sum(event_count), sum(value_sum), max(value_max), (array_agg(latest_at {LATEST}))[1],
    (array_agg(latest_event_id {LATEST}))[1], (array_agg(latest_value {LATEST}))[1]
FROM billing_usagepropertyrollup
GROUP BY 1, 2, 3, 4, 5"""  # noqa: S608 (constants only)
ROLLUP_LOCK_KEY = 7_310_624_001


def days_from_hours(apps, schema_editor):
    """Each (customer, meter, UTC day, position, group value)'s hourly group rows
    added up into its daily row."""
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
            cursor.execute(
                f"ALTER TABLE billing_usagepropertydailyrollup SET (fillfactor = {FILLFACTOR})"
            )
            cursor.execute(DAYS_FROM_HOURS)
        return
    # SQLite: added up here, written as ingestion writes them (aware datetimes
    # through the cursor, so the day's text is the one its upserts match).
    hourly = apps.get_model("billing", "UsagePropertyRollup")
    days = {}
    rows = hourly.objects.order_by("customer_id", "meter_id", "hour", "position", "group_value")
    for r in rows.iterator(chunk_size=5000):
        key = (r.customer_id, r.meter_id, r.hour.replace(hour=0), r.position, r.group_value)
        row = days.setdefault(key, [0, 0, None, None, "", None])
        row[0] += r.event_count
        row[1] += r.value_sum
        if r.value_max is not None and (row[2] is None or r.value_max > row[2]):
            row[2] = r.value_max
        if r.latest_at is not None and (
            row[3] is None or (r.latest_at, r.latest_event_id) > (row[3], row[4])
        ):
            row[3], row[4], row[5] = r.latest_at, r.latest_event_id, r.latest_value
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO billing_usagepropertydailyrollup ({COLUMNS}) "  # noqa: S608 (constants only)
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(*key, *values) for key, values in days.items()],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0030_plan_migration_message_words"),
        ("customers", "0014_sender_email_help"),
        ("plans", "0022_simulation_error_words"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsagePropertyDailyRollup",
            fields=[
                ("event_count", models.BigIntegerField(default=0)),
                ("value_sum", models.DecimalField(decimal_places=10, default=0, max_digits=38)),
                ("value_max", models.DecimalField(decimal_places=10, max_digits=38, null=True)),
                ("latest_at", models.DateTimeField(null=True)),
                ("latest_event_id", models.CharField(default="", max_length=255)),
                ("latest_value", models.DecimalField(decimal_places=10, max_digits=38, null=True)),
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "customer_id",
                        "meter_id",
                        "day",
                        "position",
                        "group_value",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("day", models.DateTimeField()),
                ("position", models.PositiveSmallIntegerField()),
                ("group_value", models.CharField(blank=True, default="", max_length=512)),
                (
                    "customer",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="customers.customer",
                    ),
                ),
                (
                    "meter",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        to="plans.meter",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["customer", "meter", "position", "group_value", "day"],
                        name="usage_group_daily_value",
                    )
                ],
            },
        ),
        migrations.RunPython(days_from_hours, migrations.RunPython.noop),
    ]

"""Folding from the events (billing.usage.folding): each event is stored with its
contributions, and the fold adds the events after a watermark to the rollups; the
rollup tails go. Their rows are added to the rollups here, under the rollup lock
held exclusively, so that every batch before has committed, and the watermark
starts at the highest event id stored: every event up to it is in the rollups
(its tail rows were). Processes of the code before this one must be stopped
first: what they would write to the tails after this has nowhere to go."""

from importlib import import_module

from django.db import migrations, models

from billing.usage.folding import (
    DAILY_ROLLUP_ON_CONFLICT,
    GROUPS,
    HOURLY,
    VIEWS,
    WATERMARK_TABLE,
    committed_bound,
    days_added_up,
    fold_through,
)
from billing.usage.rollups import rollup_lock

TAILS = {HOURLY: "billing_usagerolluptail", GROUPS: "billing_usagepropertyrolluptail"}

# SQLite writes the rollups at ingestion: its views are empty, with the same columns.
EMPTY_VIEWS = {
    HOURLY.unfolded: "SELECT {columns}, NULL AS group_values, 0 AS event_row "
    "FROM billing_usagerollup WHERE 0",
    GROUPS.unfolded: "SELECT {columns}, 0 AS event_row FROM billing_usagepropertyrollup WHERE 0",
}


def fold_the_tails(apps, schema_editor):
    connection = schema_editor.connection
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            rollup_lock(shared=False)
            for folded, tail in TAILS.items():
                cursor.execute(folded.insert_from(tail))
                if folded is HOURLY:  # the daily rollups are the hours added up
                    cursor.execute(days_added_up(DAILY_ROLLUP_ON_CONFLICT, tail))
        bound = committed_bound() if postgres else 0
        cursor.execute(
            f"INSERT INTO {WATERMARK_TABLE} (id, folded_through) VALUES (1, %s)",  # noqa: S608
            [bound],
        )
        for tail in TAILS.values():
            cursor.execute(f"DROP TABLE {tail}")
        for folded in TAILS:
            definition = (
                VIEWS[folded.unfolded]
                if postgres
                else EMPTY_VIEWS[folded.unfolded].format(columns=folded.columns)
            )
            cursor.execute(f"CREATE VIEW {folded.unfolded} AS {definition}")


def tails_again(apps, schema_editor):
    """Back to the tails: the events after the watermark folded first."""
    connection = schema_editor.connection
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            rollup_lock(shared=False)
            fold_through(committed_bound())
        for folded in reversed(TAILS):
            cursor.execute(f"DROP VIEW {folded.unfolded}")
    import_module("billing.migrations.0015_rollup_tail").create(apps, schema_editor)
    import_module("billing.migrations.0016_rollup_tail_vacuum").tune(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0017_daily_rollups"),
        ("customers", "0006_tax_rates"),
    ]

    operations = [
        migrations.CreateModel(
            name="UsageFoldWatermark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("folded_through", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="usageevent",
            name="contributions",
            field=models.TextField(null=True),
        ),
        migrations.AddIndex(
            model_name="usageevent",
            index=models.Index(fields=["customer", "id"], name="usage_event_cust_id"),
        ),
        migrations.AddIndex(
            model_name="usageevent",
            index=models.Index(fields=["id"], name="usage_event_id"),
        ),
        migrations.RunPython(fold_the_tails, tails_again),
    ]

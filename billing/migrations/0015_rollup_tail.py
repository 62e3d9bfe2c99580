"""The rollup tails (billing.usage.folding): a batch's hourly aggregates, and those
per group, until a fold adds them to billing_usagerollup and
billing_usagepropertyrollup. No primary key and one index: queues that ingestion
only appends to and the fold empties. Raw SQL, as no model reads them."""

from django.db import migrations

KEY = """
    customer_id bigint NOT NULL,
    meter_id bigint NOT NULL,
    hour {timestamp} NOT NULL,
"""
GROUP = """
    position smallint NOT NULL,
    group_value varchar(512) NOT NULL,
"""
AGGREGATES = """
    event_count bigint NOT NULL,
    value_sum numeric(38, 10) NOT NULL,
    value_max numeric(38, 10),
    latest_at {timestamp},
    latest_event_id varchar(255) NOT NULL,
    latest_value numeric(38, 10)
"""

TABLES = {
    "billing_usagerolluptail": KEY + AGGREGATES,
    "billing_usagepropertyrolluptail": KEY + GROUP + AGGREGATES,
}


def create(apps, schema_editor):
    timestamp = "timestamptz" if schema_editor.connection.vendor == "postgresql" else "datetime"
    for table, columns in TABLES.items():
        schema_editor.execute(f"CREATE TABLE {table} ({columns.format(timestamp=timestamp)})")
        schema_editor.execute(f"CREATE INDEX {table}_customer ON {table} (customer_id)")


def drop(apps, schema_editor):
    for table in TABLES:
        schema_editor.execute(f"DROP TABLE {table}")


class Migration(migrations.Migration):
    dependencies = [("billing", "0014_breakdowns")]

    operations = [migrations.RunPython(create, drop)]

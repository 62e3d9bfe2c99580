"""The rollup tails are queues: every row is deleted within seconds of its insert.
PostgreSQL's default autovacuum waits for a fifth of a table to be dead, which a
queue never stays at, so dead index entries pile up and every read of the tail
steps over them. Vacuum them after a few thousand dead rows instead."""

from django.db import migrations

TAILS = ("billing_usagerolluptail", "billing_usagepropertyrolluptail")


def tune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TAILS:
        schema_editor.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_scale_factor = 0, "
            "autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_threshold = 5000, "
            "autovacuum_vacuum_insert_scale_factor = 0)"
        )


def untune(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TAILS:
        schema_editor.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_scale_factor, "
            "autovacuum_vacuum_threshold, autovacuum_vacuum_insert_threshold, "
            "autovacuum_vacuum_insert_scale_factor)"
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0015_rollup_tail")]

    operations = [migrations.RunPython(tune, untune)]

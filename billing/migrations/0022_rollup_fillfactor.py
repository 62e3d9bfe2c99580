"""Room on each page of the rollups for the fold's updates (billing.usage.folding):
a fold rewrites a rollup row every time it adds events to it, and a new version
that fits on the row's page, with no indexed column changed, is a heap-only tuple
(HOT): no index entry is written for it and the old version is pruned on the page.
With full pages (fillfactor 100) most versions went to another page and wrote an
entry in every index of the table. Applies to pages written from now on; the
tables are not rewritten. PostgreSQL only (SQLite writes its rollups at
ingestion, in place)."""

from django.db import migrations

ROLLUPS = ("billing_usagerollup", "billing_usagedailyrollup", "billing_usagepropertyrollup")
FILLFACTOR = 50


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ROLLUPS:
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in ROLLUPS:
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0021_fold_bound_taken_at"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]

"""The views of the events not folded yet (billing.usage.folding) are written from
the same contribution rows as the fold (CONTRIBUTION_ROWS, AS_ROLLUP_ROW): the
same rows as before, in the same columns. PostgreSQL only: SQLite's views are
empty. Both directions create the definitions of the code that runs them, as
migration 0020 does."""

from importlib import import_module

from django.db import migrations

views_again = import_module("billing.migrations.0020_unfolded_views_jsonb").views_again


class Migration(migrations.Migration):
    dependencies = [("billing", "0022_rollup_fillfactor")]

    operations = [migrations.RunPython(views_again, views_again)]

"""The day up to which the daily group rollups are whole (billing.usage.folding):
from here on a fold adds to them only for the days before it, and rolls each day
up from the hourly group rows once it has passed. Null until the first fold of the
new code, which sets it to its day: the code before this one wrote every day's rows
with every fold. Processes of that code still folding during an upgrade keep adding
to the current day's rows, which the roll replaces; their reads (which take every
whole day from the daily rows) miss a day's events between its end and the first
fold after it (a second, with the folder service)."""

from django.db import migrations, models


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
    ]

"""Indexes (customer, hour) and (customer, day) on the hourly and daily rollups: a
read of every meter of a customer over a few hours walked all its rollup rows by
the key, which is led by the meter."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0018_fold_from_events"),
        ("customers", "0006_tax_rates"),
        ("plans", "0012_tier_and_grant_history_backfill"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="usagedailyrollup",
            index=models.Index(fields=["customer", "day"], name="usage_daily_cust_day"),
        ),
        migrations.AddIndex(
            model_name="usagerollup",
            index=models.Index(fields=["customer", "hour"], name="usage_rollup_cust_hour"),
        ),
    ]

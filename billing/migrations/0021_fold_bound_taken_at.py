"""When a fold last took its bound (billing.usage.folding): the folds after batches
run at most every BILLING_FOLD_MS across all processes, not in each."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0020_unfolded_views_jsonb"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagefoldwatermark",
            name="bound_taken_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]

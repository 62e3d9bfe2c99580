from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0013_commit_blocks_data"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="commitaccess",
            name="commit",
        ),
        migrations.RemoveField(
            model_name="commitaccess",
            name="rolled_from",
        ),
        migrations.RemoveField(
            model_name="commitentry",
            name="access",
        ),
        migrations.AlterField(
            model_name="commitentry",
            name="kind",
            field=models.CharField(
                choices=[("counted", "Usage counted"), ("true_up", "True-up")],
                max_length=8,
                verbose_name="kind",
            ),
        ),
        migrations.RemoveIndex(model_name="commitentry", name="commit_entry_kind_time"),
        migrations.DeleteModel(
            name="CommitAccess",
        ),
    ]

"""The `finance:read` scope (margins, cost rates, the journal), which `read` no
longer includes, and `admin` no longer implying the other scopes.

A key that holds every scope of before (events:write, read and admin: what
`create_api_key` and the admin's form give by default) was made to do everything,
so it keeps reading finance data: it gains `finance:read`. Any other key keeps the
scopes it lists, now meaning what API.md says of them: a `read` key reads no finance
data, an `admin` key alone neither reads nor ingests (docs/running.md, "API keys")."""

from django.db import migrations, models

EVERY_SCOPE_BEFORE = {"events:write", "read", "admin"}


def grant_finance_read(apps, schema_editor):
    ApiKey = apps.get_model("customers", "ApiKey")
    for key in ApiKey.objects.only("pk", "scopes"):
        scopes = list(key.scopes or [])
        if set(scopes) >= EVERY_SCOPE_BEFORE and "finance:read" not in scopes:
            key.scopes = [*scopes, "finance:read"]
            key.save(update_fields=["scopes"])


def take_back_finance_read(apps, schema_editor):
    ApiKey = apps.get_model("customers", "ApiKey")
    for key in ApiKey.objects.only("pk", "scopes"):
        if "finance:read" in (key.scopes or []):
            key.scopes = [s for s in key.scopes if s != "finance:read"]
            key.save(update_fields=["scopes"])


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0014_sender_email_help"),
    ]

    operations = [
        migrations.AlterField(
            model_name="apikey",
            name="scopes",
            field=models.JSONField(
                default=list,
                help_text="Subset of events:write, read, finance:read, admin.",
                verbose_name="scopes",
            ),
        ),
        migrations.AlterField(
            model_name="historicalapikey",
            name="scopes",
            field=models.JSONField(
                default=list,
                help_text="Subset of events:write, read, finance:read, admin.",
                verbose_name="scopes",
            ),
        ),
        migrations.RunPython(grant_finance_read, take_back_finance_read),
    ]

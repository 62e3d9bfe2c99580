"""Customer.limits: the column's default becomes the empty JSON object, and every row
that holds anything else becomes it.

0018 added the column with `db_default=Value("{}")`, which the database stored as the
JSON *string* "{}" (PostgreSQL: DEFAULT '"{}"'::jsonb): each customer that existed
before 0018 (and each of its history rows) got that string, and reading its limits
failed (issue 90). An object is what every writer stores (customers.limits), so a row
holding a string, a number, an array, JSON null or, on SQLite, text that is no JSON at
all was never set by a customer: it means "no limits". One UPDATE a table."""

from django.db import migrations, models

TABLES = ("customers_customer", "customers_historicalcustomer")
NOT_AN_OBJECT = {
    "postgresql": "jsonb_typeof(limits) IS DISTINCT FROM 'object'",
    "sqlite": "CASE WHEN json_valid(limits) THEN json_type(limits) <> 'object' ELSE 1 END",
}


def limits_objects(apps, schema_editor):
    connection = schema_editor.connection
    condition = NOT_AN_OBJECT.get(connection.vendor)
    if condition is None:
        # Another database: what the ORM reads back as anything but a dict.
        for name in ("Customer", "HistoricalCustomer"):
            model = apps.get_model("customers", name)
            stale = [
                pk
                for pk, limits in model.objects.values_list("pk", "limits").iterator()
                if not isinstance(limits, dict)
            ]
            model.objects.filter(pk__in=stale).update(limits={})
        return
    empty = "'{}'::jsonb" if connection.vendor == "postgresql" else "'{}'"
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"UPDATE {table} SET limits = {empty} WHERE {condition}")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0021_vat_checks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="customer",
            name="limits",
            field=models.JSONField(
                blank=True,
                db_default=models.Value({}, output_field=models.JSONField()),
                default=dict,
                editable=False,
                verbose_name="limits set by the customer",
            ),
        ),
        migrations.AlterField(
            model_name="historicalcustomer",
            name="limits",
            field=models.JSONField(
                blank=True,
                db_default=models.Value({}, output_field=models.JSONField()),
                default=dict,
                editable=False,
                verbose_name="limits set by the customer",
            ),
        ),
        migrations.RunPython(limits_objects, migrations.RunPython.noop, elidable=False),
    ]

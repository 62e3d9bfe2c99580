from django.db import migrations, models


def one_default_per_country(apps, schema_editor):
    """Before the constraint: where an earlier release left two or more active
    default rates for one country (or without a country), every customer they
    were charged to keeps exactly the rates it was charged (they become its own),
    and only the first by code stays the default. Nobody's tax changes; a new
    customer gets the one default."""
    TaxRate = apps.get_model("plans", "TaxRate")
    Customer = apps.get_model("customers", "Customer")
    defaults = list(TaxRate.objects.filter(is_default=True, active=True).order_by("code"))
    by_country: dict[str, list] = {}
    for rate in defaults:
        by_country.setdefault(rate.country or "", []).append(rate)
    stacked = {country: rates for country, rates in by_country.items() if len(rates) > 1}
    if not stacked:
        return
    # Charged the defaults: those with no active rate of their own (an archived
    # one of theirs charges nothing, plans.taxes.customer_tax_rates).
    without_own = Customer.objects.exclude(tax_rates__active=True)
    for customer in without_own.iterator():
        country = (
            (customer.address or {}).get("country") if isinstance(customer.address, dict) else ""
        )
        country = country or ""
        if "" not in stacked and country not in stacked:
            continue
        charged = [rate for rate in defaults if (rate.country or "") in ("", country)]
        customer.tax_rates.add(*charged)
    for rates in stacked.values():
        TaxRate.objects.filter(pk__in=[rate.pk for rate in rates[1:]]).update(is_default=False)


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0025_e_invoice_fields"),
        ("customers", "0022_customer_limits_object"),
    ]

    operations = [
        migrations.RunPython(one_default_per_country, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="taxrate",
            constraint=models.UniqueConstraint(
                condition=models.Q(("active", True), ("is_default", True)),
                fields=("country",),
                name="tax_rate_one_default_per_country",
            ),
        ),
    ]

"""Invoice lines carry a prorated fee's share of its period (LineInput.share),
which the writer prints as days. Lines written before it get the share the
writer read back from their quantity until now, with that reading kept here as
it was (a line's seats and whole period: a month, a quarter or a year ending
where the line does), so every line prints as it did."""

from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import migrations, models

from common.periods import add_months_clamped, period_share

PRORATED_KINDS = ("base_fee", "seats", "proration_credit", "proration_charge")
BATCH = 2000


def _zone(snapshot) -> ZoneInfo:
    name = (snapshot or {}).get("timezone")
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _read_share(kind: str, value: Decimal, start, end, zone: ZoneInfo) -> Decimal | None:
    """The share the writer read out of a line's quantity before lines said it."""
    if not (start and end and end > start and value > 0):
        return None
    if value != value.to_integral_value():
        local_end = end.astimezone(zone)
        for months in (1, 3, 12):
            whole_start = add_months_clamped(local_end, -months, day=local_end.day)
            if whole_start > start.astimezone(zone):
                continue
            share = period_share(start, end, whole=(whole_start, end))
            if not 0 < share < 1:
                continue
            seats = value / share
            if seats >= 1 and abs(seats - seats.to_integral_value()) < Decimal("0.0001"):
                if kind == "seats" or seats.to_integral_value() > 1:
                    return share
                break
    return value if value < 1 else None


def shares_fill(apps, schema_editor):
    InvoiceLine = apps.get_model("invoices", "InvoiceLine")
    lines = (
        InvoiceLine.objects.filter(kind__in=PRORATED_KINDS, share__isnull=True)
        .exclude(period_start=None)
        .exclude(period_end=None)
        .select_related("invoice")
        .order_by("pk")
    )
    done = 0
    while True:
        batch = list(lines.filter(pk__gt=done)[:BATCH])
        if not batch:
            return
        changed = []
        for line in batch:
            zone = _zone(line.invoice.customer_snapshot)
            share = _read_share(line.kind, line.quantity, line.period_start, line.period_end, zone)
            if share is not None:
                line.share = share
                changed.append(line)
        InvoiceLine.objects.bulk_update(changed, ["share"])
        done = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0027_pdf_render_claims"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoiceline",
            name="share",
            field=models.DecimalField(
                blank=True, decimal_places=10, max_digits=28, null=True, verbose_name="share"
            ),
        ),
        migrations.RunPython(shares_fill, migrations.RunPython.noop, elidable=True),
    ]

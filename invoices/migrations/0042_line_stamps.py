"""Invoice lines carry what they earned, stamped when written (invoices.services.
invoice_write_draft): the plan version that priced them, their share of their
invoice's discount, and for a line taking off a threshold invoice, that invoice.
Lines written before are filled from what the readers reconstructed until now,
so an upgraded database reads the same figures:

- the version: of the plan the line names (InvoiceLine.plan, filled by 0029),
  the one its subscription (a correction's: the corrected invoice's) was on at
  the line's start (a credit for unused time: just before it; a line without a
  service period: just before its invoice's period end), from the parts it
  billed (billing.BilledPeriod) and its history (billing.SubscriptionChange),
  else the last version of that plan it was on, else its version now; none for
  a line naming no plan or one no version of it can be found for;
- the share of the discount: as earned revenue split it (invoices.totals.
  discount_shares, the rule it read through);
- the invoice taken off: as the journal found it, the threshold invoice (not
  void) of the subscription whose part starts at the line's start, written at
  its end, for what the line takes off."""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models
from django.db.models.functions import Coalesce

from common.money import quantize_money
from invoices.totals import discount_shares

# Subscriptions (or invoices) read at a time.
CHUNK = 500
# Lines updated a statement.
BATCH = 2000


def _version_at(timeline: list[tuple], now: tuple, plan: str, moment, *, before: bool):
    """The version of `plan` the subscription was on at `moment` (just before it
    when `before`; its version now for no moment): `timeline` is its versions
    [(from, version id, plan code)] in order, `now` its (version id, plan code)."""
    if moment is not None:
        on = [
            event for event in timeline if event[0] < moment or (event[0] == moment and not before)
        ]
        if on and on[-1][2] == plan:
            return on[-1][1]
        # Its history is partial there: its nearest version of that plan.
        nearest = [e for e in reversed(on) if e[2] == plan] + [
            e for e in timeline[len(on) :] if e[2] == plan
        ]
        if nearest:
            return nearest[0][1]
    return now[0] if now[1] == plan else None


def _timelines(apps, subscription_ids: list[int]) -> dict[int, tuple[list[tuple], tuple]]:
    """Each subscription's versions in order, from the parts it billed and its
    history, and its version now."""
    BilledPeriod = apps.get_model("billing", "BilledPeriod")
    SubscriptionChange = apps.get_model("billing", "SubscriptionChange")
    Subscription = apps.get_model("billing", "Subscription")
    events: dict[int, list[tuple]] = {pk: [] for pk in subscription_ids}
    for pk, since, version_id, code in BilledPeriod.objects.filter(
        subscription_id__in=subscription_ids
    ).values_list("subscription_id", "usage_from", "version_id", "version__plan__code"):
        events[pk].append((since, version_id, code))
    for pk, since, version_id, code in (
        SubscriptionChange.objects.filter(
            subscription_id__in=subscription_ids, to_version__isnull=False
        )
        .exclude(kind="seats")
        .values_list("subscription_id", "effective_at", "to_version_id", "to_version__plan__code")
    ):
        events[pk].append((since, version_id, code))
    now = Subscription.objects.filter(pk__in=subscription_ids).values_list(
        "pk", "version_id", "version__plan__code"
    )
    return {
        pk: (sorted(events[pk], key=lambda event: event[0]), (version_id, code))
        for pk, version_id, code in now
    }


def _plan_versions_fill(apps) -> None:
    InvoiceLine = apps.get_model("invoices", "InvoiceLine")
    Invoice = apps.get_model("invoices", "Invoice")
    empty = InvoiceLine.objects.filter(plan_version__isnull=True).exclude(plan="")
    invoices = (
        Invoice.objects.filter(pk__in=empty.values("invoice_id"))
        .annotate(owner=Coalesce("subscription_id", "corrects__subscription_id"))
        .exclude(owner=None)
        .values_list("pk", "owner", "period_end")
        .order_by("owner", "pk")
    )
    found = list(invoices)
    for at in range(0, len(found), CHUNK):
        chunk = found[at : at + CHUNK]
        owners = {pk: (owner, period_end) for pk, owner, period_end in chunk}
        timelines = _timelines(apps, sorted({owner for owner, _end in owners.values()}))
        stamps: dict[int, list[int]] = {}
        for pk, invoice_id, kind, plan, start in empty.filter(invoice_id__in=owners).values_list(
            "pk", "invoice_id", "kind", "plan", "period_start"
        ):
            owner, period_end = owners[invoice_id]
            timeline, now = timelines[owner]
            moment = period_end if start is None else start
            # A credit for unused time (and a line of no period) is of the version left.
            before = start is None or kind == "proration_credit"
            version_id = _version_at(timeline, now, plan, moment, before=before)
            if version_id is not None:
                stamps.setdefault(version_id, []).append(pk)
        for version_id, ids in stamps.items():
            for first in range(0, len(ids), BATCH):
                InvoiceLine.objects.filter(pk__in=ids[first : first + BATCH]).update(
                    plan_version_id=version_id
                )


def _discount_shares_fill(apps) -> None:
    InvoiceLine = apps.get_model("invoices", "InvoiceLine")
    Invoice = apps.get_model("invoices", "Invoice")
    discounted = list(
        Invoice.objects.exclude(discount=0).order_by("pk").values_list("pk", "currency")
    )
    for at in range(0, len(discounted), CHUNK):
        currencies = dict(discounted[at : at + CHUNK])
        by_invoice: dict[int, list[tuple]] = {}
        for pk, invoice_id, kind, amount in (
            InvoiceLine.objects.filter(invoice_id__in=currencies)
            .order_by("invoice_id", "position")
            .values_list("pk", "invoice_id", "kind", "amount")
        ):
            by_invoice.setdefault(invoice_id, []).append((pk, kind, amount))
        changed = []
        for invoice_id, lines in by_invoice.items():
            currency = currencies[invoice_id]
            amounts = [quantize_money(amount, currency) for _pk, _kind, amount in lines]
            shares = discount_shares([kind for _pk, kind, _a in lines], amounts, currency=currency)
            changed += [
                InvoiceLine(pk=pk, discount_share=share)
                for (pk, _kind, _amount), share in zip(lines, shares, strict=True)
                if share
            ]
        InvoiceLine.objects.bulk_update(changed, ["discount_share"], batch_size=BATCH)


def _taken_off_fill(apps) -> None:
    InvoiceLine = apps.get_model("invoices", "InvoiceLine")
    ThresholdBilling = apps.get_model("billing", "ThresholdBilling")
    lines = InvoiceLine.objects.filter(
        kind="usage_invoiced", takes_off__isnull=True, invoice__subscription__isnull=False
    ).values_list("pk", "invoice__subscription_id", "period_start", "period_end", "amount")
    changed = []
    for pk, subscription_id, start, end, amount in lines.iterator():
        record = (
            ThresholdBilling.objects.filter(
                subscription_id=subscription_id, usage_from=start, created_at=end
            )
            .exclude(invoice__status="void")
            .values_list("invoice_id", "amount")
            .first()
        )
        if record is not None and record[1] == -amount:
            changed.append(InvoiceLine(pk=pk, takes_off_id=record[0]))
    InvoiceLine.objects.bulk_update(changed, ["takes_off"], batch_size=BATCH)


def line_stamps_fill(apps, schema_editor) -> None:
    _plan_versions_fill(apps)
    _discount_shares_fill(apps)
    _taken_off_fill(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0041_invoice_corrections"),
        ("plans", "0026_tax_rate_one_default_per_country"),
        ("billing", "0044_refused_record_words"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoiceline",
            name="discount_share",
            field=models.DecimalField(
                db_default=Decimal("0"),
                decimal_places=10,
                default=Decimal("0"),
                max_digits=28,
                verbose_name="share of the discount",
            ),
        ),
        migrations.AddField(
            model_name="invoiceline",
            name="plan_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="plans.planversion",
                verbose_name="plan version",
            ),
        ),
        migrations.AddField(
            model_name="invoiceline",
            name="takes_off",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="taken_off_by",
                to="invoices.invoice",
                verbose_name="takes off",
            ),
        ),
        migrations.RunPython(line_stamps_fill, migrations.RunPython.noop, elidable=True),
    ]

"""Re-rating (API.md "Re-rating", SCENARIOS.md S38): the usage of a window priced
again from its stored events at today's mappings, each period at the prices in
effect for it, and corrected where it was billed otherwise.

One transaction does it all, and a dry run rolls it back: so the preview shows
the very figures applying would write, and nothing of it stays.
1. The rollup lock, exclusively (ingestion and folds wait until it ends, as for a
   meter's rebuild); applying, the customers, then their subscriptions, then
   their billed periods, in the close's order (billing.locks).
2. Each affected part of a period (one overlapping the window), as it stands: what
   a billed part billed (BilledPeriod.billed), what the open part under way bills
   so far (its usage statement).
3. The window's gateway calls named again at today's mapping and rate cards
   (billing.integrations.remapping): the events whose model changes are restated,
   and the rollups of their days rebuilt (billing.usage.restated_events).
4. Each part priced again: a billed part by the rule late usage bills by
   (billing.invoicing.period_lines.billed_period_rated_again: its version and
   overrides), the open part by its statement.
5. Applying: the open part simply reads the new figures (its close bills them). A
   billed part that billed too little gets an invoice for the difference (a
   correction, naming the invoice that billed the part, taxed as that invoice
   was) and one that billed too much a credit note on that invoice, each issued
   now through the usual finalization and credit-note services; its record then
   says what it bills now, so a second run finds no difference, and the next
   close's late usage does not bill it again.

With a meter, only that meter's events are named again, and only its charge
(with the minimum commitment it counts toward) is compared and corrected."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from billing.integrations.remapping import Renamed, gateway_models_rename
from billing.invoicing.period_lines import (
    RatedAgain,
    billed_period_rated_again,
    difference_lines,
    rated_again_record,
)
from billing.locks import billed_periods_lock, subscriptions_lock
from billing.models import BilledPeriod, Subscription, UsageEvent
from billing.usage.metering import meter_cache
from billing.usage.rollups import rollup_lock
from billing.usage.statement import COMMIT_BILLED, meter_names, usage_part
from common import customer_text
from common.errors import Conflict, InvalidRequest
from common.money import quantize_money
from common.vocabulary import LineKind
from customers.locks import customers_lock
from customers.models import Customer
from invoices.credit_notes import (
    CreditLineInput,
    charged_after_discount,
    credit_note_issue,
    credited_by_line,
    invoice_left_to_credit,
    line_left_to_credit,
)
from invoices.models import CreditNote, Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.models import Meter
from plans.overrides import subscription_spec

ZERO = Decimal(0)
# The longest window one re-rating takes: a year and a month's slack.
MAX_DAYS = 400
# The invoices that bill the usage of a part of a period ended by a change.
CHANGE_REASONS = (Invoice.PLAN_CHANGE, Invoice.CANCEL)


@dataclass
class RerateRow:
    """One part of a period re-rated: what it billed (or, open, bills so far) and
    what it bills now, of the charges compared; the invoice that billed it (None
    for the open part); and, applied, the document issued for the difference."""

    customer: Customer
    subscription: Subscription
    period_start: datetime
    period_end: datetime
    currency: str
    invoice: Invoice | None
    billed: Decimal
    rerated: Decimal = ZERO
    billed_period: BilledPeriod | None = None
    rated: RatedAgain | None = None
    issued: Invoice | CreditNote | None = None

    @property
    def difference(self) -> Decimal:
        return self.rerated - self.billed


@dataclass
class Rerating:
    """What a re-rating found (and, unless a dry run, did): a row per part of a
    period, and the gateway calls it named again."""

    dry_run: bool
    rows: list[RerateRow] = field(default_factory=list)
    renamed: Renamed = field(default_factory=lambda: Renamed(0, {}))

    def total_difference(self) -> dict[str, Decimal]:
        """The differences added up per currency (every currency of a row)."""
        totals: dict[str, Decimal] = {}
        for row in self.rows:
            totals[row.currency] = totals.get(row.currency, ZERO) + row.difference
        return totals


class _DryRun(Exception):
    """Raised to roll the dry run's transaction back, carrying what it found."""

    def __init__(self, rerating: Rerating):
        super().__init__("dry run")
        self.rerating = rerating


def rerate_window_check(start: datetime, end: datetime) -> None:
    """InvalidRequest for a window that is empty or longer than MAX_DAYS."""
    if start >= end:
        raise InvalidRequest("`from` must be before `to`", fields={"to": ["must be after from"]})
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidRequest(
            f"a window of at most {MAX_DAYS} days: re-rate a longer time in parts",
            fields={"to": [f"at most {MAX_DAYS} days after from"]},
        )


def usage_rerate(
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    customer: Customer | None = None,
    meter: Meter | None = None,
    dry_run: bool = True,
) -> Rerating:
    """Re-rate [start, end) (of one customer, one meter, when given) as the
    module says; `dry_run` changes nothing. Idempotent: applied twice, the second
    finds every difference 0.00 and issues nothing. A part that cannot be
    corrected (its invoice void; too much billed on an invoice with too little
    left to credit) raises Conflict, and nothing changes."""
    rerate_window_check(start, end)
    try:
        with transaction.atomic():
            rerating = _rerate(start, end, now, customer, meter, dry_run=dry_run)
            if dry_run:
                raise _DryRun(rerating)
    except _DryRun as done:
        return done.rerating
    return rerating


def _keys(meter: Meter | None) -> set[str] | None:
    """The records' keys compared: all (None), or the meter's and the true-up's."""
    return None if meter is None else {meter.code, LineKind.MINIMUM_COMMITMENT}


def _amount(billed: dict, keys: set[str] | None) -> Decimal:
    """What a record (BilledPeriod.billed's shape) bills of `keys`; what a part drew
    from a commit is left out (re-rating leaves it as billed)."""
    return sum(
        (
            Decimal(values["amount"])
            for key, values in billed.items()
            if key != COMMIT_BILLED and (keys is None or key in keys)
        ),
        ZERO,
    )


def _customers(start: datetime, end: datetime, customer: Customer | None, meter: Meter | None):
    """The customers whose usage the window holds (the one given)."""
    if customer is not None:
        return [customer]
    events = UsageEvent.objects.filter(timestamp__gte=start, timestamp__lt=end)
    if meter is not None:
        events = events.filter(event_name=meter.event_name)
    ids = events.values_list("customer_id", flat=True).distinct().order_by()
    return list(Customer.objects.filter(pk__in=ids).order_by("pk"))


def _rerate(start, end, now, customer, meter, *, dry_run: bool) -> Rerating:
    rollup_lock(shared=False)
    customers = _customers(start, end, customer, meter)
    ids = [c.pk for c in customers]
    if not dry_run:
        customers_lock(ids)
    found = Subscription.objects.filter(customer_id__in=ids).order_by("pk")
    subscriptions = (
        subscriptions_lock(list(found.values_list("pk", flat=True)))
        if not dry_run
        else list(found.select_related("customer", "version__plan"))
    )
    keys = _keys(meter)
    rows: list[RerateRow] = []
    for subscription in subscriptions:
        rows += _parts(subscription, start, end, now, meter, lock=not dry_run)
    renamed = gateway_models_rename(
        start=start,
        end=end,
        customer_ids=None if customer is None else ids,
        event_names=None if meter is None else [meter.event_name],
    )
    for row in rows:
        if row.billed_period is not None:
            row.rated = billed_period_rated_again(row.subscription, row.billed_period)
            row.rerated = quantize_money(_amount(row.rated.now, keys), row.currency)
        else:
            row.rerated = _open_part_amount(row, now, keys)
    if not dry_run:
        names = meter_names(m.code for m in meter_cache.by_id().values())
        for row in rows:
            if row.rated is not None:
                _correct(row, keys, names=names, now=now)
    rows.sort(key=lambda r: (r.customer.external_id, r.period_start, r.subscription.pk))
    return Rerating(dry_run, rows, renamed)


def _parts(subscription, start, end, now, meter, *, lock: bool) -> list[RerateRow]:
    """The subscription's parts of periods overlapping [start, end) (those whose
    terms charge `meter`, when given), each with what it billed (billed parts, with
    the invoice that billed them) or bills so far (the open part under way)."""
    keys = _keys(meter)
    customer = subscription.customer
    currency = customer.currency
    if lock:
        billed = billed_periods_lock(
            subscription=subscription, ended_after=start, ended_by=subscription.current_period_end
        )
    else:
        billed = BilledPeriod.objects.filter(
            subscription=subscription, period_end__gt=start
        ).select_related("version__plan")
    parts = []
    meter_code = None if meter is None else meter.code
    for record in sorted(billed, key=lambda r: r.usage_from):
        if record.usage_from >= end or record.usage_to <= start:
            continue
        if meter_code is not None and meter_code not in record.billed:
            continue
        parts.append(
            RerateRow(
                customer,
                subscription,
                record.usage_from,
                record.usage_to,
                currency,
                billed_part_invoice(record),
                quantize_money(_amount(record.billed, keys), currency),
                billed_period=record,
            )
        )
    if subscription.status in Subscription.LIVE:
        usage_from = subscription.usage_from or subscription.current_period_start
        open_end = subscription.current_period_end
        spec = subscription_spec(subscription)
        charged = meter_code is None or any(c.meter == meter_code for c in spec.charges)
        if usage_from < min(end, now) and open_end > start and charged:
            row = RerateRow(customer, subscription, usage_from, open_end, currency, None, ZERO)
            row.billed = _open_part_amount(row, now, keys)
            parts.append(row)
    return parts


def _open_part_amount(row: RerateRow, now: datetime, keys) -> Decimal:
    """What the open part under way bills so far, of `keys` (its usage statement)."""
    subscription = row.subscription
    part = usage_part(
        subscription,
        subscription_spec(subscription),
        start=subscription.current_period_start,
        end=subscription.current_period_end,
        usage_from=row.period_start,
        until=min(now, row.period_end),
    )
    return quantize_money(_amount(part.billed(), keys), row.currency)


def billed_part_invoice(record: BilledPeriod) -> Invoice | None:
    """The invoice that billed a part of a period's usage: the close's for a part
    that ended with its period, else the plan change's or cancel's that ended it
    (None when that change billed nothing)."""
    found = Invoice.objects.filter(subscription_id=record.subscription_id)
    if record.usage_to == record.period_end:
        found = found.filter(
            reason=Invoice.PERIOD, period_start=record.period_start, period_end=record.period_end
        )
    else:
        found = found.filter(
            reason__in=CHANGE_REASONS, period_start=record.usage_to, period_end=record.period_end
        )
    return found.order_by("pk").first()


def _correct(row: RerateRow, keys, *, names: dict[str, str], now: datetime) -> None:
    """Issue the document correcting a billed part (none when it bills what it
    billed), then record what it bills now."""
    invoice = row.invoice
    if row.difference:
        if invoice is not None and invoice.status == Invoice.VOID:
            raise Conflict(
                f"{row.customer.external_id}'s usage of {_span(row)} was billed by {invoice}, "
                "which is void: it is not corrected"
            )
        if invoice is not None and invoice.status == Invoice.DRAFT:
            # A correction is never numbered before what it corrects.
            invoice = row.invoice = invoice_finalize(invoice=invoice, now=now)
        if row.difference > 0:
            row.issued = _correction_invoice(row, keys, names=names, now=now)
        else:
            row.issued = _credit_note(row, keys, names=names, now=now)
    rated_again_record(row.rated, keys)


def _span(row: RerateRow) -> str:
    return f"{row.period_start:%Y-%m-%d}..{row.period_end:%Y-%m-%d}"


def _correction_invoice(row: RerateRow, keys, *, names, now: datetime) -> Invoice:
    """An invoice for what the part billed too little, issued now: a line per
    charge that bills otherwise now, at the part's prices, taxed as the invoice it
    corrects was (the customer's rates now when no invoice billed the part)."""
    customer = row.customer
    zone = customer_text.customer_zone(customer)
    with customer_text.speaking(customer.locale):
        lines = difference_lines(
            row.rated,
            words=_("Re-rated usage for {period}: {charge}"),
            names=names,
            zone=zone,
            keys=keys,
        )
    corrected = row.invoice
    rates = None
    if corrected is not None:
        rates = [line.tax_rate for line in corrected.tax_lines.select_related("tax_rate")]
    draft = invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.CORRECTION,
        period_start=row.period_start,
        period_end=row.period_end,
        lines=lines,
        now=now,
        tax_rates=rates,
        corrects=corrected,
    )
    return invoice_finalize(invoice=draft, now=now)


def _credit_note(row: RerateRow, keys, *, names, now: datetime) -> CreditNote:
    """A credit note for what the part billed too much, on the invoice that billed
    it: against its lines of each charge that bills less now (what the invoice
    charged of them, after its discount), up to the difference."""
    invoice = row.invoice
    if invoice is None:
        raise Conflict(
            f"{row.customer.external_id}'s usage of {_span(row)} bills less now, but no "
            "invoice billed it to credit"
        )
    left = charged_after_discount(invoice, -row.difference)
    credited = credited_by_line(invoice)
    room = invoice_left_to_credit(invoice, credited)
    zone = invoice.text.zone
    period = customer_text.period(
        row.billed_period.period_start, row.billed_period.period_end, zone
    )
    parts: list[CreditLineInput] = []
    invoice_lines = list(invoice.lines.order_by("position"))
    with invoice.text.speaking():
        words = _("Re-rated usage for {period}: {charge}")
        for key, delta, _units in row.rated.differences(keys):
            if delta >= 0:
                continue
            true_up = key == LineKind.MINIMUM_COMMITMENT
            wanted = min(left, charged_after_discount(invoice, -delta))
            what = _("minimum commitment adjustment") if true_up else names.get(key, key)
            for line in invoice_lines:
                of_key = line.kind == LineKind.MINIMUM_COMMITMENT if true_up else line.meter == key
                take = min(wanted, line_left_to_credit(invoice, line, credited), room)
                if not of_key or line.amount <= 0 or take <= 0:
                    continue
                parts.append(
                    CreditLineInput(line.pk, take, words.format(period=period, charge=what))
                )
                wanted, left, room = wanted - take, left - take, room - take
        memo = _("Usage of {period} re-rated").format(period=period)
    if left > 0:
        raise Conflict(
            f"{invoice} has too little left to credit on its lines for "
            f"{row.customer.external_id}'s usage of {_span(row)}: {left} of the "
            f"{-row.difference} billed too much finds no line"
        )
    return credit_note_issue(
        invoice=invoice, lines=parts, reason=CreditNote.OTHER, memo=memo, now=now
    )


def invoice_billed_part(invoice: Invoice) -> BilledPeriod | None:
    """The part of a period whose usage `invoice` billed (billed_part_invoice's
    other way): a close's, or a plan change's or cancel's; None for any other."""
    found = BilledPeriod.objects.filter(
        subscription_id=invoice.subscription_id, period_end=invoice.period_end
    )
    if invoice.subscription_id is None:
        return None
    if invoice.reason == Invoice.PERIOD:
        found = found.filter(period_start=invoice.period_start, usage_to=invoice.period_end)
    elif invoice.reason in CHANGE_REASONS:
        found = found.filter(usage_to=invoice.period_start)
    else:
        return None
    return found.first()


def invoice_rerate(*, invoice: Invoice, now: datetime, dry_run: bool = True) -> RerateRow | None:
    """Re-rate the part of a period `invoice` billed (usage_rerate over that part,
    of its customer): its row, or None when the invoice billed no part's usage."""
    record = invoice_billed_part(invoice)
    if record is None:
        return None
    rerating = usage_rerate(
        start=record.usage_from,
        end=record.usage_to,
        now=now,
        customer=invoice.customer,
        dry_run=dry_run,
    )
    return next(
        (row for row in rerating.rows if row.billed_period and row.billed_period.pk == record.pk),
        None,
    )

"""What a period has billed for its usage already, part by part: the parts
before an immediate plan change (BilledPeriod, on the plan-change invoice) and
the threshold invoices of the part under way (ThresholdBilling). The usage
reads subtract them, and the invoice that closes a part deducts its threshold
invoices. And which of what a period billed is on drafts, written but not
issued yet (DraftBilled): the customer reads it as upcoming, not invoiced."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.models import BilledPeriod, Subscription, ThresholdBilling
from common import rawsql
from common.vocabulary import LineKind
from invoices.models import Invoice, InvoiceLine
from plans.rating import LineInput

ZERO = Decimal(0)
ONE = Decimal(1)


def earlier_parts(
    *, subscription: Subscription, start: datetime, end: datetime, usage_from: datetime
) -> list[BilledPeriod]:
    """The parts of the period [start, end) billed before `usage_from` (an
    immediate plan change), each at its version."""
    if usage_from <= start:
        return []
    return list(
        BilledPeriod.objects.filter(
            subscription=subscription, period_start=start, period_end=end, usage_to__lte=usage_from
        ).select_related("version__plan")
    )


def overrides_billed(subscription: Subscription, *, period_start: datetime, version) -> dict:
    """The deal (overrides) a period of the subscription on `version` was billed
    on: as its close recorded it, else (a period not closed yet) the current one
    while the version is the current one."""
    recorded = (
        BilledPeriod.objects.filter(
            subscription=subscription, period_start=period_start, version=version
        )
        .order_by("-usage_to")
        .values_list("overrides", flat=True)
        .first()
    )
    if recorded is not None:
        return recorded
    return subscription.overrides if version.pk == subscription.version_id else {}


@dataclass(frozen=True)
class ThresholdBilled:
    """The threshold invoices of one part of a period that stand (not void),
    oldest first, and what they billed between them: in all, and by meter code."""

    records: list[ThresholdBilling] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((record.amount for record in self.records), ZERO)

    def lines(self) -> list[LineInput]:
        """One line per threshold invoice, taking off the usage it billed: the
        invoice after them rates the part's whole usage (its tiers go on where
        they were) and bills the rest. Each names the invoice it takes off."""
        return [
            LineInput(
                LineKind.USAGE_INVOICED,
                _("Usage invoiced on {number}").format(number=record.invoice.number),
                None,
                ONE,
                -record.amount,
                -record.amount,
                record.usage_from,
                record.created_at,
                takes_off=record.invoice_id,
            )
            for record in self.records
        ]

    @property
    def by_meter(self) -> dict[str, Decimal]:
        billed: dict[str, Decimal] = {}
        for record in self.records:
            for meter, amount in record.billed.items():
                billed[meter] = billed.get(meter, ZERO) + Decimal(amount)
        return billed


_THRESHOLD_BILLED = (
    "SELECT t.id FROM billing_thresholdbilling t "
    "JOIN invoices_invoice i ON i.id = t.invoice_id "
    "WHERE t.subscription_id = %s AND t.period_start = %s AND t.usage_from = %s "
    "AND i.status <> %s"
)


def threshold_billed(
    *, subscription: Subscription, period_start: datetime, usage_from: datetime
) -> ThresholdBilled:
    """What the threshold invoices of the part of the period that starts at
    `usage_from` have billed. A voided one bills nothing: its usage is billed
    again by the next threshold invoice or the close. Found by fixed SQL (most
    parts have none: the close asks for every period)."""
    found = rawsql.ids(
        _THRESHOLD_BILLED, [subscription.pk, period_start, usage_from, Invoice.VOID], ahead=True
    )
    if not found:
        return ThresholdBilled([])
    return ThresholdBilled(
        list(ThresholdBilling.objects.filter(pk__in=found).select_related("invoice").order_by("id"))
    )


def threshold_billed_none(parts: list[tuple[int, datetime, datetime]]) -> dict:
    """Of these period parts (subscription id, period start, usage from), the
    threshold_billed reads known to find nothing, as rawsql.answered takes them:
    those of subscriptions with no threshold billing at all (one statement for
    all; what a close group reads once)."""
    asked = [(pk, [pk, start, usage_from, Invoice.VOID]) for pk, start, usage_from in parts]
    table = ThresholdBilling._meta.db_table
    return rawsql.answers_where_none(_THRESHOLD_BILLED, table, "subscription_id", asked)


@dataclass(frozen=True)
class DraftBilled:
    """The drafts (written, not finalized yet: the grace before an invoice is
    issued) that bill part of a period, oldest first, each with what its lines
    for the period bill before tax: its fixed fees in advance, a plan change's
    usage and prorations."""

    drafts: tuple[tuple[Invoice, Decimal], ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.drafts), ZERO)


# The amounts of a subscription's draft lines dated within a period, in the ORM's
# order of lines (their model's). Written out: every /usage and statement reads it
# (usually no row), read ahead with the request's other statements (rawsql).
_DRAFT_LINES = (
    "SELECT l.invoice_id, l.amount FROM invoices_invoiceline l "
    "JOIN invoices_invoice i ON i.id = l.invoice_id "
    "WHERE i.subscription_id = %s AND i.status = %s AND l.period_start >= %s "
    "AND l.period_end <= %s ORDER BY i.id DESC, l.position"
)
_DRAFT_LINE_FIELDS = (None, InvoiceLine._meta.get_field("amount"))


def drafts_billed(*, subscription: Subscription, start: datetime, end: datetime) -> DraftBilled:
    """The subscription's drafts billing the period [start, end): their lines
    dated within it (a closing draft's next-period fees are; its own period's
    usage is not), summed per draft."""
    lines = rawsql.rows(
        _DRAFT_LINES,
        [subscription.pk, Invoice.DRAFT, start, end],
        _DRAFT_LINE_FIELDS,
        ahead=True,
    )
    by_invoice: dict[int, Decimal] = {}
    for invoice_id, amount in lines:
        by_invoice[invoice_id] = by_invoice.get(invoice_id, ZERO) + amount
    if not by_invoice:
        return DraftBilled()
    invoices = Invoice.objects.filter(pk__in=by_invoice).order_by("id")
    return DraftBilled(tuple((invoice, by_invoice[invoice.pk]) for invoice in invoices))


# The discount shares stamped on the lines that bill a period (the invoice closing
# it is not written while the period is current: billing.usage.statement computes
# its shares alike until then). Written out: every spend read asks it (usually no
# row).
_DISCOUNT_TAKEN = (
    "SELECT l.discount_share FROM invoices_invoiceline l "
    "JOIN invoices_invoice i ON i.id = l.invoice_id "
    "WHERE i.subscription_id = %s AND i.status <> %s AND l.discount_share <> 0 "
    "AND l.period_start >= %s AND l.period_end <= %s"
)
_DISCOUNT_TAKEN_FIELDS = (InvoiceLine._meta.get_field("discount_share"),)


def discount_taken(*, subscription: Subscription, start: datetime, end: datetime) -> Decimal:
    """What the discounts of invoices written already took off the lines billing
    the period [start, end) (their stamped shares, InvoiceLine.discount_share):
    its fees billed in advance on the invoice closing the period before, and once
    it is closed its own closing invoice's. Not a void one."""
    found = rawsql.rows(
        _DISCOUNT_TAKEN,
        [subscription.pk, Invoice.VOID, start, end],
        _DISCOUNT_TAKEN_FIELDS,
        ahead=True,
    )
    return sum((share for (share,) in found), ZERO)

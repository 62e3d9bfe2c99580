"""A period's draft whose e-invoice was refused, discarded so that the next close
bills the period again (billing.invoicing.close): the draft is deleted (never a
numbered document), its period's usage record with it, and its subscription
goes back to that period, as it was before the close that wrote it. Its unique
key (subscription, reason, period) is then free for the close to write it again.

Only what can be put back exactly is discarded: the last invoice of a live
subscription that the close wrote for its period, when that close changed
nothing else than the period (no plan change or new overrides applied at its
end, no trial ended, no running discount counted, no commit drawn, no late
usage of earlier periods billed on it). Anything else is refused (409): rebuild
the draft instead (invoices.refused_drafts), which keeps it and fixes its tax
and buyer."""

from django.db import transaction
from django.db.models import ProtectedError, Q

from billing.billed_models import BilledPeriod
from billing.locks import subscription_lock
from billing.models import Discount, Subscription
from common import rawsql
from common.errors import Conflict, NotFound
from common.vocabulary import LineKind
from invoices.locks import invoice_lock
from invoices.models import Invoice
from invoices.refused_drafts import refused_draft_check

REBUILD_INSTEAD = "rebuild it instead"


def invoice_discard(*, invoice_id: int) -> None:
    """Delete a refused period draft and put its subscription back on its period
    (see the module); Conflict (409) saying why when it cannot be, and nothing
    changes. Locks the subscription, then the draft, as the close takes them.
    Nothing is dated: the subscription goes back as it was."""
    found = Invoice.objects.filter(pk=invoice_id).values_list("subscription_id", flat=True)
    if not found:
        raise NotFound(f"no invoice {invoice_id}")
    subscription_id = found[0]
    if subscription_id is None:
        raise Conflict(f"invoice {invoice_id} bills no subscription period: {REBUILD_INSTEAD}")
    with transaction.atomic():
        subscription = subscription_lock(subscription_id)
        invoice = invoice_lock(invoice_id)
        refused_draft_check(invoice)
        billed = _discardable(invoice, subscription)
        billed.delete()
        try:
            with transaction.atomic():
                invoice.delete()
        except ProtectedError as held:
            raise Conflict(
                f"invoice {invoice} is named by other records: {REBUILD_INSTEAD}"
            ) from held
        subscription.current_period_start = billed.period_start
        subscription.current_period_end = billed.period_end
        subscription.usage_from = (
            billed.usage_from if billed.usage_from != billed.period_start else None
        )
        # Fixed SQL with save()'s signals, as the close writes it (its audit row).
        rawsql.update(subscription, ("current_period_start", "current_period_end", "usage_from"))


def _discardable(invoice: Invoice, subscription: Subscription) -> BilledPeriod:
    """The usage record of the period the draft billed, when discarding it puts
    the subscription back exactly; else Conflict naming why."""

    def refuse(why: str):
        return Conflict(f"invoice {invoice} cannot be discarded: {why}; {REBUILD_INSTEAD}")

    if invoice.reason != Invoice.PERIOD:
        raise refuse(f"it is a {invoice.reason} invoice: the close writes only period invoices")
    if subscription.status != Subscription.ACTIVE:
        raise refuse(f"its subscription is {subscription.status}")
    later = Invoice.objects.filter(subscription_id=subscription.pk, pk__gt=invoice.pk)
    if subscription.current_period_start != invoice.period_end or later.exists():
        raise refuse("its subscription was billed after it")
    if subscription.trial_end is not None and subscription.trial_end >= invoice.period_end:
        raise refuse("the close that wrote it ended a trial")
    # The close counts a period of a running discount whether or not it took
    # anything off (billing.invoicing.discounts): billing the period again would
    # count it twice, or end the discount early.
    counted = Discount.objects.filter(subscription_id=subscription.pk).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=invoice.period_end)
    )
    if counted.exists():
        raise refuse("it counted a period of its subscription's discount")
    kinds = set(invoice.lines.values_list("kind", flat=True))
    if LineKind.LATE_USAGE in kinds:
        raise refuse("it bills late usage of earlier periods")
    billed = (
        BilledPeriod.objects.select_for_update()
        .filter(
            subscription_id=subscription.pk,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            usage_to=invoice.period_end,
        )
        .first()
    )
    if billed is None:
        raise refuse("no usage record of its period")
    if billed.version_id != subscription.version_id or billed.overrides != subscription.overrides:
        raise refuse("a change to the subscription's terms applied at its period's end")
    return billed

"""Writes for invoices: drafts (idempotent), finalization with gap-free numbers
(collected through invoices.collection when Stripe is set up), void with a
credit note (which takes back what is left of what a purchase sold, as every
credit note does: invoices.credit_notes, invoices.reactions), and the
invoice of a purchase. Each invoice and credit note issued here is emailed to
the customer (invoices.emails)."""

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import prefetch_related_objects
from django.utils.translation import gettext as _

from billing.journal.writer import journal_batch
from common import aborts, rawsql
from common.errors import Conflict
from common.metrics import INVOICES_FINALIZED
from common.periods import lines_span
from customers.billing_entities import customer_billing_entity, default_billing_entity
from customers.e_invoice_details import E_INVOICE_DETAILS
from customers.locks import customers_lock
from customers.models import BillingEntity
from invoices import collection, emails
from invoices.credit_balance import (
    credit_balance_apply,
    credit_balance_from_negative_invoice,
    customers_with_credit_balance,
)
from invoices.credit_notes import credit_note_for_void, credit_note_locks
from invoices.e_invoices.access_points import e_invoice_send_on_commit
from invoices.e_invoices.issuing import (
    EInvoiceInvalid,
    EInvoiceUnchanged,
    buyer_refreshed,
    invoice_check,
    invoice_issue,
)
from invoices.issue_dates import issue_moment
from invoices.journal_entries import BATCH_READ_AHEAD, journal_invoice_finalized
from invoices.locks import draft_invoices_claim, invoice_lock, invoices_lock
from invoices.models import CreditNote, Invoice, InvoiceLine, InvoiceTaxLine, ReceivedPayment
from invoices.reactions import VOID_CHECKS
from invoices.rendering import render_pdf_after_commit
from invoices.sellers import seller_check, seller_snapshot
from invoices.sequences import next_number, next_numbers, numbering_year
from invoices.settlement import invoice_mark_paid
from invoices.totals import discount_shares, invoice_totals
from plans.rating import breakdown_as_stored
from plans.taxes import customer_tax_rates

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
# The payment reference of an invoice the customer's credit balance paid whole.
CREDIT_BALANCE_REFERENCE = "credit balance"
# The invoices a void takes, and the ones marked uncollectible (the admin offers
# each only for these).
VOIDABLE = (Invoice.FINALIZED, Invoice.UNCOLLECTIBLE)
UNCOLLECTIBLE_FROM = (Invoice.FINALIZED,)


def customer_snapshot(customer) -> dict:
    return {
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "address": customer.address,
        "tax_id": customer.tax_id or None,
        "currency": customer.currency,
        "timezone": customer.timezone,
        "locale": customer.locale,
        "tax_exempt": customer.tax_exempt,
        # What its e-invoice carries of the buyer (invoices.e_invoices): "" for none.
        **{name: getattr(customer, name) for name in E_INVOICE_DETAILS},
    }


def usage_groups_as_stored(groups: tuple) -> list[dict]:
    """A line's usage per combination (LineInput.usage_groups) as the line stores
    it: [{"values": {"model": "gpt-4o"}, "quantity": "1500"}]."""
    return [
        {"values": dict(combination), "quantity": format(quantity, "f")}
        for combination, quantity in groups
    ]


def _group_json(group: tuple | None) -> dict | None:
    """A rate card row's `when` as the line stores it (None: no card)."""
    return None if group is None else dict(group)


def invoice_write_draft(
    *,
    customer,
    subscription,
    reason: str,
    period_start: datetime,
    period_end: datetime,
    lines: list,
    now: datetime,
    tax_rates: list | None = None,
    corrects: Invoice | None = None,
    version=None,
) -> Invoice:
    """Write a draft invoice with its lines. Callers hold the subscription's row
    lock and move its period on in the same transaction, so an invoice is written
    once per (subscription, reason, period); a unique constraint refuses a second
    (the caller's transaction then fails whole). Each line's amount is rounded
    once; the total is their sum: the subtotal (every line but the discount
    lines), less the discount (those lines, negated), plus the tax on the two.
    A correction names the invoice it `corrects`.

    Each line is stamped as it is written (what earned revenue, margins and the
    journal read): the plan version that priced it, `version` (the plan version
    whose terms rated the invoice's lines; None for an invoice no plan prices)
    unless the line names its own (LineInput.version); its share of the
    invoice's discount (totals.discount_shares); and, for a line taking off a
    threshold invoice, that invoice (LineInput.takes_off)."""
    currency = customer.currency
    # The customer's rates now, unless the caller names the ones a sale was
    # priced with (a purchase paid through Stripe: tax charged at its order).
    rates = customer_tax_rates(customer) if tax_rates is None else tax_rates
    totals = invoice_totals(lines, rates=rates, currency=currency)
    service_start, service_end = lines_span(lines)
    amounts, taxes = totals.amounts, totals.taxes
    shares = discount_shares([line.kind for line in lines], amounts, currency=currency)
    priced = [getattr(line, "version", None) or version for line in lines]
    codes = {v.pk: v.plan.code for v in {v.pk: v for v in priced if v is not None}.values()}
    details = {
        "customer": customer,
        "currency": currency,
        "customer_snapshot": customer_snapshot(customer),
        "created_at": now,
        # When it is really written: a close back-dated writes today.
        "written_at": issue_moment(now),
        "subtotal": totals.subtotal,
        "discount": totals.discount,
        "tax": totals.tax,
        "total": totals.total,
    }
    # No savepoint of its own: a failure fails the caller's transaction whole.
    with transaction.atomic(savepoint=False):
        # Fixed SQL (common.rawsql.insert): the close writes one per period.
        invoice = Invoice(
            subscription=subscription,
            reason=reason,
            period_start=period_start,
            period_end=period_end,
            service_start=service_start,
            service_end=service_end,
            corrects=corrects,
            **details,
        )
        rawsql.insert([invoice])
        rawsql.insert(
            [
                InvoiceLine(
                    invoice=invoice,
                    position=position,
                    kind=line.kind,
                    description=line.description[:500],
                    meter=line.meter or "",
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    per=getattr(line, "per", Decimal(1)),
                    amount=amount,
                    period_start=getattr(line, "period_start", None),
                    period_end=getattr(line, "period_end", None),
                    breakdown=breakdown_as_stored(getattr(line, "breakdown", ())),
                    group=_group_json(getattr(line, "group", None)),
                    plan_version=priced_by,
                    plan=codes[priced_by.pk] if priced_by is not None else "",
                    discount_share=discount_share,
                    takes_off_id=getattr(line, "takes_off", None),
                    share=getattr(line, "share", None),
                    usage_groups=usage_groups_as_stored(getattr(line, "usage_groups", ())),
                )
                for position, (line, amount, discount_share, priced_by) in enumerate(
                    zip(lines, amounts, shares, priced, strict=True)
                )
            ]
        )
        tax_lines_write(invoice, taxes)
    return invoice


def tax_lines_write(invoice: Invoice, taxes: list) -> None:
    """The draft's tax lines, one per rate (invoices.totals' TaxLineInput)."""
    InvoiceTaxLine.objects.bulk_create(
        InvoiceTaxLine(
            invoice=invoice,
            position=position,
            tax_rate=line.rate,
            code=line.rate.code,
            name=line.rate.name,
            percentage=line.rate.percentage,
            taxable_amount=line.taxable_amount,
            amount=line.amount,
        )
        for position, line in enumerate(taxes)
    )


def _stamp_finalized(
    invoices: list[Invoice], numbers: list[str], sellers: list[BillingEntity], now: datetime
) -> None:
    """Number, date, mark finalized and give its seller (a copy of its billing
    entity) each of these locked drafts, in memory and in the database: one fixed
    UPDATE per due date (usually one for a whole batch; the close finalizes every
    invoice it writes), and one per seller."""
    by_due: dict[datetime, list[Invoice]] = {}
    by_seller: dict[str, tuple[BillingEntity, list[int]]] = {}
    for invoice, number, seller in zip(invoices, numbers, sellers, strict=True):
        invoice.billing_entity = seller if seller.pk is not None else None
        invoice.seller_snapshot = seller_snapshot(seller)
        by_seller.setdefault(seller.code, (seller, []))[1].append(invoice.pk)
        invoice.number = number
        invoice.status = Invoice.FINALIZED
        invoice.finalized_at = now
        # Due after the customer's payment terms (its own, or BILLING_PAYMENT_TERMS_DAYS).
        invoice.due_at = now + timedelta(days=invoice.customer.payment_terms)
        by_due.setdefault(invoice.due_at, []).append(invoice)
    for due_at, due in by_due.items():
        cases = " ".join(["WHEN %s THEN %s"] * len(due))
        marks = ", ".join(["%s"] * len(due))
        rawsql.execute(
            f"UPDATE invoices_invoice SET number = CASE id {cases} END, "  # noqa: S608 (placeholders only)
            f"status = %s, finalized_at = %s, due_at = %s WHERE id IN ({marks})",
            [value for invoice in due for value in (invoice.pk, invoice.number)]
            + [Invoice.FINALIZED, now, due_at]
            + [invoice.pk for invoice in due],
        )
    for seller, ids in by_seller.values():
        Invoice.objects.filter(pk__in=ids).update(
            billing_entity=seller if seller.pk is not None else None,
            seller_snapshot=seller_snapshot(seller),
        )
    if invoices:
        # Counted in the metrics once they are committed: a close rolled back
        # finalized nothing.
        transaction.on_commit(partial(INVOICES_FINALIZED.inc, len(invoices)))


def _finalize_locked(
    invoice: Invoice,
    now: datetime,
    *,
    collect: bool = True,
    stamped: bool = False,
    with_balance: set[int] | None = None,
) -> Invoice:
    """Finalize the locked draft: numbered with the sequence's next, unless the
    caller `stamped` it (_stamp_finalized, in this transaction). `with_balance`:
    the customers known to have a credit balance entry (a batch asked once; the
    set takes in those this finalization gives one); None asks per invoice."""
    if not stamped:
        seller = customer_billing_entity(invoice.customer)
        seller_check(invoice=invoice, entity=seller)
        _e_invoice_check(invoice, seller, now)
        number = next_number(seller.invoice_prefix, numbering_year(now, seller))
        _stamp_finalized([invoice], [number], [seller], now)
    # The customer's credit balance pays what it can of what it is billed (not a
    # purchase: that is paid as it is bought); an invoice it pays whole is paid.
    applied = ZERO
    if invoice.reason != Invoice.PURCHASE:
        has_entries = None if with_balance is None else invoice.customer_id in with_balance
        applied = credit_balance_apply(invoice=invoice, now=now, has_entries=has_entries)
        # What an invoice below zero owes the customer pays its next invoices.
        owed = credit_balance_from_negative_invoice(invoice=invoice, now=now)
        if owed > 0 and with_balance is not None:
            with_balance.add(invoice.customer_id)
    if invoice.e_invoice_format:
        _e_invoice_issue(invoice)
    journal_invoice_finalized(invoice=invoice, now=now)
    if applied > 0 and invoice.amount_due == 0:
        invoice = invoice_mark_paid(invoice=invoice, reference=CREDIT_BALANCE_REFERENCE, now=now)
        collect = False
    if settings.BILLING_INVOICE_PDFS:
        render_pdf_after_commit(invoice.pk, force=False)
    # Emailed to the customer, the PDF attached, once this commits.
    emails.document_email_schedule(invoice=invoice, now=now)
    if collect:
        # With Stripe: a Payment row now, the charge by a worker after commit.
        collection.invoice_collection_schedule(invoice=invoice, now=now)
    return invoice


def _e_invoice_check(invoice: Invoice, seller: BillingEntity, now: datetime) -> None:
    """Check the draft's e-invoice before it is numbered (invoices.e_invoices):
    EInvoiceInvalid when its seller e-invoices and the document fails; else
    its profile ('' for none) and its buyer as the customer is now are kept on
    it in memory, written when it is issued (_e_invoice_issue)."""
    invoice.e_invoice_format = ""
    if not getattr(seller, "e_invoicing", False):
        return
    buyer = buyer_refreshed(invoice.customer_snapshot or {}, customer_snapshot(invoice.customer))
    provisional = f"{seller.invoice_prefix}-{numbering_year(now, seller)}-000000"
    checked = invoice_check(
        invoice, seller=seller_snapshot(seller), buyer=buyer, now=now, number=provisional
    )
    # The document checked, kept on the instance until it is issued (_e_invoice_issue).
    invoice.e_invoice_checked = checked
    if checked is not None:
        invoice.e_invoice_format = checked.profile
        invoice.customer_snapshot = buyer


def _e_invoice_issue(invoice: Invoice) -> None:
    """Write the finalized invoice's e-invoice (numbered, dated, its credits
    applied), validated again: what it is issued as; a UBL one is sent to the
    Peppol access point once this commits (e_invoices.access_points)."""
    invoice.e_invoice_xml = invoice_issue(
        invoice,
        profile=invoice.e_invoice_format,
        checked=getattr(invoice, "e_invoice_checked", None),
    )
    invoice.e_invoice_errors = []
    invoice.e_invoice_refused_for = ""
    Invoice.objects.filter(pk=invoice.pk).update(
        customer_snapshot=invoice.customer_snapshot,
        e_invoice_format=invoice.e_invoice_format,
        e_invoice_xml=invoice.e_invoice_xml,
        e_invoice_errors=[],
        e_invoice_refused_for="",
    )
    e_invoice_send_on_commit("invoice", invoice.pk, invoice.e_invoice_format)


def _e_invoice_refused(refused: EInvoiceInvalid) -> None:
    """Keep on the draft why its e-invoice was refused (the admin and the API show
    it), and what the check depended on (its fingerprint), once the finalization
    that refused it is rolled back. A refusal unchanged is kept as it is."""
    if refused.invoice_id is not None and not isinstance(refused, EInvoiceUnchanged):
        Invoice.objects.filter(pk=refused.invoice_id, status=Invoice.DRAFT).update(
            e_invoice_errors=refused.records, e_invoice_refused_for=refused.fingerprint
        )


def invoice_finalize(*, invoice: Invoice, now: datetime, collect: bool = True) -> Invoice:
    """Finalize a draft (_invoice_finalize); a draft whose e-invoice fails
    validation stays a draft, unnumbered, with the failures kept on it
    (Invoice.e_invoice_errors), and EInvoiceInvalid (409) says why."""
    try:
        return _invoice_finalize(invoice=invoice, now=now, collect=collect)
    except EInvoiceInvalid as refused:
        _e_invoice_refused(refused)
        raise


def _invoice_finalize(*, invoice: Invoice, now: datetime, collect: bool = True) -> Invoice:
    """Finalize a draft: number it (gap-free per year, under a lock) and freeze it.
    Finalizing an invoice that is no longer a draft is refused. With Stripe the
    invoice is then collected (invoices.collection), unless `collect` is off.

    Numbers follow accounting order: a plan change's or an immediate cancel's
    invoice credits the unused part of fees an earlier invoice of its
    subscription charged (its start invoice, or the last close's), so the drafts
    its subscription wrote before it and dated by `now` are finalized first, in
    this transaction, as the beat would have finalized them: a document is never
    numbered before one it credits. Locks the customers, then the drafts in
    primary-key order, then the sequence.

    Numbered and dated at the moment it is issued (invoices.issue_dates), whatever
    `now` it was asked at: `now` decides which earlier drafts are due."""
    invoice_id = invoice.pk
    with transaction.atomic():
        earlier = _earlier_drafts(invoice, now)
        now = issue_moment(now)
        with_balance = _credit_balance_customers_lock(
            [(invoice.customer_id, invoice.total, invoice.reason)]
            + [(draft.customer_id, draft.total, draft.reason) for draft in earlier]
        )
        locked = invoices_lock([invoice_id] + [draft.pk for draft in earlier])
        invoice = next((each for each in locked if each.pk == invoice_id), None)
        if invoice is None:
            raise Invoice.DoesNotExist(f"no invoice {invoice_id}")
        if invoice.status != Invoice.DRAFT:
            raise Conflict(f"invoice {invoice} is {invoice.status}, not a draft")
        for draft in locked:
            # Finalized by another run between the read and the lock: left as it is.
            if draft.pk != invoice.pk and draft.status == Invoice.DRAFT:
                _finalize_locked(draft, now, with_balance=with_balance)
        return _finalize_locked(invoice, now, collect=collect, with_balance=with_balance)


# The invoices that credit fees an earlier invoice of their subscription charged.
CREDITING_EARLIER = (Invoice.PLAN_CHANGE, Invoice.CANCEL)


def _earlier_drafts(invoice: Invoice, now: datetime) -> list[Invoice]:
    """For an invoice that credits earlier fees (CREDITING_EARLIER), the drafts
    its subscription wrote before it (lower ids), dated by `now`; else none."""
    if invoice.reason not in CREDITING_EARLIER or invoice.subscription_id is None:
        return []
    return list(
        Invoice.objects.filter(
            subscription_id=invoice.subscription_id,
            status=Invoice.DRAFT,
            pk__lt=invoice.pk,
            created_at__lte=now,
        )
        .only("pk", "customer_id", "total", "reason")
        .order_by("pk")
    )


def _credit_balance_customers_lock(drafts: list[tuple[int, Decimal, str]]) -> set[int]:
    """Lock, in id order, the customers of these drafts (customer id, total,
    reason) whose credit balance finalizing them touches: those with balance
    entries (it pays the draft) and those of a draft below zero (it is paid into
    it); a purchase's never. Taken before the drafts' and the sequence's locks
    (billing.locks). Returns the customers with entries (_finalize_locked's
    `with_balance`)."""
    billed = [(customer, total) for customer, total, reason in drafts if reason != Invoice.PURCHASE]
    with_balance = customers_with_credit_balance(sorted({customer for customer, _ in billed}))
    customers_lock(with_balance | {customer for customer, total in billed if total < 0})
    return with_balance


FINALIZE_BATCH = 200


def invoices_finalize_due(
    *,
    cutoff: datetime,
    now: datetime,
    subscription_ids: list[int] | None = None,
    give_way: bool = False,
) -> int:
    """Finalize every draft written at or before `cutoff` (only those of these
    subscriptions when `subscription_ids` is given), in batches of one
    transaction each. Drafts another run holds are skipped (it numbers them), so
    concurrent runs neither wait on each other's drafts nor number one twice.
    A batch the database aborts (a deadlock) is tried again (common.aborts);
    with `give_way`, one it still aborts ends the run, logged, instead of raising:
    what committed before it stays finalized; the caller leaves the rest to later."""
    finalized = 0
    drafts = Invoice.objects.filter(status=Invoice.DRAFT, created_at__lte=cutoff)
    if subscription_ids is not None:
        drafts = drafts.filter(subscription_id__in=subscription_ids)
    due = list(drafts.order_by("id").values_list("id", flat=True))
    for start in range(0, len(due), FINALIZE_BATCH):
        batch = partial(_finalize_batch, due[start : start + FINALIZE_BATCH], now)
        try:
            finalized += aborts.retried_when_aborted(batch, what="a finalization batch")
        except OperationalError:
            if not give_way:
                raise
            note = "finalizing due drafts stopped after %s; left to a later run"
            logger.warning(note, finalized, exc_info=True)
            break
    return finalized


def _finalize_batch(ids: list[int], now: datetime) -> int:
    """Finalize these drafts (those still drafts) in one transaction, each dated
    and numbered at the moment it is issued (invoices.issue_dates); how many."""
    now = issue_moment(now)
    with transaction.atomic():
        # The customers first (those whose credit balance is touched), then
        # their drafts, then the sequence: billing.locks' order.
        with_balance = _credit_balance_customers_lock(
            list(
                Invoice.objects.filter(pk__in=ids, status=Invoice.DRAFT).values_list(
                    "customer_id", "total", "reason"
                )
            )
        )
        batch = draft_invoices_claim(ids)
        batch.sort(key=lambda invoice: (invoice.customer_id, invoice.pk))
        batch, sellers = _sellers_of(batch, now)
        # The batch's numbers in one statement per seller, in the order they are used.
        numbers = _numbers_for(sellers, now)
        # Each statement once for the batch: the numbers and dates written.
        _stamp_finalized(batch, numbers, sellers, now)
        # What the journal reads of each as it is finalized (its lines and taxes)
        # read once for the batch, and its accounts and locked months once.
        prefetch_related_objects(batch, *BATCH_READ_AHEAD)
        with journal_batch():
            for invoice in batch:
                _finalize_locked(invoice, now, stamped=True, with_balance=with_balance)
    return len(batch)


def _sellers_of(batch: list[Invoice], now: datetime) -> tuple[list[Invoice], list[BillingEntity]]:
    """The drafts of a batch that may be finalized now, each with its seller (its
    customer's billing entity; every entity read in one query). A draft its seller
    cannot issue (sellers.seller_check), or whose e-invoice fails validation, is
    left a draft, unchanged (but for the e-invoice's failures), and logged: the
    admin's Finalize says why, and the next run takes it once that is fixed."""
    entities = {entity.pk: entity for entity in BillingEntity.objects.all()}
    default = next((e for e in entities.values() if e.is_default), None)
    default = default or default_billing_entity()
    kept, sellers = [], []
    for invoice in batch:
        seller = entities.get(invoice.customer.billing_entity_id) or default
        try:
            seller_check(invoice=invoice, entity=seller)
            _e_invoice_check(invoice, seller, now)
        except EInvoiceUnchanged:
            # Refused before, and nothing its check depends on changed since.
            logger.debug("draft invoice %s still refused: unchanged", invoice.pk)
            continue
        except EInvoiceInvalid as refused:
            logger.warning("draft invoice %s not finalized: %s", invoice.pk, refused.message)
            _e_invoice_refused(refused)
            continue
        except Conflict as refused:
            logger.warning("draft invoice %s not finalized: %s", invoice.pk, refused.message)
            continue
        kept.append(invoice)
        sellers.append(seller)
    return kept, sellers


def _numbers_for(sellers: list[BillingEntity], now: datetime) -> list[str]:
    """The next invoice numbers of each seller's sequence (its prefix, and the
    year it is in at `now`), one per invoice in this order. The sequences are
    taken in their names' order, so that two runs lock them in the same order."""
    wanted: dict[tuple[str, int], int] = {}
    keys = [(seller.invoice_prefix, numbering_year(now, seller)) for seller in sellers]
    for key in keys:
        wanted[key] = wanted.get(key, 0) + 1
    taken = {key: iter(next_numbers(*key, wanted[key])) for key in sorted(wanted)}
    return [next(taken[key]) for key in keys]


def invoice_void(*, invoice: Invoice, reason: str, now: datetime) -> CreditNote:
    """Void a finalized invoice: its number and lines stay as they were, and a
    credit note is issued for all that is left uncredited (what the customer's
    credit balance paid of it goes back to the balance). Through that credit
    note a purchase invoice takes back all that is left of what it sold, in the
    same transaction (invoices.credit_notes); an invoice of a reason with a
    VOID_CHECKS entry is checked first. When either is refused (part of what was
    sold was used; a threshold invoice's period is closed), nothing changes. The
    note is dated when it is issued (invoices.issue_dates)."""
    check = VOID_CHECKS.get(invoice.reason)
    now = issue_moment(now)
    with transaction.atomic():
        held = credit_note_locks(invoice)
        checked = check.lock(invoice=invoice) if check else None
        invoice = invoice_lock(invoice.pk)
        if invoice.status not in VOIDABLE:
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized or uncollectible "
                "invoice can be voided"
            )
        if check:
            check.check(invoice=invoice, held=checked, now=now)
        with invoice.text.speaking():
            memo = reason or _("void of %(number)s") % {"number": invoice.number}
        note = credit_note_for_void(invoice=invoice, memo=memo, held=held, now=now)
        emails.document_email_schedule(credit_note=note, now=now)
        invoice.status = Invoice.VOID
        invoice.voided_at = now
        invoice.save(update_fields=["status", "voided_at"])
        collection.collection_stop(
            invoice=invoice, reason="not collected: the invoice was voided", now=now
        )
        if settings.BILLING_INVOICE_PDFS:
            # Its PDF says VOID from now on, rendered and stored once (its stored
            # PDF is no longer current: rendering.pdf_is_current); the one first
            # issued stays stored.
            render_pdf_after_commit(invoice.pk, force=False)
        return note


def invoice_create_purchase(
    *,
    customer,
    lines: list,
    now: datetime,
    paid_reference: str = "",
    tax_rates: list | None = None,
) -> Invoice:
    """Invoice a purchase (a credit pack, paid credits, a money top-up) at once: a
    finalized invoice of its own, numbered in the same sequence as period invoices.
    Runs in the caller's transaction, so a purchase that fails leaves no invoice
    and takes no number. With `paid_reference` (a purchase paid through Stripe
    before it is granted) the invoice is paid at once, with that reference, taxed
    at `tax_rates`: the rates its price and tax were charged with when it was
    ordered, so that the invoice's total is what Stripe collected."""
    with transaction.atomic():
        invoice = invoice_write_draft(
            customer=customer,
            subscription=None,
            reason=Invoice.PURCHASE,
            period_start=now,
            period_end=now,
            lines=lines,
            now=now,
            tax_rates=tax_rates,
        )
        if not paid_reference:
            return invoice_finalize(invoice=invoice, now=now)
        invoice = invoice_finalize(invoice=invoice, now=now, collect=False)
        return invoice_mark_paid(
            invoice=invoice, reference=paid_reference, now=now, method=ReceivedPayment.STRIPE
        )


def invoice_mark_uncollectible(*, invoice: Invoice, now: datetime) -> Invoice:
    """Give up collecting a finalized invoice (it stays numbered and can still be
    voided with a credit note): a collection waiting for its next attempt is
    canceled. An attempt already under way reports as it comes; "Retry now" on
    the payment still collects."""
    with transaction.atomic():
        invoice = invoice_lock(invoice.pk)
        if invoice.status not in UNCOLLECTIBLE_FROM:
            raise Conflict(
                f"invoice {invoice} is {invoice.status}; only a finalized one is uncollectible"
            )
        invoice.status = Invoice.UNCOLLECTIBLE
        invoice.save(update_fields=["status"])
        collection.collection_stop(
            invoice=invoice, reason="not collected: the invoice was marked uncollectible", now=now
        )
    return invoice

"""The invoices a commit writes: the prepaid commit's, in full when it is
signed (`reason: commit`, finalized at once), and the postpaid commit's
true-up at its term's end (`reason: commit_true_up`, a draft the beat
finalizes), each one line in the customer's language."""

from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.core import customer_text
from billing.core.vocabulary import LineKind
from billing.models import Subscription
from billing.rating.lines import LineInput
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from wallets.commit_models import Commit, CommitEntry


def commit_invoice(commit: Commit, subscription: Subscription, now: datetime) -> Invoice:
    customer = subscription.customer
    zone = customer_text.customer_zone(customer)
    with customer_text.speaking(customer.locale):
        description = _("Commit for {term}").format(
            term=customer_text.period(commit.starts_at, commit.ends_at, zone)
        )
    invoice = invoice_write_draft(
        customer=customer,
        subscription=subscription,
        reason=Invoice.COMMIT,
        period_start=commit.starts_at,
        period_end=commit.ends_at,
        lines=[
            LineInput(
                LineKind.COMMIT,
                description,
                None,
                Decimal(1),
                commit.amount,
                commit.amount,
                commit.starts_at,
                commit.ends_at,
            )
        ],
        now=now,
    )
    return invoice_finalize(invoice=invoice, now=now)


def true_up_invoice(commit: Commit, subscription: Subscription, *, now: datetime):
    missing = commit.amount - commit.counted
    if missing <= 0:
        return None
    customer = subscription.customer
    zone = customer_text.customer_zone(customer)
    with customer_text.speaking(customer.locale):
        description = _("Commit true-up for {term}: {amount} committed, {counted} used").format(
            term=customer_text.period(commit.starts_at, commit.ends_at, zone),
            amount=customer_text.money(commit.amount, commit.currency),
            counted=customer_text.money(commit.counted, commit.currency),
        )
    CommitEntry.objects.create(
        commit=commit, kind=CommitEntry.TRUE_UP, amount=missing, occurred_at=now
    )
    return invoice_write_draft(
        customer=customer,
        subscription=subscription,
        reason=Invoice.COMMIT_TRUE_UP,
        period_start=commit.starts_at,
        period_end=commit.ends_at,
        lines=[
            LineInput(
                LineKind.COMMIT_TRUE_UP,
                description,
                None,
                Decimal(1),
                missing,
                missing,
                commit.starts_at,
                commit.ends_at,
            )
        ],
        now=now,
    )

"""The invoices of a commit's term, each one line in the customer's language:
the prepaid commit's, in full when it is signed (`reason: commit`, finalized at
once); the postpaid commit's true-up is written by the close through the same
writer (billing.invoicing.commit_true_ups)."""

from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

from billing.models import Subscription
from common import customer_text
from common.vocabulary import LineKind
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from wallets.commit_models import Commit


def term_invoice(
    commit: Commit, subscription: Subscription, *, reason: str, kind: str, amount, describe, now
) -> Invoice:
    """A draft of one line of `amount` for the commit's term, described by
    `describe(term)` in the customer's language and zone. A true-up is revenue of
    the subscription's plan as it stands: at a term's end the close writes it
    before the subscription moves to a version scheduled for then. No plan prices
    a prepaid commit's invoice."""
    customer = subscription.customer
    zone = customer_text.customer_zone(customer)
    with customer_text.speaking(customer.locale):
        description = describe(customer_text.period(commit.starts_at, commit.ends_at, zone))
    term = (commit.starts_at, commit.ends_at)
    line = LineInput(kind, description, None, Decimal(1), amount, amount, *term)
    return invoice_write_draft(
        customer=customer,
        subscription=subscription,
        reason=reason,
        period_start=commit.starts_at,
        period_end=commit.ends_at,
        lines=[line],
        now=now,
        version=subscription.version if kind == LineKind.COMMIT_TRUE_UP else None,
    )


def commit_invoice(commit: Commit, subscription: Subscription, now: datetime) -> Invoice:
    """The prepaid commit's invoice, for its whole amount, finalized at once."""
    invoice = term_invoice(
        commit,
        subscription,
        reason=Invoice.COMMIT,
        kind=LineKind.COMMIT,
        amount=commit.amount,
        describe=lambda term: _("Commit for {term}").format(term=term),
        now=now,
    )
    return invoice_finalize(invoice=invoice, now=now)

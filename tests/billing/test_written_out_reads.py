"""The statement's reads written out in SQL (billing.usage.billed_parts.drafts_billed,
wallets.commits.commit_of_period) give what the ORM queries they replaced gave: the
same rows, bounds, statuses and order, values converted alike."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.usage.billed_parts import drafts_billed
from customers.services import customer_create
from invoices.models import Invoice, InvoiceLine
from tests.factories import subscribe
from tests.wallets.support import build_catalog
from wallets.commit_models import Commit
from wallets.commits import commit_of_period

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


@pytest.fixture
def subscription(db):
    build_catalog()
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    return subscribe(acme, "ai_assistant", NOV_1)


def test_drafts_billed_is_the_orms_lines_per_draft(subscription):
    # given: drafts and other invoices of the subscription (and another's), with lines
    # on, inside and just outside the period's bounds, and without bounds
    other = subscribe(
        customer_create(external_id="beta", name="Beta", currency="USD"), "ai_assistant", NOV_1
    )
    bounds = [
        (NOV_1, DEC_1),
        (NOV_1 - US, DEC_1),
        (NOV_1, DEC_1 + US),
        (NOV_1 + timedelta(days=3), NOV_1 + timedelta(days=4)),
        (None, DEC_1),
        (NOV_1, None),
        (DEC_1, DEC_1 + timedelta(days=30)),
    ]
    amounts = itertools.count(1)
    for index, (owner, status, reason) in enumerate(
        [
            (subscription, Invoice.DRAFT, Invoice.PERIOD),
            (subscription, Invoice.FINALIZED, Invoice.START),
            (subscription, Invoice.DRAFT, Invoice.PLAN_CHANGE),
            (other, Invoice.DRAFT, Invoice.PERIOD),
            (subscription, Invoice.DRAFT, Invoice.CANCEL),
        ]
    ):
        invoice = Invoice.objects.create(
            customer=owner.customer,
            subscription=owner,
            reason=reason,
            status=status,
            currency="USD",
            period_start=NOV_1 + timedelta(hours=index),
            period_end=DEC_1,
            created_at=NOV_1,
        )
        for position, (start, end) in enumerate(bounds):
            InvoiceLine.objects.create(
                invoice=invoice,
                position=position,
                kind="fee",
                description="x",
                quantity=1,
                amount=D(next(amounts)) / 7,
                period_start=start,
                period_end=end,
            )

    for start, end in [(NOV_1, DEC_1), (NOV_1 + US, DEC_1), (NOV_1, DEC_1 - US)]:
        # when
        found = drafts_billed(subscription=subscription, start=start, end=end)

        # then: what the ORM's query of the lines, summed per draft, gives
        lines = InvoiceLine.objects.filter(
            invoice__subscription=subscription,
            invoice__status=Invoice.DRAFT,
            period_start__gte=start,
            period_end__lte=end,
        ).values_list("invoice_id", "amount")
        expected: dict[int, D] = {}
        for invoice_id, amount in lines:
            expected[invoice_id] = expected.get(invoice_id, D(0)) + amount
        assert [(invoice.pk, amount) for invoice, amount in found.drafts] == sorted(
            expected.items()
        )
    # the subscription's three drafts made here (and the start's, a draft too) are found
    found = drafts_billed(subscription=subscription, start=NOV_1, end=DEC_1).drafts
    assert len(found) == 1 + 3


def test_commit_of_period_is_the_orms_first_commit(subscription):
    # given: commits of several statuses and terms (one holding the period from its
    # very bounds), another customer's
    beta = customer_create(external_id="beta", name="Beta", currency="USD")
    made = []
    for customer_id, status, starts, ends in [
        (subscription.customer_id, Commit.CANCELED, NOV_1, DEC_1),
        (beta.pk, Commit.ACTIVE, NOV_1, DEC_1),
        (subscription.customer_id, Commit.ACTIVE, NOV_1 + US, DEC_1),
        (subscription.customer_id, Commit.ACTIVE, NOV_1, DEC_1 - US),
        (subscription.customer_id, Commit.ACTIVE, NOV_1, DEC_1),
        (subscription.customer_id, Commit.ACTIVE, NOV_1 - timedelta(days=30), DEC_1),
    ]:
        made.append(
            Commit.objects.create(
                customer_id=customer_id,
                subscription=subscription,
                amount=D("1000.0000000001"),
                currency="USD",
                starts_at=starts,
                ends_at=ends,
                periods=1,
                billing=Commit.PREPAID,
                access=Commit.PER_PERIOD,
                applies_to=["tokens", "café"],
                rollover_percent=D("12.5"),
                status=status,
                created_at=NOV_1 + timedelta(microseconds=123),
            )
        )

    def orm(start, end):
        return (
            Commit.objects.filter(
                customer_id=subscription.customer_id,
                status=Commit.ACTIVE,
                starts_at__lte=start,
                ends_at__gte=end,
            )
            .order_by("id")
            .first()
        )

    def values(commit):
        if commit is None:
            return None
        return {f.attname: getattr(commit, f.attname) for f in Commit._meta.concrete_fields}

    for start, end in [
        (NOV_1, DEC_1),
        (NOV_1 + US, DEC_1 - US),
        (NOV_1 - US, DEC_1),
        (NOV_1 - timedelta(days=31), DEC_1),
    ]:
        # when
        found = commit_of_period(customer_id=subscription.customer_id, start=start, end=end)

        # then
        expected = orm(start, end)
        assert values(found) == values(expected)
        assert found is None or not found._state.adding
    assert commit_of_period(customer_id=subscription.customer_id, start=NOV_1, end=DEC_1) == made[4]

"""Readers of the period statement that follow a rate card's rows (issue 50):
a bulk migration's preview bills each row's usage as the change's invoice does,
and a threshold invoice bills rated lines, the close the rest, together what one
closing invoice would have."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.subscriptions import bulk_migration
from billing.subscriptions.lifecycle import subscription_create
from customers.services import customer_create
from invoices.models import Invoice
from plans.services import plan_create
from plans.validation import ChargeSpec, VersionSpec
from tests.rate_cards import CARD_TOTAL, card_charge, llm_tokens, per_unit, send_tokens

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 12, tzinfo=UTC)
# A moment after the tokens of the 10th: the check rates the usage before it.
LATER = datetime(2026, 11, 10, 12, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)

# The card's lines for tests.rate_cards.USAGE.
CARD_LINES = [
    ("LLM tokens · gpt-4o · input", D(1_000_000), D("2.50")),
    ("LLM tokens · gpt-4o · output", D(200_000), D("2.00")),
    ("LLM tokens · claude-sonnet", D(300_000), D("0.90")),
    ("LLM tokens · other usage", D(520_000), D("2.08")),
]


def token_lines(invoice: Invoice) -> list[tuple]:
    return [
        (line.description, line.quantity, line.amount)
        for line in invoice.lines.filter(meter="llm_tokens").order_by("id")
    ]


def card_plan(code: str = "tokens", **terms):
    return plan_create(
        code=code,
        name=code.title(),
        version=VersionSpec(currency="USD", charges=(card_charge(),), **terms),
        publish=True,
    )


def subscribed(plan):
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    return subscription_create(customer=acme, plan=plan, start=NOV_1)


def test_an_immediate_migrations_preview_is_what_the_change_invoices(
    db, django_capture_on_commit_callbacks
):
    # given: acme on the card with November's tokens so far; a plain plan to move to
    llm_tokens()
    tokens = card_plan()
    plain = ChargeSpec("llm_tokens", "overage", D(0), pricing=per_unit("0.000003"))
    flat = plan_create(
        code="flat",
        name="Flat",
        version=VersionSpec(currency="USD", charges=(plain,)),
        publish=True,
    )
    subscription = subscribed(tokens.plan)
    send_tokens("acme", NOV_10)

    with time_machine.travel(NOV_20, tick=False):
        # when: moving it to flat on November 16th previewed
        preview = bulk_migration.plan_migration_preview(
            subscriptions=[subscription], version=flat, effective="immediate", at=NOV_16
        )

        # then: the usage so far priced at each row of the card
        (row,) = preview.rows
        assert row.skipped == ""
        assert [
            (line.description, line.quantity, line.amount)
            for line in row.lines
            if line.meter == "llm_tokens"
        ] == CARD_LINES
        assert (row.usage, row.credit, row.charge, row.total) == (CARD_TOTAL, 0, 0, CARD_TOTAL)

        # when: confirmed and run
        with django_capture_on_commit_callbacks(execute=True):
            migration, _ = bulk_migration.plan_migration_create(token=uuid.uuid4(), preview=preview)

    # then: the change's invoice bills what the preview said
    migration.refresh_from_db()
    item = migration.items.get()
    assert (migration.status, item.status, item.preview_total) == ("done", "done", CARD_TOTAL)
    invoice = Invoice.objects.get(reason="plan_change")
    assert token_lines(invoice) == CARD_LINES
    assert invoice.total == row.total == CARD_TOTAL


def test_a_threshold_invoice_bills_rated_lines_and_the_close_the_rest(
    db, django_capture_on_commit_callbacks
):
    # given: the card billed progressively from 5.00
    llm_tokens()
    subscription = subscribed(card_plan(progressive_billing_threshold=D("5.00")).plan)

    # when: 7.48 of tokens arrive (the check the ingest enqueues runs)
    with time_machine.travel(LATER, tick=False), django_capture_on_commit_callbacks(execute=True):
        send_tokens("acme", NOV_10)

    # then: a threshold invoice bills each row's usage
    (threshold,) = Invoice.objects.filter(subscription=subscription, reason="threshold")
    assert token_lines(threshold) == CARD_LINES
    assert threshold.total == CARD_TOTAL

    # when: 1,000,000 more gpt-4o input tokens (2.50: below the threshold), then the close
    with time_machine.travel(NOV_20, tick=False), django_capture_on_commit_callbacks(execute=True):
        send_tokens("acme", NOV_16, [("gpt-4o", "input", 1_000_000)], prefix="more")
    assert Invoice.objects.filter(reason="threshold").count() == 1
    periods_close(as_of=DEC_1)

    # then: the closing invoice rates the period's rows and takes off what the
    # threshold invoice billed: 9.98 - 7.48 = 2.50
    closing = Invoice.objects.get(subscription=subscription, reason="period")
    assert token_lines(closing) == [
        ("LLM tokens · gpt-4o · input", D(2_000_000), D("5.00")),
        *CARD_LINES[1:],
    ]
    invoiced = [line.amount for line in closing.lines.filter(kind="usage_invoiced")]
    assert invoiced == [-CARD_TOTAL]
    assert closing.total == D("2.50")
    assert threshold.total + closing.total == D("9.98")

"""A close group reads once what most periods have none of (billing.invoicing.close.
_group_reads, through common.rawsql.answered): which of its subscriptions
have threshold billings or a running discount, which customers have a commit or
tax rates of their own, and the default rates once for the others. Each period
still closes to the cent as it would alone: a subscription with a discount, a
customer with rates of its own, and the others on the default rate, in one group."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import connection, transaction

from billing.invoicing import close
from billing.invoicing.close import subscriptions_close
from billing.subscriptions.discounts import discount_redeem
from common.vocabulary import CouponDuration
from invoices.models import Invoice
from plans.coupons import coupon_create
from plans.tax_rates import tax_rate_create
from tests.factories import CustomerFactory, ai_assistant_plan, prompts_meter, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


class RolledBack(Exception):
    pass


@pytest.fixture
def subscriptions():
    prompts_meter()
    ai_assistant_plan()
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    tax_rate_create(code="gst", name="GST", percentage=D("5"))
    found = [subscribe(CustomerFactory(external_id=f"c{n}"), "ai_assistant") for n in range(3)]
    found.append(subscribe(CustomerFactory(external_id="own", tax_rates=["gst"]), "ai_assistant"))
    coupon = coupon_create(
        code="ten", name="Ten off", percent_off=D("10"), duration=CouponDuration.FOREVER
    )
    discount_redeem(subscription=found[1], coupon=coupon, now=NOV_1)
    return found


def closing_invoices() -> dict[str, tuple]:
    return {
        invoice.customer.external_id: (
            invoice.subtotal,
            invoice.discount,
            invoice.tax,
            invoice.total,
            [(line.kind, line.amount) for line in invoice.lines.order_by("position")],
            [(tax.code, tax.amount) for tax in invoice.tax_lines.order_by("code")],
        )
        for invoice in Invoice.objects.filter(reason=Invoice.PERIOD)
    }


def close_then_undo(ids: list[int]) -> tuple[dict, list[str]]:
    """The closing invoices of a close of `ids`, and the text of its statements
    (as sent: a statement prepared by psycopg is captured without its text by
    CaptureQueriesContext); then undone."""
    found: dict = {}
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    try:
        with transaction.atomic():
            with connection.execute_wrapper(record):
                assert subscriptions_close(subscription_ids=ids, as_of=DEC_1) == len(ids)
            found = closing_invoices()
            raise RolledBack
    except RolledBack:
        pass
    return found, statements


def test_a_group_closes_each_period_as_it_would_alone_reading_once(subscriptions, monkeypatch):
    ids = [s.pk for s in subscriptions]

    # when: the four close in one group, then one at a time
    together, statements = close_then_undo(ids)
    monkeypatch.setattr(close, "CLOSE_GROUP", 1)
    alone, one_by_one = close_then_undo(ids)

    # then: the same invoices, to the cent: the discount, the own rate, the default
    assert together == alone
    # (the 19.99 base fee: 10% off is 1.999, 2.00; VAT 20% of 17.99 is 3.598, 3.60)
    assert together["c1"][1:4] == (D("2.00"), D("3.60"), D("21.59"))
    assert together["c0"][2:4] == (D("4.00"), D("23.99"))
    assert together["own"][5] == [("gst", D("1.00"))]
    assert together["c2"][5] == [("vat", D("4.00"))]

    # and: the discount read once for the group, then only for the one that has one
    def count(part: str, sqls: list[str]) -> int:
        return sum(part in sql for sql in sqls)

    assert count("FROM billing_discount WHERE subscription_id = ", one_by_one) == 4
    assert count("FROM billing_discount WHERE subscription_id = ", statements) == 1
    assert count("FROM billing_discount WHERE subscription_id IN", statements) == 1
    # the default rates once (for c0, c1 and c2), the own ones for "own"
    assert count("LEFT JOIN customers_customer_tax_rates", one_by_one) == 4
    assert count("LEFT JOIN customers_customer_tax_rates", statements) == 2
    # no threshold billing, no commit: one statement each for the group
    assert count("FROM billing_thresholdbilling t", one_by_one) == 4
    assert count("FROM billing_thresholdbilling t", statements) == 0
    assert count("FROM wallets_commit WHERE customer_id = ", statements) == 0
    assert len(statements) < len(one_by_one) - 8

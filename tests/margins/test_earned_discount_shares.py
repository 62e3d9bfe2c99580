"""Issue 93, a rule no test guarded: each line's share of an invoice's discount
is rounded so that the shares add up to the discount (common.money.
split_money: floors, the cents left over one each to the largest remainders,
ties to the larger line, then to the earlier), so what the lines earn adds up
to what the invoice bills before tax."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.revenue.earned import earned_revenue
from common.money import split_money
from plans.rating import LineInput
from tests.factories import CustomerFactory, period_draft, published_version

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("total", "weights", "currency", "shares"),
    [
        # a third each: the cent left over to the first of three equal lines
        (D("10.00"), [D("10.00"), D("10.00"), D("10.00")], "USD", ["3.34", "3.33", "3.33"]),
        # 1.00 over 3 : 3 : 1 (0.428571.., 0.428571.., 0.142857..): the two
        # cents left over to the largest remainders, the two larger lines
        (D("1.00"), [D(3), D(3), D(1)], "USD", ["0.43", "0.43", "0.14"]),
        # 1.27, 2.545 and 3.18 cents: the cent left over to the second (.545)
        (D("0.07"), [D(1), D(2), D("2.5")], "EUR", ["0.01", "0.03", "0.03"]),
        # yen have no minor unit: 100 over three equal lines
        (D("100"), [D(1), D(1), D(1)], "JPY", ["34", "33", "33"]),
    ],
)
def test_the_shares_of_a_discount_add_up_to_it(total, weights, currency, shares):
    parts = split_money(total, weights, currency)
    assert [str(part) for part in parts] == shares
    assert sum(parts) == total


@pytest.mark.django_db
def test_the_lines_earn_what_the_invoice_bills_net_of_its_discount():
    """Three fees of 10.00 under three plans and a discount of 10.00 on the
    invoice: each line earns 10.00 less its share of the discount (3.34, 3.33,
    3.33), 20.00 in all; a share each rounded on its own (3.33 thrice) would
    earn 20.01, a cent the invoice never billed."""
    customer = CustomerFactory(external_id="shares", currency="USD")
    fees = [
        LineInput(
            "base_fee",
            name,
            None,
            D(1),
            D("10.00"),
            D("10.00"),
            NOV_1,
            DEC_1,
            version=published_version(name, base_fee=D("10.00")),
        )
        for name in ("alpha", "beta", "gamma")
    ]
    discount = LineInput("discount", "Launch", None, D(1), D("-10.00"), D("-10.00"))
    invoice = period_draft(customer, [*fees, discount])
    assert (invoice.subtotal, invoice.discount) == (D("30.00"), D("10.00"))
    # each line's share stamped as the invoice is written
    assert list(invoice.lines.values_list("plan", "discount_share")) == [
        ("alpha", D("3.34")),
        ("beta", D("3.33")),
        ("gamma", D("3.33")),
        ("", D(0)),
    ]

    rows = earned_revenue(start=NOV_1, end=DEC_1, currency="USD", now=DEC_1, view="plan")

    assert {row.key["plan"]: row.earned for row in rows} == {
        "alpha": D("6.66"),
        "beta": D("6.67"),
        "gamma": D("6.67"),
    }
    assert sum(row.earned for row in rows) == invoice.subtotal - invoice.discount == D("20.00")

"""What a sold block's credits (or prepaid money) are worth: their share of
what the block was sold for. One place for the revenue report (wallets.revenue)
and the journal (wallets.journal_entries), so both say the same to the cent."""

from decimal import Decimal, localcontext

from common.money import quantize_money
from plans.pricing import EXACT_PRECISION


def sale_value(price: Decimal, used: Decimal, amount: Decimal) -> Decimal:
    """What `used` of a block's `amount` credits (or money) is worth at what the
    block was sold for, exact: its share of the price."""
    with localcontext(prec=EXACT_PRECISION):
        return price * used / amount


def block_undone(price: Decimal, amount: Decimal, taken: Decimal, currency: str) -> Decimal:
    """The share of a block's price that credit notes took back with `taken` of
    its `amount`, rounded once on the running total."""
    return quantize_money(price * taken / amount, currency)


def block_recognized(
    price: Decimal, amount: Decimal, consumed: Decimal, taken: Decimal, currency: str
) -> Decimal:
    """The revenue a block recognized once `consumed` of its `amount` was used
    (and `taken` taken back), rounded once on the running total; once nothing is
    left, what is not taken back is all of it, to the cent. The journal writes
    the differences of these totals, so that it says what this report says."""
    if consumed + taken == amount:
        return price - block_undone(price, amount, taken, currency)
    return quantize_money(sale_value(price, consumed, amount), currency)

"""A prepaid commit's access shared over its periods (wallets.commit_terms):
each period's share rounded to the currency, the last taking what rounding
left, never a negative share nor more than was committed in all. Found by the
property test of tests/wallets/test_commit_properties.py: 0.02 USD over four
periods gave three shares of 0.01 and a last one of -0.01."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from wallets.commit_terms import access_schedule

START = datetime(2026, 11, 1, tzinfo=UTC)


def periods(count: int) -> list[tuple[datetime, datetime]]:
    return [
        (START + timedelta(days=30 * n), START + timedelta(days=30 * (n + 1))) for n in range(count)
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "count", "shares"),
    [
        # Half up where it fits: the last takes the rest.
        ("12000.00", "USD", 12, ["1000.00"] * 12),
        ("100.00", "USD", 6, ["16.67"] * 5 + ["16.65"]),
        # Half up would share out more than the commit: rounded down instead.
        ("0.02", "USD", 4, ["0.02"]),
        ("1.00", "USD", 36, ["0.02"] * 35 + ["0.30"]),
        ("5", "JPY", 4, ["1", "1", "1", "2"]),
    ],
)
def test_the_shares_add_up_to_the_commit_and_none_is_negative(amount, currency, count, shares):
    rows = access_schedule(
        access="per_period", amount=D(amount), currency=currency, periods=periods(count)
    )

    assert [str(share) for _start, _end, share in rows] == shares
    assert sum(share for _start, _end, share in rows) == D(amount)
    assert all(share > 0 for _start, _end, share in rows)

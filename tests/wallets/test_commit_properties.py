"""Issue 52's property: over random commits and random usage, period after
period through the real close, what was drawn, expired and is left of a
commit add up to what was committed, to the cent, and the invoices' drawdown
lines are what the ledger drew."""

import itertools
from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.close import periods_close
from common.vocabulary import LineKind
from customers.services import customer_create
from invoices.models import InvoiceLine
from tests.factories import subscribe
from tests.wallets.test_commits import (
    assert_commit_adds_up,
    catalog,
    movements,
    post_usage,
    sign,
)
from wallets.commit_models import Commit

__all__ = ["catalog"]

EXAMPLES = itertools.count()


def month(k: int) -> datetime:
    return datetime(2026 + (10 + k) // 12, (10 + k) % 12 + 1, 1, tzinfo=UTC)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cents=st.integers(1, 300_000),
    access=st.sampled_from(["per_period", "upfront"]),
    rollover=st.one_of(
        st.none(), st.tuples(st.decimals("0.01", "100", places=2), st.integers(1, 3))
    ),
    usage=st.lists(st.integers(0, 400_000), min_size=1, max_size=4),
)
def test_drawn_expired_and_remaining_add_up_to_the_commit(catalog, cents, access, rollover, usage):
    code = f"c{next(EXAMPLES)}"
    customer = customer_create(external_id=code, name=code, currency="USD")
    subscribe(customer, "ai", start=month(0))
    periods = len(usage)
    amount = D(cents) / 100
    body = {
        "amount": f"{amount:.2f}",
        "currency": "USD",
        "starts_at": month(0).isoformat(),
        "ends_at": month(periods).isoformat(),
        "billing": "prepaid",
        "access": access,
        "applies_to": ["llm_tokens"],
        "overage_multiplier": "1.25",
    }
    if rollover and access == "per_period":
        body["rollover"] = {"percent": str(rollover[0]), "expires_after_periods": rollover[1]}
    signed = sign(code, body, at=month(0))
    assert signed.status_code == 201, signed.json()
    commit = Commit.objects.get(customer=customer)
    for k, tokens_cents in enumerate(usage):
        if tokens_cents:
            # 1.00 per 1,000 tokens: ten tokens a cent.
            post_usage(code, month(k).replace(day=9), tokens=tokens_cents * 10, gb=0)
        periods_close(as_of=month(k + 1))
        assert_commit_adds_up(commit)
    commit.refresh_from_db()
    assert commit.status == Commit.ENDED
    # Nothing is left once the term is over: all drawn or expired.
    drawn = -sum(e.amount for e in movements(commit, "drawdown"))
    expired = -sum(e.amount for e in movements(commit, "expiry"))
    assert drawn + expired == amount
    on_invoices = -sum(
        line.amount
        for line in InvoiceLine.objects.filter(
            invoice__customer=customer, kind=LineKind.COMMIT_DRAWDOWN
        )
    )
    assert on_invoices == drawn
    # Never more drawn than the usage.
    assert drawn <= sum(D(c) / 100 for c in usage)

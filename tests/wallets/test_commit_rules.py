"""Three rules of a commit's draws that no test guarded (issue 94): a rolled-over
share of a money commit is rounded down to the cent, a postpaid commit whose usage
met it exactly has no true-up invoice (one cent short has one of one cent), and a
second credit note on a prepaid commit's invoice takes back only what it credits.
Through the API and the close, with exact amounts."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from common.errors import Conflict
from invoices.credit_notes import CreditLineInput, credit_note_issue
from invoices.models import Invoice
from tests.wallets.test_commits import (  # noqa: F401 (catalog: the fixture)
    DEC_1,
    S27_PREPAID,
    access_blocks,
    assert_commit_adds_up,
    catalog,
    customer_on_plan,
    movements,
    post_usage,
    sign,
)
from wallets.commit_models import Commit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

SEP_1_2027 = datetime(2027, 9, 1, tzinfo=UTC)
OCT_1_2027 = datetime(2027, 10, 1, tzinfo=UTC)


def test_a_rolled_over_share_is_rounded_down_to_the_cent():
    customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    # 10 tokens at 1.00 a thousand: 0.01 drawn, 999.99 of November's 1,000.00 left.
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=10)
    periods_close(as_of=DEC_1)
    commit = Commit.objects.get()
    (rollover,) = access_blocks(commit, "rollover")
    # 50 % of 999.99 is 499.995: 499.99 rolls over (half up would carry 500.00).
    assert rollover.amount == D("499.99")
    (expired,) = movements(commit, "expiry")
    assert expired.amount == D("-500.00")
    assert_commit_adds_up(commit)


@pytest.mark.parametrize(
    ("tokens", "true_up"),
    [(1_000_000, None), (999_990, D("0.01"))],
    ids=["met-exactly", "one-cent-short"],
)
def test_a_postpaid_commit_met_exactly_has_no_true_up_invoice(tokens, true_up):
    customer, _subscription = customer_on_plan("beta")
    body = {
        "amount": "1000.00",
        "currency": "USD",
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2026-12-01T00:00:00Z",
        "billing": "postpaid",
        "applies_to": ["llm_tokens"],
    }
    signed = sign("beta", body)
    assert signed.status_code == 201, signed.json()
    post_usage("beta", datetime(2026, 11, 10, tzinfo=UTC), tokens=tokens)
    periods_close(as_of=DEC_1)
    commit = Commit.objects.get()
    assert commit.status == Commit.ENDED
    true_ups = Invoice.objects.filter(customer=customer, reason=Invoice.COMMIT_TRUE_UP)
    if true_up is None:
        assert not true_ups.exists()
        assert commit.true_up_invoice is None
    else:
        (invoice,) = true_ups
        assert invoice.total == true_up
        assert commit.true_up_invoice == invoice


def test_a_second_credit_note_takes_back_only_what_it_credits():
    customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=800_000)
    periods_close(as_of=DEC_1)
    commit = Commit.objects.get()
    line = commit.invoice.lines.get()

    def left() -> D:
        return sum(a.remaining for a in access_blocks(commit))

    credit_note_issue(
        invoice=commit.invoice,
        lines=[CreditLineInput(line.pk, D("1000.00"))],
        reason="order_change",
        now=DEC_1,
    )
    before = left()
    credit_note_issue(
        invoice=commit.invoice,
        lines=[CreditLineInput(line.pk, D("300.00"))],
        reason="order_change",
        now=DEC_1,
    )
    # 300.00 more, from the term's last period with access left (September 2027's,
    # October's taken by the first note; August's untouched): not the first note's
    # 1,000.00 again.
    assert before - left() == D("300.00")
    by_start = {a.effective_at: a.remaining for a in access_blocks(commit, "period")}
    assert by_start[OCT_1_2027] == D("0.00")
    assert by_start[SEP_1_2027] == D("700.00")
    assert by_start[datetime(2027, 8, 1, tzinfo=UTC)] == D("1000.00")
    assert -sum(e.amount for e in movements(commit, "credited")) == D("1300.00")
    # What is left to credit is what is left of the access: 800 drawn, 100 expired,
    # 1,300.00 credited, 9,800.00 left.
    with pytest.raises(Conflict) as refused:
        credit_note_issue(
            invoice=commit.invoice,
            lines=[CreditLineInput(line.pk, D("9800.01"))],
            reason="order_change",
            now=DEC_1,
        )
    assert "at most 9800.00 can be credited" in refused.value.message
    assert_commit_adds_up(commit)

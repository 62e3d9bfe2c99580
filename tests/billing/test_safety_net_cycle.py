"""Safety net for the billing cycle's money rules where the worked scenarios' round
numbers cannot tell a right rule from a wrong one (S10 changes plan at midnight,
15 of 30 days left: proration by the day gives the same figures):

- proration is by the second, for a calendar subscription's first partial period
  and for an immediate plan change, cancel or seat change
  (billing.invoicing.period_lines.remaining_fraction);
- the minimum commitment is prorated to the part of a period a version billed
  (billing.invoicing.period_lines.rate_usage / usage_rated), and no true-up line is written at
  exactly the commitment;
- late usage re-rates every billed period inside the late window, not only the
  last one, and a true-up it changes is billed (billing.invoicing.period_lines.late_usage_lines);
- a calendar subscription's first, partial period is a share of its whole month
  for every proration in it (common.periods.whole_period and period_share): its
  fixed fees, a change, cancel or seat change in it, its commitment (at the close,
  on either side of a change, and re-rated for late usage), the usage projection
  and the spend limit.

Through the services, with time set explicitly; exact amounts."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.subscriptions.lifecycle import (
    subscription_cancel,
    subscription_change_plan,
    subscription_set_seats,
)
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from invoices.models import CreditNote, Invoice
from plans.models import PlanVersion
from plans.validation import ChargeSpec
from tests.factories import (
    CustomerFactory,
    MeterFactory,
    overage,
    per_unit,
    prompts_meter,
    published_version,
    subscribe,
)

pytestmark = pytest.mark.django_db

SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, tzinfo=UTC)
# Mid-day: 14.5 of November's 30 days are left; whole days would say 14 (or 15).
NOV_16_NOON = datetime(2026, 11, 16, 12, tzinfo=UTC)
# 10.5 of 30 days gone (a share of 0.35), 19.5 left (0.65).
NOV_11_NOON = datetime(2026, 11, 11, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
DEC_3 = datetime(2026, 12, 3, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
# In a first calendar period from Nov 16 12:00 (14.5 of November's 30 days): 7.5
# days gone, 7 of the month's 30 left.
NOV_24 = datetime(2026, 11, 24, tzinfo=UTC)


def post(event_name: str, *, at: datetime, now: datetime, count: int = 1, prefix: str, **props):
    events = [
        {
            "id": f"{prefix}{i}",
            "customer": "acme",
            "event_name": event_name,
            "timestamp": at.isoformat(),
            "properties": props,
        }
        for i in range(count)
    ]
    result = events_ingest(events=events, now=now)
    assert result.rejected == [], result.rejected


def lines(invoice: Invoice) -> list[tuple[str, D]]:
    return [(line.kind, line.amount) for line in invoice.lines.all()]


def unused_time(subscription) -> tuple[str, list[tuple[str, D]]]:
    """The credit note an immediate cancel or plan change issued for the unused
    time (billing.invoicing.unused_time): the reason of the invoice it credits (the
    one that charged the fees), and the kind and amount of each line it credits."""
    note = CreditNote.objects.get(invoice__subscription=subscription)
    return note.invoice.reason, [
        (line.invoice_line.kind, line.amount) for line in note.lines.order_by("position")
    ]


def period_invoice(period_start: datetime) -> Invoice:
    return Invoice.objects.get(reason="period", period_start=period_start)


# Proration by the second


def test_a_first_partial_calendar_period_is_prorated_by_the_second(acme):
    """Rule: a calendar subscription's first period bills its fixed fees for the
    part of the month it covers, by the second: from Nov 16 12:00, 14.5 of 30
    days: 20.00 x 14.5/30 = 9.666.. -> 9.67, two seats at 10.00 the same."""
    # given
    team = published_version("team", base_fee=D("20.00"), seat_price=D("10.00"))

    # when
    subscribe(acme, team, start=NOV_16_NOON, seats=2, billing_anchor="calendar")

    # then
    start = Invoice.objects.get(reason="start")
    assert (start.period_start, start.period_end) == (NOV_16_NOON, DEC_1)
    assert lines(start) == [("base_fee", D("9.67")), ("seats", D("9.67"))]
    assert start.total == D("19.34")


def test_a_first_partial_calendar_period_counts_the_seconds_of_a_local_month(db):
    """Rule: by the second in the customer's time zone: in New York, November 2026
    runs from Nov 1 04:00 UTC (EDT) to Dec 1 05:00 UTC (EST), 30 days and an hour;
    from Nov 16 12:00 UTC 14 days 17 hours are left: 20.00 x 1,270,800 / 2,595,600
    = 9.7919.. -> 9.79."""
    # given
    customer = CustomerFactory(external_id="acme", timezone_name="America/New_York")
    flat = published_version("flat", base_fee=D("20.00"))

    # when
    subscribe(customer, flat, start=NOV_16_NOON, billing_anchor="calendar")

    # then
    start = Invoice.objects.get(reason="start")
    assert start.period_end == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert lines(start) == [("base_fee", D("9.79"))]


@pytest.fixture
def starter_pro(db):
    """S10's plans: starter 20.00 a month, pro 50.00; prompts at 0.01 on starter."""
    prompts_meter()
    starter = published_version(
        "starter",
        base_fee=D("20.00"),
        charges=(overage("prompts", 0, "0.01"),),
    )
    return starter, published_version("pro", base_fee=D("50.00"))


def test_a_plan_change_is_prorated_by_the_second(acme, starter_pro):
    """Rule: an immediate change credits the unused part of the old fixed fees and
    charges the rest of the period on the new ones, by the second: at Nov 16 12:00
    (14.5 of 30 days left) 20.00 x 14.5/30 = 9.67 credited by a credit note against
    the start invoice, and 50.00 x 14.5/30 = 24.17 charged."""
    # given: starter from November 1st, 100 prompts by the 10th
    starter, pro = starter_pro
    subscription = subscribe(acme, starter)
    post("prompt", at=datetime(2026, 11, 10, tzinfo=UTC), now=NOV_16_NOON, count=100, prefix="p")

    # when
    _, change = subscription_change_plan(
        subscription=subscription, version=pro, effective="immediate", at=NOV_16_NOON
    )

    # then
    assert lines(change) == [
        ("overage", D("1.00")),
        ("proration_charge", D("24.17")),
    ]
    assert change.total == D("25.17")
    assert unused_time(subscription) == ("start", [("base_fee", D("9.67"))])


def test_an_immediate_cancel_credits_by_the_second(acme, starter_pro):
    starter, _ = starter_pro
    subscription = subscribe(acme, starter)

    _, cancel = subscription_cancel(
        subscription=subscription, effective="immediate", at=NOV_16_NOON
    )

    # no usage to bill: no cancel invoice, only the credit note
    assert cancel is None
    assert unused_time(subscription) == ("start", [("base_fee", D("9.67"))])


def test_a_seat_change_is_prorated_by_the_second(acme):
    """Rule: seats added mid-period are charged from their moment to the period's
    end, by the second: 2 more seats at 10.00 for 14.5 of 30 days = 9.67."""
    # given
    team = published_version("team", seat_price=D("10.00"))
    subscription = subscribe(acme, team, seats=1)

    # when
    subscription_set_seats(subscription=subscription, seats=3, at=NOV_16_NOON)
    periods_close(as_of=DEC_1)

    # then: the seat charge, then December's three seats in advance
    assert lines(period_invoice(NOV_1)) == [
        ("proration_charge", D("9.67")),
        ("seats", D("30.00")),
    ]


# The minimum commitment for part of a period


@pytest.fixture
def commitments(db):
    """API calls at 0.001 each (a sum of `n`), no base fee: commit_300 commits to
    300.00 a month, commit_600 to 600.00, commit_500 (S9) to 500.00."""
    MeterFactory(
        code="api_calls",
        name="API calls",
        event_name="api.call",
        aggregation="sum",
        value_property="n",
    )

    def committed(code: str, amount: str) -> PlanVersion:
        return published_version(
            code,
            minimum_commitment=D(amount),
            charges=(ChargeSpec("api_calls", "overage", pricing=per_unit("0.001")),),
        )

    return {
        code: committed(code, amount)
        for code, amount in (
            ("commit_300", "300.00"),
            ("commit_600", "600.00"),
            ("commit_500", "500.00"),
        )
    }


def test_the_commitment_is_prorated_on_both_sides_of_a_plan_change(acme, commitments):
    """Rule: each version's commitment counts for the share of the period it
    billed, by the second. Change at Nov 11 12:00: commit_300 for 0.35 of the
    month = 105.00 against 50.00 of usage (true-up 55.00); commit_600 for 0.65 =
    390.00 against 100.00 (true-up 290.00)."""
    # given: 50,000 calls on commit_300
    subscription = subscribe(acme, commitments["commit_300"])
    post("api.call", at=datetime(2026, 11, 5, tzinfo=UTC), now=NOV_11_NOON, prefix="a", n=50_000)

    # when: an immediate change to commit_600, then 100,000 calls, then the close
    _, change = subscription_change_plan(
        subscription=subscription,
        version=commitments["commit_600"],
        effective="immediate",
        at=NOV_11_NOON,
    )
    post("api.call", at=datetime(2026, 11, 20, tzinfo=UTC), now=DEC_1, prefix="b", n=100_000)
    periods_close(as_of=DEC_1)

    # then
    assert lines(change) == [("overage", D("50.00")), ("minimum_commitment", D("55.00"))]
    assert lines(period_invoice(NOV_1)) == [
        ("overage", D("100.00")),
        ("minimum_commitment", D("290.00")),
    ]


def test_no_true_up_line_at_exactly_the_commitment(acme, commitments):
    """Rule: usage of exactly the commitment (S9: 500,000 calls = 500.00) writes no
    true-up line, not a line of 0.00."""
    subscribe(acme, commitments["commit_500"])
    post("api.call", at=datetime(2026, 11, 5, tzinfo=UTC), now=DEC_1, prefix="a", n=500_000)

    periods_close(as_of=DEC_1)

    assert lines(period_invoice(NOV_1)) == [("overage", D("500.00"))]


def test_no_true_up_line_at_exactly_a_prorated_commitment(acme, commitments):
    """Rule: the same for a prorated commitment: 105,000 calls = 105.00 = 300.00 x
    0.35 up to a change at Nov 11 12:00."""
    subscription = subscribe(acme, commitments["commit_300"])
    post("api.call", at=datetime(2026, 11, 5, tzinfo=UTC), now=NOV_11_NOON, prefix="a", n=105_000)

    _, change = subscription_change_plan(
        subscription=subscription,
        version=commitments["commit_600"],
        effective="immediate",
        at=NOV_11_NOON,
    )

    assert lines(change) == [("overage", D("105.00"))]


def test_a_first_partial_calendar_period_prorates_the_commitment(acme, commitments):
    """Rule: a partial first period commits to its share of the commitment, as its
    fixed fees are prorated (and as the price simulation rates it): from Nov 16
    12:00, 300.00 x 14.5/30 = 145.00."""
    subscribe(acme, commitments["commit_300"], start=NOV_16_NOON, billing_anchor="calendar")

    periods_close(as_of=DEC_1)

    assert lines(period_invoice(NOV_16_NOON)) == [("minimum_commitment", D("145.00"))]


def test_no_zero_true_up_line_when_the_prorated_commitment_rounds_to_the_usage(acme):
    """Rule: no true-up line of 0.00: 300.01 x 0.35 = 105.0035 is 105.00 to the
    cent, which 105,000 calls (105.00) meet."""
    MeterFactory(
        code="api_calls",
        name="API calls",
        event_name="api.call",
        aggregation="sum",
        value_property="n",
    )
    odd = published_version(
        "commit_300_01",
        minimum_commitment=D("300.01"),
        charges=(ChargeSpec("api_calls", "overage", pricing=per_unit("0.001")),),
    )
    other = published_version("other", base_fee=D("1.00"))
    subscription = subscribe(acme, odd)
    post("api.call", at=datetime(2026, 11, 5, tzinfo=UTC), now=NOV_11_NOON, prefix="a", n=105_000)

    _, change = subscription_change_plan(
        subscription=subscription, version=other, effective="immediate", at=NOV_11_NOON
    )

    assert [kind for kind, _ in lines(change)] == ["overage", "proration_charge"]


# Late usage


@pytest.fixture
def ai_assistant(db):
    """S1's plan: 19.99 a month, 200 prompts included, 0.05 a prompt beyond."""
    prompts_meter()
    return published_version(
        "ai_assistant",
        base_fee=D("19.99"),
        charges=(overage("prompts", 200, "0.05"),),
    )


def test_late_usage_re_rates_every_billed_period_in_the_late_window(acme, ai_assistant):
    """Rule: late usage is billed for every period inside the late window (35
    days), not only the one that ended last: on Nov 3, prompts stamped Sep 30 and
    Oct 28 both arrive; the invoice closing November bills each at its period."""
    # given: 250 prompts in September and in October, both periods closed and final
    subscribe(acme, ai_assistant, start=SEP_1)
    post("prompt", at=datetime(2026, 9, 20, tzinfo=UTC), now=OCT_1, count=250, prefix="s")
    periods_close(as_of=OCT_1)
    post("prompt", at=datetime(2026, 10, 20, tzinfo=UTC), now=NOV_1, count=250, prefix="o")
    periods_close(as_of=NOV_1)
    billed = {i.pk: (i.status, i.total) for i in Invoice.objects.filter(reason="period")}
    assert sorted(billed.values()) == [("finalized", D("22.49")), ("finalized", D("22.49"))]

    # when: 10 prompts stamped in each, 33.5 and 6 days old
    post("prompt", at=datetime(2026, 9, 30, 12, tzinfo=UTC), now=NOV_3, count=10, prefix="ls")
    post("prompt", at=datetime(2026, 10, 28, tzinfo=UTC), now=NOV_3, count=10, prefix="lo")
    periods_close(as_of=DEC_1)

    # then: a late line for each period, at its prices; their invoices unchanged
    late = period_invoice(NOV_1).lines.filter(kind="late_usage").order_by("period_start")
    assert [(line.description, line.quantity, line.amount) for line in late] == [
        ("Late usage for Sep 2026: Prompts", D(10), D("0.50")),
        ("Late usage for Oct 2026: Prompts", D(10), D("0.50")),
    ]
    assert {
        i.pk: (i.status, i.total)
        for i in Invoice.objects.filter(reason="period").exclude(period_start=NOV_1)
    } == billed


def test_late_usage_that_changes_a_true_up_is_billed(acme, commitments):
    """Rule: late usage re-rates its period's true-up too. October: 450.00 of usage
    and a true-up of 50.00 (S9's commitment of 500.00). 100.00 of late calls make
    October 550.00 with no true-up: billed +100.00 of usage and -50.00 of true-up,
    50.00 in all (not 100.00: the commitment had already paid for 50.00 of it)."""
    # given
    subscribe(acme, commitments["commit_500"], start=OCT_1)
    post("api.call", at=datetime(2026, 10, 20, tzinfo=UTC), now=NOV_1, prefix="o", n=450_000)
    periods_close(as_of=NOV_1)
    assert lines(period_invoice(OCT_1)) == [
        ("overage", D("450.00")),
        ("minimum_commitment", D("50.00")),
    ]

    # when: on Nov 3, 100,000 calls stamped in October; 600,000 in November
    post("api.call", at=datetime(2026, 10, 28, tzinfo=UTC), now=NOV_3, prefix="late", n=100_000)
    post("api.call", at=datetime(2026, 11, 20, tzinfo=UTC), now=DEC_1, prefix="n", n=600_000)
    periods_close(as_of=DEC_1)

    # then
    november = period_invoice(NOV_1)
    assert lines(november) == [
        ("overage", D("600.00")),
        ("late_usage", D("100.00")),
        ("late_usage", D("-50.00")),
    ]
    adjustment = november.lines.get(kind="late_usage", amount=D("-50.00"))
    assert adjustment.description == "Late usage for Oct 2026: minimum commitment adjustment"
    assert november.total == D("650.00")
    assert lines(period_invoice(OCT_1)) == [
        ("overage", D("450.00")),
        ("minimum_commitment", D("50.00")),
    ]


# A calendar subscription's first, partial period: a share of its whole month
#
# From Nov 16 12:00 to Dec 1 the period is 14.5 of November's 30 days, and its
# fixed fees were billed for 14.5/30 of a month. Whatever prorates within it
# counts against the month too: 7 days left at Nov 24 are 7/30 of a month, not
# 7/14.5 (which would credit more than was paid for those days).


def test_a_plan_change_in_a_first_partial_calendar_period_prorates_against_the_month(
    acme, starter_pro
):
    """Rule: starter was billed 20.00 x 14.5/30 = 9.67 for its first period; a change
    at Nov 24 credits its 7 unused days, 20.00 x 7/30 = 4.67 against the start
    invoice (starter kept 5.00, 20.00 x 7.5/30), and charges pro for them, 50.00 x
    7/30 = 11.67."""
    # given: starter, calendar-anchored from Nov 16 12:00; 100 prompts by Nov 20
    starter, pro = starter_pro
    subscription = subscribe(acme, starter, start=NOV_16_NOON, billing_anchor="calendar")
    assert lines(Invoice.objects.get(reason="start")) == [("base_fee", D("9.67"))]
    post("prompt", at=datetime(2026, 11, 20, tzinfo=UTC), now=NOV_24, count=100, prefix="p")

    # when
    _, change = subscription_change_plan(
        subscription=subscription, version=pro, effective="immediate", at=NOV_24
    )
    periods_close(as_of=DEC_1)

    # then: the change; the close bills December's pro base fee whole
    assert lines(change) == [
        ("overage", D("1.00")),
        ("proration_charge", D("11.67")),
    ]
    assert change.total == D("12.67")
    assert unused_time(subscription) == ("start", [("base_fee", D("4.67"))])
    assert lines(period_invoice(NOV_16_NOON)) == [("base_fee", D("50.00"))]


def test_an_immediate_cancel_in_a_first_partial_calendar_period_credits_against_the_month(
    acme, starter_pro
):
    """Rule: the unused 7 days of the 9.67 paid are 20.00 x 7/30 = 4.67."""
    starter, _ = starter_pro
    subscription = subscribe(acme, starter, start=NOV_16_NOON, billing_anchor="calendar")

    _, cancel = subscription_cancel(subscription=subscription, effective="immediate", at=NOV_24)

    assert cancel is None
    assert unused_time(subscription) == ("start", [("base_fee", D("4.67"))])


def test_a_cancel_in_a_first_partial_calendar_period_counts_the_seconds_of_a_local_month(db):
    """Rule: against the customer's month, by the second: in New York the first
    period (Nov 16 12:00 UTC to Dec 1 05:00 UTC) was billed 9.79 (see above); a
    cancel at Nov 24 05:00 UTC (midnight EST) leaves 7 days, 604,800 of November's
    2,595,600 seconds there: 20.00 x 604,800 / 2,595,600 = 4.6601.. -> 4.66,
    credited against the start invoice."""
    customer = CustomerFactory(external_id="acme", timezone_name="America/New_York")
    flat = published_version("flat", base_fee=D("20.00"))
    subscription = subscribe(customer, flat, start=NOV_16_NOON, billing_anchor="calendar")

    _, cancel = subscription_cancel(
        subscription=subscription,
        effective="immediate",
        at=datetime(2026, 11, 24, 5, tzinfo=UTC),
    )

    assert cancel is None
    assert unused_time(subscription) == ("start", [("base_fee", D("4.66"))])


def test_after_a_trial_a_calendar_period_is_prorated_against_itself(acme):
    """Rule (as billed today): a subscription that began with a trial (Nov 2 to Nov
    16) has its calendar periods anchored at the trial's end, and the close bills
    the fees of [Nov 16, Dec 1) whole, 20.00; a cancel at Nov 24 credits the
    unused 7 of those 15 days against that close's invoice: 20.00 x 7/15 = 9.33."""
    # given
    trial = published_version("trial", base_fee=D("20.00"), trial_days=14)
    subscription = subscribe(
        acme, trial, start=datetime(2026, 11, 2, tzinfo=UTC), billing_anchor="calendar"
    )
    periods_close(as_of=datetime(2026, 11, 16, tzinfo=UTC))
    trial_close = Invoice.objects.get(reason="period")
    assert lines(trial_close) == [("base_fee", D("20.00"))]

    # when
    _, cancel = subscription_cancel(subscription=subscription, effective="immediate", at=NOV_24)

    # then
    assert cancel is None
    assert unused_time(subscription) == ("period", [("base_fee", D("9.33"))])


def test_a_seat_change_in_a_first_partial_calendar_period_prorates_against_the_month(acme):
    """Rule: one seat at 10.00 was billed 10.00 x 14.5/30 = 4.83; 2 more seats from
    Nov 24 are 2 x 10.00 x 7/30 = 4.67 on the close, then December's 3 seats."""
    # given
    team = published_version("team", seat_price=D("10.00"))
    subscription = subscribe(acme, team, start=NOV_16_NOON, seats=1, billing_anchor="calendar")
    assert lines(Invoice.objects.get(reason="start")) == [("seats", D("4.83"))]

    # when
    subscription_set_seats(subscription=subscription, seats=3, at=NOV_24)
    periods_close(as_of=DEC_1)

    # then
    assert lines(period_invoice(NOV_16_NOON)) == [
        ("proration_charge", D("4.67")),
        ("seats", D("30.00")),
    ]


def test_a_change_in_a_first_partial_calendar_period_prorates_both_commitments_to_the_month(
    acme, commitments
):
    """Rule: commit_300 from Nov 16 12:00 to Nov 24 commits to 300.00 x 7.5/30 =
    75.00 against 50.00 of usage (true-up 25.00); commit_600 from Nov 24 to Dec 1
    to 600.00 x 7/30 = 140.00 against 100.00 (true-up 40.00)."""
    # given: 50,000 calls on commit_300, calendar-anchored from Nov 16 12:00
    subscription = subscribe(
        acme, commitments["commit_300"], start=NOV_16_NOON, billing_anchor="calendar"
    )
    post("api.call", at=datetime(2026, 11, 20, tzinfo=UTC), now=NOV_24, prefix="a", n=50_000)

    # when: an immediate change to commit_600, 100,000 calls, the close
    _, change = subscription_change_plan(
        subscription=subscription,
        version=commitments["commit_600"],
        effective="immediate",
        at=NOV_24,
    )
    post("api.call", at=datetime(2026, 11, 28, tzinfo=UTC), now=DEC_1, prefix="b", n=100_000)
    periods_close(as_of=DEC_1)

    # then
    assert lines(change) == [("overage", D("50.00")), ("minimum_commitment", D("25.00"))]
    assert lines(period_invoice(NOV_16_NOON)) == [
        ("overage", D("100.00")),
        ("minimum_commitment", D("40.00")),
    ]


def test_late_usage_re_rates_a_first_partial_calendar_period_against_the_month(acme, commitments):
    """Rule: late usage re-rates the first period with its prorated commitment:
    100.00 of usage against 145.00 was a true-up of 45.00; 60.00 of late calls
    make it 160.00, past 145.00: +60.00 of usage and -45.00 of true-up (against
    the whole 300.00 it would be -60.00)."""
    # given: 100,000 calls in the first period, closed
    subscribe(acme, commitments["commit_300"], start=NOV_16_NOON, billing_anchor="calendar")
    post("api.call", at=datetime(2026, 11, 20, tzinfo=UTC), now=DEC_1, prefix="a", n=100_000)
    periods_close(as_of=DEC_1)
    assert lines(period_invoice(NOV_16_NOON)) == [
        ("overage", D("100.00")),
        ("minimum_commitment", D("45.00")),
    ]

    # when: on Dec 3, 60,000 calls stamped Nov 25; December has no usage
    post("api.call", at=datetime(2026, 11, 25, tzinfo=UTC), now=DEC_3, prefix="late", n=60_000)
    periods_close(as_of=JAN_1)

    # then: December's whole commitment, and the late lines for the first period
    assert lines(period_invoice(DEC_1)) == [
        ("minimum_commitment", D("300.00")),
        ("late_usage", D("60.00")),
        ("late_usage", D("-45.00")),
    ]


@pytest.fixture
def committed_with_fee(commitments):
    """20.00 a month, API calls at 0.001, a minimum commitment of 300.00."""
    return published_version(
        "committed_with_fee",
        base_fee=D("20.00"),
        minimum_commitment=D("300.00"),
        charges=(ChargeSpec("api_calls", "overage", pricing=per_unit("0.001")),),
    )


def test_the_usage_projection_of_a_first_partial_calendar_period_prorates_fees_and_commitment(
    api, acme, committed_with_fee
):
    """Rule: /usage prices the period as the close will: at Nov 24, 50,000 calls in
    7.5 of the period's 14.5 days. Subtotal: 20.00 x 14.5/30 = 9.67 and 50.00 of
    usage = 59.67. Projected: the calls to 96,666.67 (96.67), short of the
    commitment's 300.00 x 14.5/30 = 145.00: 9.67 + 145.00 = 154.67."""
    # given
    subscribe(acme, committed_with_fee, start=NOV_16_NOON, billing_anchor="calendar")
    post("api.call", at=datetime(2026, 11, 20, tzinfo=UTC), now=NOV_24, prefix="a", n=50_000)

    # when
    with time_machine.travel(NOV_24, tick=False):
        response = api.get("/api/v1/customers/acme/usage")

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["period_start"], body["period_end"]) == (
        "2026-11-16T12:00:00Z",
        "2026-12-01T00:00:00Z",
    )
    assert (body["subtotal"], body["projected_total"]) == ("59.67", "154.67")


def test_the_spend_limit_counts_a_first_partial_calendar_period_s_prorated_commitment(
    api, acme, commitments
):
    """Rule: the spend a limit counts is what the close will bill: in the first
    period from Nov 16 12:00, the commitment is 145.00 (not 300.00). One more call
    makes 145.00: within a hard limit of 200.00, beyond one of 140.00."""
    # given
    subscribe(acme, commitments["commit_300"], start=NOV_16_NOON, billing_anchor="calendar")

    def check() -> dict:
        with time_machine.travel(NOV_24, tick=False):
            response = api.post(
                "/api/v1/customers/acme/check",
                {"meter": "api_calls", "quantity": 1},
                format="json",
            )
        assert response.status_code == 200, response.content
        return response.json()

    # when / then
    Customer.objects.filter(pk=acme.pk).update(spend_limit=D("200.00"), spend_limit_mode="hard")
    assert (check()["allowed"], check()["reason"]) == (True, "ok")
    Customer.objects.filter(pk=acme.pk).update(spend_limit=D("140.00"))
    assert (check()["allowed"], check()["reason"]) == (False, "spend_limit_reached")

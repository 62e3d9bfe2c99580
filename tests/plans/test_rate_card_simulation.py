"""Price simulation of a rate card (issue 50): October's real token usage
rated at a draft card prices each row's usage, and equals what the close bills
once the card is published and the period closed at it; the CSV shows each
row's quantity."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from billing.models import Subscription
from billing.simulation import engine, report
from billing.subscriptions.lifecycle import subscription_create
from customers.services import customer_create
from invoices.models import Invoice
from plans.overrides import ChargeOverride, Overrides
from plans.pricing import PER_UNIT, PricingSpec
from plans.services import plan_create, plan_version_create, plan_version_publish
from plans.validation import ChargeSpec, VersionSpec
from tests.rate_cards import CARD_TOTAL, card_charge, llm_tokens, rate, send_tokens

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_10 = datetime(2026, 10, 10, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_21 = datetime(2026, 11, 21, 12, tzinfo=UTC)

# v1: every token at 0.000003: 2,020,000 tokens bill 6.06.
V1_TOTAL = D("6.06")
GPT_4O = (("model", "gpt-4o"),)


@pytest.fixture
def october(db):
    """acme on v1 (one price) with October's tokens; v2 a draft rate card."""
    llm_tokens()
    plain = ChargeSpec("llm_tokens", "overage", D(0), pricing=PricingSpec(PER_UNIT, D("0.000003")))
    v1 = plan_create(
        code="tokens",
        name="Tokens",
        version=VersionSpec(currency="USD", charges=(plain,)),
        publish=True,
    )
    v2 = plan_version_create(
        plan=v1.plan, version=VersionSpec(currency="USD", charges=(card_charge(),))
    )
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscription_create(customer=acme, plan=v1.plan, start=OCT_1)
    send_tokens("acme", OCT_10)
    return acme, subscription, v2


def simulate(version, customers):
    return engine.simulation_request(
        version=version,
        period_start=OCT_1,
        period_end=NOV_1,
        customers=customers,
        selection="test",
        user=None,
        now=NOV_21,
    )


def test_a_draft_card_on_real_usage_equals_the_close_at_that_card(october):
    acme, subscription, v2 = october

    # when: October simulated at the draft card
    result = simulate(v2, [acme])

    # then: each row priced (2.50 + 2.00 + 0.90 + 2.08), against 6.06 at v1
    (row,) = report.simulation_rows(simulation=result)
    assert (row.current_total, row.simulated_total, row.difference) == (
        V1_TOTAL,
        CARD_TOTAL,
        CARD_TOTAL - V1_TOTAL,
    )

    # when: the card published and October closed at it
    plan_version_publish(version=v2)
    Subscription.objects.filter(pk=subscription.pk).update(version=v2)
    periods_close(as_of=NOV_1)

    # then: the invoice bills what the simulation said, line per row
    invoice = Invoice.objects.get(customer=acme, reason="period", period_start=OCT_1)
    assert invoice.total == row.simulated_total == CARD_TOTAL
    assert [line.amount for line in invoice.lines.filter(meter="llm_tokens")] == [
        D("2.50"),
        D("2.00"),
        D("0.90"),
        D("2.08"),
    ]
    # and October simulated again, now at the card it was billed at: no difference
    again = engine.simulation_rate_customer(
        customer=acme, version=v2, period_start=OCT_1, period_end=NOV_1
    )
    assert (again.current_total, again.simulated_total) == (CARD_TOTAL, CARD_TOTAL)


def test_the_csv_shows_each_rows_tokens(october):
    acme, _, v2 = october

    result = simulate(v2, [acme])

    (_, line) = csv.reader(io.StringIO(report.simulation_csv(simulation=result)))
    assert line == [
        "acme",
        "Acme",
        "Tokens v1",
        "6.06",
        "7.48",
        "1.42",
        "USD",
        "llm_tokens by rate: gpt-4o · input 1000000, gpt-4o · output 200000, "
        "claude-sonnet 300000, other usage 520000",
    ]


def test_a_deals_rows_go_on_a_draft_card_priced_by_the_same_properties_only(db):
    # given: acme on a card with a deal's rows (any gpt-4o token 2.00 per 1M, the
    # rest 1.00), and two drafts: the card repriced (same properties) and a
    # card priced by model alone
    llm_tokens()
    v1 = plan_create(
        code="tokens",
        name="Tokens",
        version=VersionSpec(currency="USD", charges=(card_charge(),)),
        publish=True,
    )
    deal = Overrides(
        charges=(ChargeOverride("llm_tokens", rates=(rate(GPT_4O, "2.00"), rate((), "1.00"))),)
    )
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription_create(customer=acme, plan=v1.plan, start=OCT_1, overrides=deal)
    send_tokens("acme", OCT_10)
    repriced = plan_version_create(
        plan=v1.plan,
        version=VersionSpec(currency="USD", charges=(card_charge((rate((), "9.00"),)),)),
    )
    by_model = ChargeSpec(
        "llm_tokens",
        "overage",
        D(0),
        price_by=("model",),
        rates=(rate(GPT_4O, "1.00"), rate((), "2.00")),
    )
    other = plan_version_create(
        plan=v1.plan, version=VersionSpec(currency="USD", charges=(by_model,))
    )

    # when
    same = engine.simulation_rate_customer(
        customer=acme, version=repriced, period_start=OCT_1, period_end=NOV_1
    )
    dropped = engine.simulation_rate_customer(
        customer=acme, version=other, period_start=OCT_1, period_end=NOV_1
    )

    # then: at the deal, gpt-4o's 1,700,000 tokens 3.40 and the other 320,000
    # 0.32; the repriced draft keeps the deal's rows
    assert (same.current_version_label, same.current_total, same.simulated_total) == (
        "Tokens v1 with a deal",
        D("3.72"),
        D("3.72"),
    )
    # and the draft by model alone has its own: 1,700,000 at 1.00 per 1M + 320,000 at 2.00
    assert (dropped.current_version_label, dropped.simulated_total) == (
        "Tokens v1 with a deal (not on llm_tokens)",
        D("2.34"),
    )

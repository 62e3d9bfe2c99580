from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.rating.pricing import PricingSpec
from billing.subscriptions.lifecycle import subscription_create
from customers.services import customer_create
from plans.models import Plan
from plans.services import credit_pack_create, meter_create, plan_create
from plans.validation import ChargeSpec, VersionSpec

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def acme(db):
    return customer_create(external_id="acme", name="Acme Inc", currency="USD")


@pytest.fixture
def catalog(db):
    """One plan per consumption model and two packs: see tests.wallets.support.build_catalog."""
    from tests.wallets.support import build_catalog

    build_catalog()


@pytest.fixture
def agents_plan(db):
    """S3: agent runs drawn from credits, 1 credit a run; pack runs_100 is 100
    credits for USD 99.00."""
    meter_create(code="agent_runs", name="Agent runs", event_name="agent.run", aggregation="count")
    credit_pack_create(code="runs_100", credits=D(100), price=D("99.00"), currency="USD")
    return plan_create(
        code="agents",
        name="Agents",
        version=VersionSpec(
            currency="USD",
            base_fee=D(0),
            charges=(ChargeSpec("agent_runs", "credits", credits_per_unit=D(1)),),
        ),
        publish=True,
    )


@pytest.fixture
def complexity_plan(db):
    """S6: simple queries 100 credits, complex generations 1,000; a pack of 500,000
    credits for USD 50.00."""
    meter_create(code="simple_queries", name="Simple", event_name="query", aggregation="count")
    meter_create(
        code="complex_generations", name="Complex", event_name="generation", aggregation="count"
    )
    credit_pack_create(code="credits_500k", credits=D(500_000), price=D("50.00"), currency="USD")
    return plan_create(
        code="complexity",
        name="Complexity",
        version=VersionSpec(
            currency="USD",
            base_fee=D(0),
            charges=(
                ChargeSpec("simple_queries", "credits", credits_per_unit=D(100)),
                ChargeSpec("complex_generations", "credits", credits_per_unit=D(1000)),
            ),
        ),
        publish=True,
    )


@pytest.fixture
def gpt4o_plan(db):
    """S7: input tokens 2.50 per million, output tokens 10.00 per million, drawn from
    a money balance; both meters read the same llm.completion event."""
    meter_create(
        code="gpt4o_input_tokens",
        name="GPT-4o input tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="input_tokens",
    )
    meter_create(
        code="gpt4o_output_tokens",
        name="GPT-4o output tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="output_tokens",
    )
    return plan_create(
        code="gpt4o_prepaid",
        name="GPT-4o prepaid",
        version=VersionSpec(
            currency="USD",
            base_fee=D(0),
            charges=(
                ChargeSpec(
                    "gpt4o_input_tokens",
                    "balance",
                    pricing=PricingSpec("per_unit", D("0.0000025")),
                ),
                ChargeSpec(
                    "gpt4o_output_tokens",
                    "balance",
                    pricing=PricingSpec("per_unit", D("0.00001")),
                ),
            ),
        ),
        publish=True,
    )


def subscribe(customer, plan_code: str, start: datetime = NOV_1):
    return subscription_create(
        customer=customer, plan=Plan.objects.get(code=plan_code), start=start
    )


@pytest.fixture(autouse=True)
def _wallets_stay_consistent(db):
    """After every wallet test, every wallet holds its invariant: the stored balance
    equals its blocks' remainders and its ledger, and the ledger never dips below
    zero (tests.wallets.support.assert_wallet_consistent)."""
    yield
    from tests.wallets.support import assert_all_wallets_consistent

    assert_all_wallets_consistent()

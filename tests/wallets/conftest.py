from decimal import Decimal as D

import pytest

from tests.factories import (
    CreditPackFactory,
    CustomerFactory,
    MeterFactory,
    PlanVersionFactory,
    agents_catalog,
    balance,
    credits,
    gpt4o_tokens_meter,
    published_version,
)


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme")


@pytest.fixture(scope="module")
def _catalog_once(module_transaction):
    from tests.wallets.support import build_catalog

    return module_transaction.once(build_catalog, "catalog")


@pytest.fixture
def catalog(_catalog_once, db):
    """One plan per consumption model and two packs (tests.wallets.support.build_catalog),
    made once for the test module (tests/shared_rows.py)."""
    return _catalog_once.for_test()


@pytest.fixture
def agents_plan(db):
    """S3: agent runs drawn from credits, 1 credit a run; pack runs_100 is 100
    credits for USD 99.00."""
    return agents_catalog()


@pytest.fixture
def complexity_plan(db):
    """S6: simple queries 100 credits, complex generations 1,000; a pack of 500,000
    credits for USD 50.00."""
    MeterFactory(code="simple_queries", name="Simple", event_name="query")
    MeterFactory(code="complex_generations", name="Complex", event_name="generation")
    CreditPackFactory(code="credits_500k", credits=D(500_000), price=D("50.00"))
    return published_version(
        "complexity",
        charges=(credits("simple_queries", 100), credits("complex_generations", 1000)),
    )


@pytest.fixture
def gpt4o_plan(db):
    """S7: input tokens 2.50 per million, output tokens 10.00 per million, drawn from
    a money balance; both meters read the same llm.completion event."""
    gpt4o_tokens_meter("input")
    gpt4o_tokens_meter("output")
    return PlanVersionFactory(
        plan__code="gpt4o_prepaid",
        plan__name="GPT-4o prepaid",
        charges=(
            balance("gpt4o_input_tokens", "0.0000025"),
            balance("gpt4o_output_tokens", "0.00001"),
        ),
    )


@pytest.fixture(autouse=True)
def _wallets_stay_consistent(db):
    """After every wallet test, every wallet holds its invariant: the stored balance
    equals its blocks' remainders and its ledger, and the ledger never dips below
    zero (tests.wallets.support.assert_wallet_consistent)."""
    yield
    from tests.wallets.support import assert_all_wallets_consistent

    assert_all_wallets_consistent()

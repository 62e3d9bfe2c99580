"""Two corrections of one cost rate at the same moment (issue 73): one is added,
the others are told the rate was superseded already (409), never a 500 from the
one-to-one `supersedes`; run for real on PostgreSQL with threads."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from common.errors import BillingError
from plans.cost_rules import cost_rate_create, cost_rate_supersede
from plans.models import CostRate
from tests.factories import llm_tokens_meter
from tests.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 4


def test_a_rate_superseded_by_four_at_once_is_superseded_once():
    llm_tokens_meter()
    outcomes = []
    for round_ in range(ROUNDS):
        wrong = cost_rate_create(
            meter="llm_tokens",
            when={"model": f"model-{round_}", "token_type": "input"},
            unit_cost=D("1.00"),
            per=D("1000000"),
            currency="USD",
            effective_from=datetime(2026, 11, 1, tzinfo=UTC),
        )

        def work(index: int, wrong=wrong) -> str:
            try:
                cost_rate_supersede(
                    rate_id=wrong.pk, unit_cost=D(f"0.{index + 1}0"), per=D("1000000")
                )
            except BillingError as error:
                return str(error.status_code)
            return "201"

        results = run_at_once(work, clients=4)

        assert sorted(results) == ["201", "409", "409", "409"], results
        (correction,) = CostRate.objects.filter(supersedes=wrong)
        winner = results.index("201")
        assert correction.unit_cost == D(f"0.{winner + 1}0")
        outcomes.append(winner)
    print(f"winners over {ROUNDS} rounds: {outcomes}")

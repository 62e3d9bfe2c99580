"""The bound on what a unit may cost on the plan version's page (issue 73): a
tier's unit price above 1,000,000,000 a unit is refused on that tier's field,
by the same rule as the API's (plans.field_checks.check_unit_price), and no
version is saved."""

from plans.models import Meter, PlanVersion
from tests.plans.test_plan_lifecycle_admin import (  # noqa: F401 (pro: a fixture)
    pro,
    tier_errors,
    tiered_version_post,
)


def test_a_tier_costing_more_than_the_bound_a_unit_is_refused_on_its_field(finance_client, pro):  # noqa: F811
    before = PlanVersion.objects.count()
    tiers = [("1000000", "0.000002", ""), ("", "1000000000.01", "")]

    response = finance_client.post(
        "/admin/plans/planversion/add/",
        tiered_version_post(pro.plan, Meter.objects.get(code="prompts"), tiers),
    )

    assert response.status_code == 200
    assert tier_errors(response) == [
        {},
        {
            "unit_price": [
                "One unit would cost 1000000000.01 (1000000000.01 for per 1): at most "
                "1000000000 a unit, so that amounts stay within what the books hold. Check "
                "the price and 'per'"
            ]
        },
    ]
    assert PlanVersion.objects.count() == before

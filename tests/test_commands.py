"""Management commands: `load_demo` loads the demo catalog and customers, idempotently
(its history of subscriptions, usage and invoices: tests/plans/test_demo_history.py)."""

from decimal import Decimal
from io import StringIO

from django.core.management import call_command

from customers.models import Customer
from customers.services import customer_create
from plans.management.commands.load_demo import (
    CUSTOMERS,
    FEATURES,
    METERS,
    PACKS,
    PLANS,
    TAX_RATES,
)
from plans.models import CreditPack, Feature, Meter, Plan, PlanVersion, VersionFeature
from plans.selectors import version_spec


def demo_grants(code: str) -> dict[str, object]:
    version = PlanVersion.objects.get(plan__code=code)
    return {grant.feature: grant.value for grant in version_spec(version=version).features}


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", "--catalog-only", stdout=out)
    return out.getvalue()


def test_load_demo_creates_the_demo_catalog_and_customers(row_counts):
    # when
    output = load_demo()

    # then
    counts = row_counts()
    assert counts["Meter"] == len(METERS) == 9
    assert counts["Plan"] == len(PLANS) == 8
    assert counts["PlanVersion"] == len(PLANS)
    assert counts["CreditPack"] == len(PACKS) == 2
    assert counts["Customer"] == len(CUSTOMERS) == 3
    assert counts["ApiKey"] == 0
    assert counts["TaxRate"] == len(TAX_RATES) == 2
    assert Feature.objects.count() == len(FEATURES) == 4
    assert output.startswith("demo loaded: 28 created (meter prompts, ")
    assert "feature sso, feature max_projects, feature models, feature priority_support" in output
    assert set(Plan.objects.values_list("code", flat=True)) == {code for code, _, _ in PLANS}
    assert set(Customer.objects.values_list("external_id", "currency")) == {
        ("acme", "USD"),
        ("globex", "USD"),
        ("initech", "EUR"),
    }
    pack = CreditPack.objects.get(code="runs_100")
    assert (pack.price.amount, str(pack.price.currency)) == (Decimal("99.00"), "USD")
    assert Meter.objects.get(code="gpt4o_input_tokens").filters == {"model": ["gpt-4o"]}


def test_every_demo_plan_has_a_published_version_1(db):
    load_demo()

    for plan in Plan.objects.all():
        versions = list(plan.versions.values_list("number", "status"))
        assert versions == [(1, PlanVersion.PUBLISHED)], plan.code
    assert PlanVersion.objects.get(plan__code="team_hybrid").charges.get().tiers.count() == 2


def test_demo_plans_grant_the_features_their_names_suggest(db):
    load_demo()

    assert dict(Feature.objects.values_list("code", "kind")) == {
        "sso": "boolean",
        "max_projects": "config",
        "models": "config",
        "priority_support": "boolean",
    }
    assert demo_grants("starter") == {
        "sso": False,
        "max_projects": 3,
        "models": ("gpt-4o-mini",),
    }
    assert demo_grants("pro") == {
        "sso": True,
        "max_projects": 20,
        "models": ("gpt-4o-mini", "gpt-4o"),
        "priority_support": True,
    }
    assert demo_grants("gpt4o_prepaid") == {"models": ("gpt-4o",)}
    # Every demo plan grants some feature.
    assert set(VersionFeature.objects.values_list("version__plan__code", flat=True).distinct()) == {
        code for code, _, _ in PLANS
    }


def test_load_demo_is_idempotent(row_counts):
    # given
    load_demo()
    counts = row_counts()
    published_at = dict(PlanVersion.objects.values_list("plan__code", "published_at"))
    features = (Feature.objects.count(), VersionFeature.objects.count())

    # when
    output = load_demo()

    # then
    assert output.strip() == "demo loaded: 0 created"
    assert row_counts() == counts
    assert (Feature.objects.count(), VersionFeature.objects.count()) == features
    assert dict(PlanVersion.objects.values_list("plan__code", "published_at")) == published_at


def test_load_demo_leaves_existing_rows_as_they_are(row_counts):
    # given a customer and a feature with demo codes already there
    customer_create(external_id="acme", name="Our Acme", currency="USD")
    Feature.objects.create(code="sso", name="SAML login", kind="boolean")

    # when
    load_demo()

    # then
    assert Customer.objects.get(external_id="acme").name == "Our Acme"
    assert Feature.objects.get(code="sso").name == "SAML login"
    assert demo_grants("pro")["sso"] is True
    assert row_counts()["Customer"] == 3

"""The demo catalog and customers: one plan per pricing pattern of SCENARIOS.md,
each granting the features (entitlements) its name suggests; then the demo's
history (plans.management.demo_history): two customers subscribed since the start
of last month, their daily usage, and their ended periods closed and invoiced.

Safe to run again: whatever already exists (by code) is left as it is.
"""

from datetime import UTC, datetime
from decimal import Decimal as D

from django.core.management.base import BaseCommand
from django.db import transaction

from common.history import history_tags
from customers.models import Customer
from customers.services import customer_create
from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.management.demo_history import demo_history_load
from plans.models import CreditPack, Feature, Meter, Plan, TaxRate
from plans.pricing import PricingSpec, TierSpec
from plans.services import credit_pack_create, meter_create, plan_create, tax_rate_create
from plans.validation import ChargeSpec, VersionSpec

METERS = [
    ("prompts", "Prompts", "prompt", "count", "", {}),
    ("sms", "SMS messages", "sms.sent", "count", "", {}),
    ("agent_runs", "Agent runs", "agent.run", "count", "", {}),
    ("llm_tokens", "LLM tokens", "llm.completion", "sum", "total_tokens", {}),
    (
        "gpt4o_input_tokens",
        "GPT-4o input tokens",
        "llm.completion",
        "sum",
        "input_tokens",
        {"model": ["gpt-4o"]},
    ),
    (
        "gpt4o_output_tokens",
        "GPT-4o output tokens",
        "llm.completion",
        "sum",
        "output_tokens",
        {"model": ["gpt-4o"]},
    ),
    ("simple_queries", "Simple queries", "query", "count", "", {"complexity": ["simple"]}),
    (
        "complex_generations",
        "Complex generations",
        "query",
        "count",
        "",
        {"complexity": ["complex"]},
    ),
    ("api_calls", "API calls", "api.call", "count", "", {}),
]


# code, name, kind, description
FEATURES = [
    ("sso", "Single sign-on", "boolean", "Sign in through the customer's identity provider."),
    ("max_projects", "Projects", "config", "How many projects the account may have."),
    ("models", "Models", "config", "The LLMs the account may call."),
    ("priority_support", "Priority support", "boolean", "Answered first, within a business day."),
]

CHEAP_MODELS = ("gpt-4o-mini",)
MODELS = ("gpt-4o-mini", "gpt-4o")
ALL_MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini")


def grants(**values) -> tuple[FeatureGrant, ...]:
    """A version's feature grants. The lower tiers grant `sso` as false (not granted,
    but the product may show it as an upgrade); a feature not named is not granted."""
    return tuple(FeatureGrant(code, value) for code, value in values.items())


def per_unit(price: str) -> PricingSpec:
    return PricingSpec(scheme="per_unit", unit_price=D(price))


PLANS = [
    (
        "ai_assistant",
        "AI Assistant",
        VersionSpec(
            currency="USD",
            base_fee=D("19.99"),
            charges=(ChargeSpec("prompts", "overage", D(200), pricing=per_unit("0.05")),),
            features=grants(sso=False, max_projects=5, models=CHEAP_MODELS),
        ),
    ),
    (
        "sms_starter",
        "SMS Starter",
        VersionSpec(
            currency="USD",
            base_fee=D("9.99"),
            charges=(ChargeSpec("sms", "hard_cap", D(500)),),
            features=grants(sso=False, max_projects=1),
        ),
    ),
    (
        "agents",
        "Agents on credits",
        VersionSpec(
            currency="USD",
            charges=(
                ChargeSpec("agent_runs", "credits", credits_per_unit=D(1)),
                ChargeSpec("simple_queries", "credits", credits_per_unit=D(100)),
                ChargeSpec("complex_generations", "credits", credits_per_unit=D(1000)),
            ),
            features=grants(max_projects=10, models=MODELS),
        ),
    ),
    (
        "gpt4o_prepaid",
        "GPT-4o on a prepaid balance",
        VersionSpec(
            currency="USD",
            charges=(
                ChargeSpec("gpt4o_input_tokens", "balance", pricing=per_unit("0.0000025")),
                ChargeSpec("gpt4o_output_tokens", "balance", pricing=per_unit("0.00001")),
            ),
            features=grants(models=("gpt-4o",)),
        ),
    ),
    (
        "team_hybrid",
        "Team (hybrid)",
        VersionSpec(
            currency="USD",
            base_fee=D("49.00"),
            seat_price=D("10.00"),
            charges=(
                ChargeSpec(
                    "llm_tokens",
                    "overage",
                    D(1_000_000),
                    pricing=PricingSpec(
                        scheme="graduated",
                        tiers=(
                            TierSpec(D(4_000_000), D("0.000008")),
                            TierSpec(None, D("0.000006")),
                        ),
                    ),
                ),
            ),
            features=grants(sso=True, max_projects=50, models=ALL_MODELS, priority_support=True),
        ),
    ),
    (
        "api_commit",
        "API with minimum commitment",
        VersionSpec(
            currency="USD",
            minimum_commitment=D("500.00"),
            # Billed as it goes: a threshold invoice each time 250.00 of calls is not invoiced.
            progressive_billing_threshold=D("250.00"),
            charges=(ChargeSpec("api_calls", "overage", D(0), pricing=per_unit("0.001")),),
            features=grants(sso=True, max_projects=100, priority_support=True),
        ),
    ),
    (
        "starter",
        "Starter",
        VersionSpec(
            currency="USD",
            base_fee=D("20.00"),
            features=grants(sso=False, max_projects=3, models=CHEAP_MODELS),
        ),
    ),
    (
        "pro",
        "Pro",
        VersionSpec(
            currency="USD",
            base_fee=D("50.00"),
            features=grants(sso=True, max_projects=20, models=MODELS, priority_support=True),
        ),
    ),
]

PACKS = [
    ("runs_100", "100 agent runs", D(100), D("99.00"), "USD"),
    ("credits_500k", "500,000 credits", D(500_000), D("50.00"), "USD"),
]

# code, name, percentage, country: default rates, each for customers in its country.
TAX_RATES = [
    ("de_vat", "MwSt.", D("19"), "DE"),
    ("fr_vat", "TVA", D("20"), "FR"),
]

CUSTOMERS = [
    ("acme", "Acme Inc", "billing@acme.test", "USD", "UTC"),
    ("globex", "Globex Corporation", "ap@globex.test", "USD", "America/New_York"),
    ("initech", "Initech GmbH", "finance@initech.test", "EUR", "Europe/Berlin"),
]
# Each customer's billing details: address, language, tax id.
CUSTOMER_DETAILS = {
    "acme": {
        "address": {
            "line1": "42 Harbour Road",
            "city": "Seattle",
            "state": "WA",
            "postal_code": "98101",
            "country": "US",
        },
    },
    "globex": {
        "address": {
            "line1": "1 Globex Plaza",
            "city": "New York",
            "state": "NY",
            "postal_code": "10001",
            "country": "US",
        },
    },
    "initech": {
        "address": {
            "line1": "Friedrichstraße 100",
            "city": "Berlin",
            "postal_code": "10117",
            "country": "DE",
        },
        "locale": "de",
        "tax_id": "DE811907980",
    },
}


class Command(BaseCommand):
    help = (
        "Load the demo catalog (meters, features, plans, credit packs, tax rates) and "
        "customers, then subscribe two of them since the start of last month with their "
        "usage and close their ended periods. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--catalog-only",
            action="store_true",
            help="Only the catalog and the customers: no subscription, usage or invoice.",
        )

    def handle(self, *args, **options):
        # No person writes these rows: their history names the command instead.
        with history_tags(by="load_demo"):
            with transaction.atomic():
                created = self._load()
            if not options["catalog_only"]:
                # Each service commits its own work (events a day at a time, periods
                # closed in groups), as the API and the beat would.
                created += demo_history_load(now=datetime.now(UTC))
        self.stdout.write(
            f"demo loaded: {len(created)} created" + (f" ({', '.join(created)})" if created else "")
        )

    def _load(self) -> list[str]:
        created = []
        for code, name, event_name, aggregation, prop, filters in METERS:
            if not Meter.objects.filter(code=code).exists():
                meter_create(
                    code=code,
                    name=name,
                    event_name=event_name,
                    aggregation=aggregation,
                    value_property=prop,
                    filters=filters,
                    # LLM tokens break down by model and workflow (usage?group_by=model),
                    # and invoices list them by model.
                    **(
                        {"group_by": ["model", "workflow"], "invoice_breakdown": "model"}
                        if code == "llm_tokens"
                        else {}
                    ),
                )
                created.append(f"meter {code}")
        for code, name, kind, description in FEATURES:
            if not Feature.objects.filter(code=code).exists():
                feature_create(code=code, name=name, kind=kind, description=description)
                created.append(f"feature {code}")
        for code, name, spec in PLANS:
            if not Plan.objects.filter(code=code).exists():
                plan_create(code=code, name=name, version=spec, publish=True)
                created.append(f"plan {code}")
        for code, name, credits, price, currency in PACKS:
            if not CreditPack.objects.filter(code=code).exists():
                credit_pack_create(
                    code=code, name=name, credits=credits, price=price, currency=currency
                )
                created.append(f"credit pack {code}")
        for code, name, percentage, country in TAX_RATES:
            if not TaxRate.objects.filter(code=code).exists():
                tax_rate_create(
                    code=code, name=name, percentage=percentage, country=country, is_default=True
                )
                created.append(f"tax rate {code}")
        for external_id, name, email, currency, tz in CUSTOMERS:
            if not Customer.objects.filter(external_id=external_id).exists():
                customer_create(
                    external_id=external_id,
                    name=name,
                    email=email,
                    currency=currency,
                    timezone_name=tz,
                    **CUSTOMER_DETAILS.get(external_id, {}),
                )
                created.append(f"customer {external_id}")
        return created

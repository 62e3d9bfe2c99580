"""The demo catalog and customers: one plan per pricing pattern of SCENARIOS.md.

Safe to run again: whatever already exists (by code) is left as it is.
"""

from decimal import Decimal as D

from django.core.management.base import BaseCommand
from django.db import transaction

from billing.rating.pricing import PricingSpec, TierSpec
from customers.models import Customer
from customers.services import customer_create
from plans.models import CreditPack, Meter, Plan, TaxRate
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
        ),
    ),
    (
        "sms_starter",
        "SMS Starter",
        VersionSpec(
            currency="USD", base_fee=D("9.99"), charges=(ChargeSpec("sms", "hard_cap", D(500)),)
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
        ),
    ),
    ("starter", "Starter", VersionSpec(currency="USD", base_fee=D("20.00"))),
    ("pro", "Pro", VersionSpec(currency="USD", base_fee=D("50.00"))),
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
        "tax_id": "DE123456789",
    },
}


class Command(BaseCommand):
    help = (
        "Load the demo catalog (meters, plans, credit packs, tax rates) and customers. Idempotent."
    )

    @transaction.atomic
    def handle(self, *args, **options):
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
                )
                created.append(f"meter {code}")
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
        self.stdout.write(
            f"demo loaded: {len(created)} created" + (f" ({', '.join(created)})" if created else "")
        )

"""Factories for the catalog, customers, API keys and subscriptions the tests set up.

Each writes its rows as the API and the admin do: through the project's service
(meter_create, plan_version_create and plan_version_publish, credit_pack_create,
customer_create, api_key_create, subscription_create), so a meter schedules its
usage rebuild and a subscription has its change log and start invoice. A plan row
is created as plan_create creates it, before its version. Call a factory to
create; `build` would bypass the services.

Charges and tiers are written by plan_version_create from the ChargeSpecs given
as `charges` (`overage`, `hard_cap`, `credits`, `balance` below make the common
ones): a published version never changes, so no factory adds a charge row to one.
"""

from datetime import UTC, datetime
from decimal import Decimal as D

import factory
from factory.django import DjangoModelFactory
from rest_framework.test import APIClient

from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_create
from common.history import one_change
from common.vocabulary import ConsumptionModel
from customers.api_keys import api_key_create
from customers.billing_entities import seed_values
from customers.models import ApiKey, BillingEntity, Customer
from customers.services import customer_create
from invoices.models import Invoice
from invoices.services import invoice_write_draft
from plans.models import CreditPack, Meter, Plan, PlanVersion
from plans.pricing import PricingSpec
from plans.services import (
    credit_pack_create,
    meter_create,
    plan_version_create,
    plan_version_publish,
)
from plans.validation import ChargeSpec, VersionSpec

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


class MeterFactory(DjangoModelFactory):
    class Meta:
        model = Meter

    code = factory.Sequence(lambda n: f"meter_{n}")
    name = factory.LazyAttribute(lambda meter: meter.code.replace("_", " ").capitalize())
    event_name = factory.LazyAttribute(lambda meter: meter.code)
    aggregation = Meter.COUNT

    @classmethod
    def _create(cls, model_class, *args, **fields):
        return meter_create(**fields)


class PlanFactory(DjangoModelFactory):
    """A plan with a published version 1 of `version__*` terms (USD, nothing else by
    default); `version__status="draft"` leaves it a draft, `version=None` out."""

    class Meta:
        model = Plan
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"plan_{n}")
    name = factory.LazyAttribute(lambda plan: plan.code.replace("_", " ").title())
    version = factory.RelatedFactory(
        "tests.factories.PlanVersionFactory", factory_related_name="plan"
    )


class PlanVersionFactory(DjangoModelFactory):
    """The plan's next version, of the VersionSpec terms given, published unless
    `status` is draft."""

    class Meta:
        model = PlanVersion

    plan = factory.SubFactory(PlanFactory, version=None)
    currency = "USD"
    status = PlanVersion.PUBLISHED

    @classmethod
    @one_change()  # created and published at once, as plan_create(publish=True) does
    def _create(cls, model_class, *args, plan, status, **terms):
        version = plan_version_create(plan=plan, version=VersionSpec(**terms))
        if status == PlanVersion.DRAFT:
            return version
        return plan_version_publish(version=version)


class CreditPackFactory(DjangoModelFactory):
    class Meta:
        model = CreditPack

    code = factory.Sequence(lambda n: f"pack_{n}")
    credits = D(100)
    price = D("99.00")
    currency = "USD"

    @classmethod
    def _create(cls, model_class, *args, **fields):
        return credit_pack_create(**fields)


class CustomerFactory(DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"customer_{n}")
    name = factory.LazyAttribute(lambda customer: f"{customer.external_id.title()} Inc")
    currency = "USD"

    @classmethod
    def _create(cls, model_class, *args, **fields):
        return customer_create(**fields)


class ApiKeyFactory(DjangoModelFactory):
    """A key; its secret, shown once by api_key_create, is kept on it as `secret`."""

    class Meta:
        model = ApiKey

    name = factory.Sequence(lambda n: f"key {n}")

    @classmethod
    def _create(cls, model_class, *args, **fields):
        key, secret = api_key_create(**fields)
        key.secret = secret
        return key


class SubscriptionFactory(DjangoModelFactory):
    """`customer` on `plan` (a Plan, its code, or one of its published versions)
    from `start`."""

    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory)
    start = NOV_1

    @classmethod
    def _create(cls, model_class, *args, customer, plan, start, **options):
        if isinstance(plan, PlanVersion):
            plan, options["version_number"] = plan.plan, plan.number
        elif isinstance(plan, str):
            plan = Plan.objects.get(code=plan)
        return subscription_create(customer=customer, plan=plan, start=start, **options)


def published_version(code: str, **terms) -> PlanVersion:
    """Version 1 of a new plan `code`, published, of these VersionSpec terms (USD
    unless `currency` says otherwise)."""
    return PlanVersionFactory(plan__code=code, **terms)


def subscribe(customer, plan, start: datetime = NOV_1, **options) -> Subscription:
    return SubscriptionFactory(customer=customer, plan=plan, start=start, **options)


def default_seller(seller: dict) -> BillingEntity:
    """Make the default billing entity (the seller of every customer naming none)
    say what `seller`, shaped as the BILLING_SELLER setting, says."""
    entity = BillingEntity.objects.filter(is_default=True).first() or BillingEntity()
    for name, value in seed_values(seller).items():
        setattr(entity, name, value)
    entity.save()
    return entity


def period_draft(customer, lines: list, *, start=NOV_1, end=DEC_1) -> Invoice:
    """A draft period invoice of `customer` for [start, end) (November 2026 unless
    told) with these lines (LineInput), written at its end as the close writes one."""
    return invoice_write_draft(
        customer=customer,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=start,
        period_end=end,
        lines=lines,
        now=end,
    )


def api_client(*scopes: str) -> APIClient:
    """An API client whose key holds these scopes (none given: all of them)."""
    key = ApiKeyFactory(name="-".join(scopes) or "none", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.secret}")
    return client


# The check's answer as API v1 documents it; its later fields (message, period) are
# asserted by the tests about them.
CHECK_V1_FIELDS = ("allowed", "model", "reason", "used", "included", "remaining", "balance")


def check_v1(body: dict) -> dict:
    return {name: body[name] for name in CHECK_V1_FIELDS if name in body}


def per_unit(price: str, per: str = "1") -> PricingSpec:
    return PricingSpec("per_unit", unit_price=D(price), per=D(per))


def overage(meter: str, included: int, price: str) -> ChargeSpec:
    return ChargeSpec(meter, ConsumptionModel.OVERAGE, D(included), pricing=per_unit(price))


def hard_cap(meter: str, included: int) -> ChargeSpec:
    return ChargeSpec(meter, ConsumptionModel.HARD_CAP, D(included))


def credits(meter: str, per_unit_credits: int) -> ChargeSpec:
    return ChargeSpec(meter, ConsumptionModel.CREDITS, credits_per_unit=D(per_unit_credits))


def balance(meter: str, price: str, per: str = "1") -> ChargeSpec:
    return ChargeSpec(meter, ConsumptionModel.BALANCE, pricing=per_unit(price, per))


def prompts_meter() -> Meter:
    return MeterFactory(code="prompts", name="Prompts", event_name="prompt")


def llm_tokens_meter() -> Meter:
    """llm_tokens: the sum of `tokens` of llm.tokens events, broken down by model
    and token type (what rate cards price by)."""
    return meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation=Meter.SUM,
        value_property="tokens",
        group_by=["model", "token_type"],
    )


def gpt4o_tokens_meter(direction: str, **fields) -> Meter:
    """gpt4o_input_tokens or gpt4o_output_tokens: the sum of that property of
    llm.completion events."""
    return MeterFactory(
        code=f"gpt4o_{direction}_tokens",
        name=f"GPT-4o {direction} tokens",
        event_name="llm.completion",
        aggregation=Meter.SUM,
        value_property=f"{direction}_tokens",
        **fields,
    )


def ai_assistant_plan(*more_charges: ChargeSpec, name: str = "AI Assistant") -> Plan:
    """S1's plan: 19.99 a month, 200 prompts included, 0.05 a prompt beyond, then
    `more_charges`. Its meters must exist."""
    return PlanFactory(
        code="ai_assistant",
        name=name,
        version__base_fee=D("19.99"),
        version__charges=(overage("prompts", 200, "0.05"), *more_charges),
    )


def runs_100_pack() -> CreditPack:
    """The pack of S3: 100 credits for USD 99.00."""
    return CreditPackFactory(code="runs_100")


def agents_catalog() -> PlanVersion:
    """S3: agent runs drawn from credits, 1 credit a run (plan agents), and the
    pack runs_100."""
    MeterFactory(code="agent_runs", event_name="agent.run")
    runs_100_pack()
    return published_version("agents", charges=(credits("agent_runs", 1),))


def overrides_plan(*more_charges: ChargeSpec) -> PlanVersion:
    """S21's plan `assistant`: 19.99 a month, 200 prompts included, 0.05 a prompt
    beyond, then `more_charges`. Its meters must exist."""
    return published_version(
        "assistant", base_fee=D("19.99"), charges=(overage("prompts", 200, "0.05"), *more_charges)
    )

"""Helpers shared by the wallet tests: the wallet invariant, event batches, API
clients limited to scopes, and a snapshot of everything a refused request must
leave alone."""

from datetime import datetime
from decimal import Decimal

from rest_framework.test import APIClient

from billing.models import Alert, EventKey, Subscription, UsageEvent, UsageRollup
from billing.usage.ingestion import events_ingest
from customers.api_keys import api_key_create, hash_secret
from customers.models import ApiKey
from invoices.models import Invoice, InvoiceLine, InvoiceSequence
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry, UncoveredUsage, Wallet

ZERO = Decimal(0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def assert_wallet_consistent(wallet: Wallet) -> Wallet:
    """The wallet invariant: its stored balance equals the sum of its blocks'
    remainders and the sum of its ledger; the ledger read in id order runs from
    zero through each entry's balance_after without a jump, never below zero; no
    block holds more than it was given or less than nothing."""
    wallet.refresh_from_db()
    blocks = list(CreditBlock.objects.filter(wallet=wallet))
    entries = list(LedgerEntry.objects.filter(wallet=wallet).order_by("id"))
    assert wallet.balance >= 0
    assert wallet.balance == sum((b.remaining for b in blocks), ZERO)
    assert wallet.balance == sum((e.amount for e in entries), ZERO)
    running = ZERO
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running, (entry.pk, entry.kind, entry.amount)
        assert entry.balance_after >= 0, (entry.pk, entry.balance_after)
    for block in blocks:
        assert 0 <= block.remaining <= block.amount
        # What a block's entries add up to is what it still holds.
        assert block.remaining == sum(
            (e.amount for e in entries if e.block_id == block.pk), ZERO
        ), block.pk
    return wallet


def assert_all_wallets_consistent() -> None:
    for wallet in Wallet.objects.all():
        assert_wallet_consistent(wallet)


def wallet_of(customer, kind: str = Wallet.CREDITS, currency: str = "") -> Wallet:
    return Wallet.objects.get(customer=customer, kind=kind, currency=currency)


def event(
    event_id: str,
    event_name: str,
    at: datetime,
    customer: str = "acme",
    **properties,
) -> dict:
    return {
        "id": event_id,
        "customer": customer,
        "event_name": event_name,
        "timestamp": iso(at),
        "properties": properties,
    }


def ingest(events: list[dict], *, now: datetime):
    """events_ingest in batches of 1,000, asserting that nothing was rejected."""
    results = []
    for start in range(0, len(events), 1000):
        result = events_ingest(events=events[start : start + 1000], now=now)
        assert result.rejected == [], result.rejected
        results.append(result)
    return results


def repeat(count: int, event_name: str, at: datetime, *, prefix: str, customer: str = "acme"):
    return [event(f"{prefix}-{i}", event_name, at, customer=customer) for i in range(count)]


def client(*scopes: str) -> APIClient:
    """An API client whose key holds exactly these scopes (none: a key with no scope)."""
    if scopes:
        _, secret = api_key_create(name="-".join(scopes), scopes=list(scopes))
    else:
        # api_key_create reads no scopes as all of them; the admin can save an empty list.
        secret = "sk_test_no_scope"
        ApiKey.objects.create(
            name="none", prefix=secret[:10], secret_hash=hash_secret(secret), scopes=[]
        )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


STATE_MODELS = (
    Wallet,
    CreditBlock,
    LedgerEntry,
    UncoveredUsage,
    AutoTopUp,
    Invoice,
    InvoiceLine,
    Alert,
    UsageEvent,
    EventKey,
    UsageRollup,
    Subscription,
)


def state() -> dict:
    """Everything a refused request must leave as it was: row counts, balances,
    block remainders, auto top-up settings and the invoice number sequences."""
    return {
        "counts": {model.__name__: model.objects.count() for model in STATE_MODELS},
        "balances": sorted(
            Wallet.objects.values_list("customer_id", "kind", "currency", "balance")
        ),
        "blocks": sorted(CreditBlock.objects.values_list("id", "remaining")),
        "auto_top_up": sorted(
            AutoTopUp.objects.values_list("wallet_id", "enabled", "threshold", "pack_id")
        ),
        "sequences": sorted(InvoiceSequence.objects.values_list("name", "next_number")),
    }


def build_catalog() -> None:
    """One plan per consumption model (all USD, monthly):

    - sms_starter (S2): 9.99, `sms` capped at 500 included;
    - ai_assistant (S1): 19.99, 200 `prompts` included, 0.05 a prompt over;
    - runner: no base fee, `agent_runs` at 2 credits a run;
    - prepaid (S7): no base fee, `gpt4o_input_tokens` at 0.0000025 drawn from money;
    - graduated: no base fee, `tokens` drawn from money in graduated tiers, the
      first 1,000 at 0.01, the next 1,000 at 0.005 plus a flat 1.00, beyond at 0.001;

    and the packs runs_100 (100 credits for 99.00) and big_pack (1,000 for 900.00)."""
    from billing.rating.pricing import PricingSpec, TierSpec
    from plans.services import credit_pack_create, meter_create, plan_create
    from plans.validation import ChargeSpec, VersionSpec

    D = Decimal
    meter_create(code="sms", name="SMS messages", event_name="sms.sent", aggregation="count")
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    meter_create(code="agent_runs", name="Agent runs", event_name="agent.run", aggregation="count")
    meter_create(
        code="gpt4o_input_tokens",
        name="GPT-4o input tokens",
        event_name="llm.completion",
        aggregation="sum",
        value_property="input_tokens",
    )
    meter_create(
        code="tokens", name="Tokens", event_name="tokens", aggregation="sum", value_property="n"
    )
    credit_pack_create(code="runs_100", credits=D(100), price=D("99.00"), currency="USD")
    credit_pack_create(code="big_pack", credits=D(1000), price=D("900.00"), currency="USD")
    plans = {
        "sms_starter": VersionSpec(
            currency="USD",
            base_fee=D("9.99"),
            charges=(ChargeSpec("sms", "hard_cap", included_units=D(500)),),
        ),
        "ai_assistant": VersionSpec(
            currency="USD",
            base_fee=D("19.99"),
            charges=(
                ChargeSpec(
                    "prompts",
                    "overage",
                    included_units=D(200),
                    pricing=PricingSpec("per_unit", D("0.05")),
                ),
            ),
        ),
        "runner": VersionSpec(
            currency="USD",
            charges=(ChargeSpec("agent_runs", "credits", credits_per_unit=D(2)),),
        ),
        "prepaid": VersionSpec(
            currency="USD",
            charges=(
                ChargeSpec(
                    "gpt4o_input_tokens",
                    "balance",
                    pricing=PricingSpec("per_unit", D("0.0000025")),
                ),
            ),
        ),
        "graduated": VersionSpec(
            currency="USD",
            charges=(
                ChargeSpec(
                    "tokens",
                    "balance",
                    pricing=PricingSpec(
                        "graduated",
                        tiers=(
                            TierSpec(D(1000), D("0.01")),
                            TierSpec(D(2000), D("0.005"), D("1.00")),
                            TierSpec(None, D("0.001")),
                        ),
                    ),
                ),
            ),
        ),
    }
    for code, spec in plans.items():
        plan_create(code=code, name=code.replace("_", " ").title(), version=spec, publish=True)


def subscribe(customer, plan_code: str, start: datetime):
    from billing.subscriptions.lifecycle import subscription_create
    from plans.models import Plan

    return subscription_create(
        customer=customer, plan=Plan.objects.get(code=plan_code), start=start
    )

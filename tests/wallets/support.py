"""Helpers shared by the wallet tests: the wallet invariant, event batches, API
clients limited to scopes, and a snapshot of everything a refused request must
leave alone."""

from datetime import datetime
from decimal import Decimal

from rest_framework.test import APIClient

from billing.models import (
    Alert,
    EventKey,
    Subscription,
    UsageDailyRollup,
    UsageEvent,
    UsageRollup,
)
from billing.usage.ingestion import events_ingest
from customers.api_keys import hash_secret
from customers.models import ApiKey
from invoices.models import Invoice, InvoiceLine, InvoiceSequence
from plans.pricing import PricingSpec, TierSpec
from plans.validation import ChargeSpec
from tests.factories import (
    CreditPackFactory,
    MeterFactory,
    api_client,
    balance,
    credits,
    gpt4o_tokens_meter,
    hard_cap,
    overage,
    prompts_meter,
    published_version,
    runs_100_pack,
)
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry, UncoveredUsage, Wallet

ZERO = Decimal(0)
GRADUATED = PricingSpec(
    "graduated",
    tiers=(
        TierSpec(Decimal(1000), Decimal("0.01")),
        TierSpec(Decimal(2000), Decimal("0.005"), Decimal("1.00")),
        TierSpec(None, Decimal("0.001")),
    ),
)


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
        return api_client(*scopes)
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
    UsageDailyRollup,
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
    MeterFactory(code="sms", name="SMS messages", event_name="sms.sent")
    prompts_meter()
    MeterFactory(code="agent_runs", event_name="agent.run")
    gpt4o_tokens_meter("input")
    MeterFactory(code="tokens", aggregation="sum", value_property="n")
    runs_100_pack()
    CreditPackFactory(code="big_pack", credits=Decimal(1000), price=Decimal("900.00"))
    published_version("sms_starter", base_fee=Decimal("9.99"), charges=(hard_cap("sms", 500),))
    published_version(
        "ai_assistant", base_fee=Decimal("19.99"), charges=(overage("prompts", 200, "0.05"),)
    )
    published_version("runner", charges=(credits("agent_runs", 2),))
    published_version("prepaid", charges=(balance("gpt4o_input_tokens", "0.0000025"),))
    published_version("graduated", charges=(ChargeSpec("tokens", "balance", pricing=GRADUATED),))

"""A token rate card for the tests of the readers that follow its rows (issue
50): the meter, the card as specs, and usage sent per model and token type.

Prices per 1,000,000 tokens: gpt-4o input 2.50, output 10.00; claude-sonnet
(any type) 3.00; anything else (the default row) 4.00."""

from datetime import datetime
from decimal import Decimal as D

from billing.usage.ingestion import events_ingest
from plans.pricing import PER_UNIT, PricingSpec
from plans.rate_card_pricing import RateSpec
from plans.services import meter_create
from plans.validation import ChargeSpec

GPT_INPUT = (("model", "gpt-4o"), ("token_type", "input"))
GPT_OUTPUT = (("model", "gpt-4o"), ("token_type", "output"))
CLAUDE = (("model", "claude-sonnet"),)

# (model, token_type, tokens); None: the event has no such property.
USAGE = [
    ("gpt-4o", "input", 1_000_000),  # 2.50
    ("gpt-4o", "output", 200_000),  # 2.00
    ("gpt-4o", "cache_read", 500_000),  # the default row: 2.00
    ("claude-sonnet", "output", 300_000),  # 0.90
    ("llama-3", "input", 10_000),  # the default row
    (None, None, 10_000),  # no properties: the default row
]
# Rows: gpt-4o input 2.50, output 2.00, claude-sonnet 0.90, default
# (520,000 tokens) 2.08: 7.48.
CARD_TOTAL = D("7.48")
TOKENS = 2_020_000


MILLION = D(1_000_000)


def per_unit(price: str, per: D = D(1)) -> PricingSpec:
    return PricingSpec(PER_UNIT, unit_price=D(price), per=per)


def rate(when: tuple, price: str) -> RateSpec:
    """A row at `price` per 1,000,000 tokens."""
    return RateSpec(when=when, pricing=per_unit(price, MILLION))


CARD = (
    rate(GPT_INPUT, "2.50"),
    rate(GPT_OUTPUT, "10.00"),
    rate(CLAUDE, "3.00"),
    rate((), "4.00"),
)


def card_charge(rates: tuple = CARD) -> ChargeSpec:
    return ChargeSpec("llm_tokens", "overage", D(0), price_by=("model", "token_type"), rates=rates)


def llm_tokens():
    return meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation="sum",
        value_property="tokens",
        group_by=["model", "token_type"],
    )


def send_tokens(customer: str, when: datetime, usage=USAGE, *, prefix: str = "t") -> None:
    events = []
    for i, (model, token_type, tokens) in enumerate(usage):
        properties = {"tokens": tokens}
        if model:
            properties["model"] = model
        if token_type:
            properties["token_type"] = token_type
        events.append(
            {
                "id": f"{prefix}-{customer}-{i}",
                "customer": customer,
                "event_name": "llm.tokens",
                "timestamp": when.isoformat(),
                "properties": properties,
            }
        )
    result = events_ingest(events=events, now=when)
    assert (result.rejected, result.duplicates) == ([], 0)

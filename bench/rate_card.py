"""The rate card the benchmarks price tokens with (issue 50, API.md "Rate cards"):
a token meter grouped by model and token type, and a card of 151 rows on it.

    card_tokens   event llm.tokens, the sum of `tokens`, group_by model, token_type
    the card      per model (50): a row for its input tokens, one for its output
                  tokens and one for its other tokens (cache_read, reasoning);
                  and the default row (usage without a model, or of another)
    by model      (`rows=50`, the size issue 50 names for /usage) a row per model
                  for the first 49, whatever the token type, and the default row
                  (the 50th model's usage, and usage without a model)

Events draw their model from 50 and their token type from 4, so every row but the
default prices usage; `unlisted` events (no model) fall to the default row.
"""

import random
from decimal import Decimal

RATED_METER = "card_tokens"
RATED_EVENT = "llm.tokens"
PRICE_BY = ("model", "token_type")
RATED_MODELS = [f"model-{i:02d}" for i in range(50)]
TOKEN_TYPES = ["input", "output", "cache_read", "reasoning"]


def rated_meter_create():
    from plans.services import meter_create

    return meter_create(
        code=RATED_METER,
        name="Tokens by model and type",
        event_name=RATED_EVENT,
        aggregation="sum",
        value_property="tokens",
        group_by=list(PRICE_BY),
    )


def card_rows(kind: str, rows: int = 151) -> tuple:
    """The card's rows (RateSpec), most specific first, the default last: 151 (a
    model's input, output and other tokens) or 50 (a row per model of 49).
    `kind`: "per_unit" (a price a token), "graduated" (the input and output rows
    in two tiers, 0.000002 a token for the first 1,000,000 then half; so a check
    reads the row's usage so far) or "credits" (credits per 1,000 tokens)."""
    from plans.pricing import GRADUATED, PER_UNIT, PricingSpec, TierSpec
    from plans.rate_card_pricing import RateSpec

    def priced(micro: int, tiered: bool) -> dict:
        unit = Decimal(micro) / 1_000_000
        if kind == "credits":
            return {"credits_per_unit": Decimal(micro), "per": Decimal(1000)}
        if tiered and kind == "graduated":
            tiers = (TierSpec(Decimal(1_000_000), unit), TierSpec(None, unit / 2))
            return {"pricing": PricingSpec(scheme=GRADUATED, tiers=tiers)}
        return {"pricing": PricingSpec(scheme=PER_UNIT, unit_price=unit)}

    if rows not in (50, 151):
        raise ValueError("a card of 50 or 151 rows")
    found = []
    for i, model in enumerate(RATED_MODELS):
        if rows == 50:
            if i < 49:
                found.append(RateSpec(when=(("model", model),), **priced(2 + i, True)))
            continue
        for token_type, micro in (("input", 1 + i), ("output", 4 + 4 * i)):
            when = (("model", model), ("token_type", token_type))
            found.append(RateSpec(when=when, **priced(micro, True)))
        found.append(RateSpec(when=(("model", model),), **priced(1 + i // 2, False)))
    found.append(RateSpec(when=(), **priced(3, False)))
    return tuple(found)


def card_plan_create(code: str, model: str, kind: str, rows: int = 151):
    """A published plan `code` of one charge, `model` ("overage", "balance",
    "credits"), on the card of `rows` rows."""
    from plans.services import plan_create
    from plans.validation import ChargeSpec, VersionSpec

    charge = ChargeSpec(
        RATED_METER,
        model,
        included_units=Decimal(0) if model == "overage" else None,
        price_by=PRICE_BY,
        rates=card_rows(kind, rows),
    )
    return plan_create(
        code=code,
        name=f"Rate card ({model})",
        version=VersionSpec(currency="USD", charges=(charge,)),
        publish=True,
    )


def token_properties(rng: random.Random, *, unlisted: float = 0.0) -> dict:
    """One event's properties: a model of 50 (none, a share `unlisted` of the
    time), a token type of 4, and its tokens."""
    properties = {"token_type": rng.choice(TOKEN_TYPES), "tokens": rng.randint(10, 5000)}
    if not unlisted or rng.random() >= unlisted:
        properties["model"] = rng.choice(RATED_MODELS)
    return properties


# bench/ingest.py --rated compares the card's meter with this one, in the same run:
# the same events under another name, summed without group_by.
PLAIN_METER = "plain_tokens"
PLAIN_EVENT = "llm.tokens.plain"


def plain_meter_create():
    from plans.services import meter_create

    return meter_create(
        code=PLAIN_METER,
        name="Tokens",
        event_name=PLAIN_EVENT,
        aggregation="sum",
        value_property="tokens",
    )

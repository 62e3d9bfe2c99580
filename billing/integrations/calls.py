"""A model call as a gateway or a trace reports it, and the usage events it
becomes: one event per token kind the call carries (`<call id>:<kind>`, so that a
resend or a retry of the same call is a duplicate), of the source's event name,
with the model the rate card prices it as (billing.integrations.model_names: the
source's mapping, the name the caller asked for, the bare name) and the names the
source gave (`source_model`, `requested_model`), so that re-rating can name it again
under a later mapping. Every reader of
a source (billing.integrations.litellm, .openrouter, .otlp) turns what it received
into Calls or RecordRejected; this module alone turns Calls into events.

Token kinds are disjoint: `input` is the prompt's tokens that are neither read
from nor written to a cache, `output` the completion's tokens that are not
reasoning (gateways count cached tokens inside the prompt's and reasoning tokens
inside the completion's; each reader subtracts them once, here: split_prompt,
split_completion)."""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from billing.integrations.model_names import PricedModel, priced_model
from billing.usage.ingestion import INVALID, MAX_ID_LENGTH, UNKNOWN_CUSTOMER
from common.storable import unstorable_text_reason

INPUT = "input"
OUTPUT = "output"
CACHED_INPUT = "cached_input"
CACHE_WRITE = "cache_write"
REASONING = "reasoning"
AUDIO_INPUT = "audio_input"
AUDIO_OUTPUT = "audio_output"
TOKEN_KINDS = (INPUT, CACHED_INPUT, CACHE_WRITE, OUTPUT, REASONING, AUDIO_INPUT, AUDIO_OUTPUT)

# The event a call's provider-reported cost becomes (OpenRouter's own charge), beside
# its token events: `<call id>:provider_cost`, properties model, cost and currency.
PROVIDER_COST_EVENT = "llm.provider_cost"
PROVIDER_COST_KIND = "provider_cost"

# More than any one call costs, in USD: a cost past it is a mistake, not a charge.
MAX_COST = Decimal(10**9)
# A double's shortest text has at most 17 digits: a cost of 1e-13 USD still has room.
MAX_COST_PLACES = 30
# A call's events are named `<call id>:<kind>`, each id at most MAX_ID_LENGTH: a call
# id leaves room for the longest kind, or its events with a long kind would be refused
# while those with a short one were stored (half a call).
MAX_CALL_ID = MAX_ID_LENGTH - 1 - max(len(kind) for kind in (*TOKEN_KINDS, PROVIDER_COST_KIND))

# More tokens than any call carries: a count past it is a mistake, not usage.
MAX_TOKENS = 10**12
MAX_TEXT = 255
# Calls a request may carry (each becomes up to eight events; they are stored in
# batches of billing.usage.ingestion.MAX_EVENTS_PER_BATCH, a call never split).
MAX_CALLS_PER_REQUEST = 2000


# Why a record was refused, for machines (RecordRejected.code, the metrics' and the
# kept refusals' reason); its message says it in words. UNKNOWN_CUSTOMER and INVALID
# are ingestion's own (billing.usage.ingestion.Rejection.code): a call refused there.
NOT_JSON = "not_json"
NO_CUSTOMER = "no_customer"
BAD_TOKENS = "bad_tokens"
REFUSAL_CODES = (NO_CUSTOMER, UNKNOWN_CUSTOMER, BAD_TOKENS, NOT_JSON, INVALID)


class RecordRejected(Exception):
    """A received record that cannot be billed: the reason, in words, and its
    `code` (REFUSAL_CODES)."""

    def __init__(self, message: str, *, code: str = INVALID):
        super().__init__(message)
        self.code = code


class RecordSkipped(Exception):
    """A received record that is rightly not billed (a failed call, a span that is
    not a model call): counted, never an error. A failed call may name the hold
    its run took (`hold`) and its `customer`, whose hold it releases if still open
    (billing.usage.holds.holds_closed_by_calls)."""

    def __init__(self, hold: str | None = None, customer: str | None = None):
        super().__init__(hold)
        self.hold = hold
        self.customer = customer


# What a call's metadata (LiteLLM's request metadata, a span's attribute) names the
# hold its run took by (API.md "Holds"): its usage settles the hold, its failure
# releases it.
HOLD_FIELD = "billing_hold"
HOLD_ATTRIBUTE = "billing.hold"


# A hold's id as billing.hold_models.hold_public_id makes them.
HOLD_ID = re.compile(r"hold_[0-9a-f]{24}")


def hold_named(value: object) -> str | None:
    """The hold a record names, or None (nothing named, or not a hold's id: then the
    usage is billed as any other, no hold touched)."""
    if not isinstance(value, str) or HOLD_ID.fullmatch(value) is None:
        return None
    return value


# A reader's mark for an NDJSON line that is not JSON (ingest.json_records): refused
# as a record, alone.
UNREADABLE = object()


@dataclass(slots=True)
class Call:
    """One model call: its id at the source, the customer's external id, the model
    as the source sent it, when it started, its tokens by kind (disjoint, see the
    module's note), where the source reports one its own cost, and where it reports
    it the name the caller asked for (LiteLLM's `model_group`, a span's
    gen_ai.request.model)."""

    id: str
    customer: str
    model: str
    moment: datetime
    tokens: dict[str, int]
    provider_cost: Decimal | None = None
    requested_model: str | None = None
    # The index of the record it came from in the request (the answer names it).
    index: int = 0
    # The hold its run took, which its usage settles (hold_named).
    hold: str | None = None


@dataclass(frozen=True, slots=True)
class SourceMapping:
    """A source's mapping (billing.integration_models.IntegrationSource), read once
    a request."""

    source: str
    event_name: str
    customer_from: str
    models: Mapping[str, str] = field(default_factory=dict)
    token_types: Mapping[str, str | None] = field(default_factory=dict)

    def priced(self, call: Call, card: Collection[str]) -> PricedModel:
        """The rate-card model the call is priced as, `card` the model values the
        rate cards name for the event name (billing.integrations.mapping.card_models)."""
        return priced_model(
            sent=call.model, requested=call.requested_model, models=self.models, card=card
        )

    def token_type_of(self, kind: str) -> str | None:
        return self.token_types.get(kind, kind)


def token_count(value: object, name: str) -> int:
    """A token count as a record carries it: a non-negative whole number (a JSON
    integer, or a float or string that is one, as some exporters send), at most
    MAX_TOKENS. Raises RecordRejected naming the field."""
    if isinstance(value, bool) or value is None:
        raise RecordRejected(f"{name} must be a whole number of tokens", code=BAD_TOKENS)
    if isinstance(value, int):
        count = value
    elif isinstance(value, (float, Decimal, str)):
        try:
            number = Decimal(str(value).strip()) if isinstance(value, (str, float)) else value
            # An exponent past the context's ("1e999999999") overflows: not a count.
            whole = number.is_finite() and number == number.to_integral_value()
        except (ArithmeticError, ValueError):
            raise RecordRejected(
                f"{name} must be a whole number of tokens", code=BAD_TOKENS
            ) from None
        if not whole:
            raise RecordRejected(f"{name} must be a whole number of tokens", code=BAD_TOKENS)
        if not -MAX_TOKENS <= number <= MAX_TOKENS:  # abs() would round, and overflow
            raise RecordRejected(f"{name} must be at most {MAX_TOKENS:,} tokens", code=BAD_TOKENS)
        count = int(number)
    else:
        raise RecordRejected(f"{name} must be a whole number of tokens", code=BAD_TOKENS)
    if count < 0:
        raise RecordRejected(f"{name} must not be negative", code=BAD_TOKENS)
    if count > MAX_TOKENS:
        raise RecordRejected(f"{name} must be at most {MAX_TOKENS:,} tokens", code=BAD_TOKENS)
    return count


def optional_count(record: Mapping, key: str, name: str | None = None) -> int:
    """record[key] as a token count, 0 when absent or null."""
    value = record.get(key)
    return 0 if value is None else token_count(value, name or key)


def text_field(value: object, name: str) -> str:
    """A non-empty storable string of at most MAX_TEXT characters."""
    if not isinstance(value, str) or not value.strip():
        raise RecordRejected(f"{name} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise RecordRejected(f"{name} must be at most {MAX_TEXT} characters")
    reason = unstorable_text_reason(value)
    if reason is not None:
        raise RecordRejected(f"{name}: {reason}")
    return value


def call_id(value: object, name: str = "id") -> str:
    """A call's id at its source: a text_field short enough for each of its event ids."""
    text = text_field(value, name)
    if len(text) > MAX_CALL_ID:
        raise RecordRejected(f"{name} must be at most {MAX_CALL_ID} characters")
    return text


# Seconds since the epoch past which no call lies (the year 5138): larger is refused.
MAX_EPOCH = 10**11


def epoch_moment(value: object, name: str, *, scale: int = 1) -> datetime:
    """A moment given as seconds (or nanoseconds, scale 10**9) since the epoch."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise RecordRejected(f"{name} must be a time since the epoch")
    if isinstance(value, int) and -MAX_EPOCH * scale < value < MAX_EPOCH * scale:
        # The common case (a span's nanoseconds), without Decimal's detour.
        return datetime.fromtimestamp(value / scale, UTC)
    try:
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
        return datetime.fromtimestamp(float(number / scale), UTC)
    except (ArithmeticError, ValueError, OSError):
        # ArithmeticError: OverflowError, and decimal's InvalidOperation and Overflow
        # (an exponent past the context's, "1e999999999").
        raise RecordRejected(f"{name} must be a time since the epoch") from None


def provider_cost(value: object, name: str) -> Decimal:
    """A source's own cost of a call (OpenRouter's `usage.cost`, a span's
    gen_ai.usage.cost) as an exact Decimal: a number (a double as its shortest
    text), finite, not negative, below MAX_COST. Raises RecordRejected naming the
    field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RecordRejected(f"{name} must be a number")
    try:
        cost = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise RecordRejected(f"{name} must be a number") from None
    if not cost.is_finite():
        raise RecordRejected(f"{name} must be a finite number")
    if cost < 0:
        raise RecordRejected(f"{name} must not be negative")
    if cost >= MAX_COST:
        raise RecordRejected(f"{name} must be less than {MAX_COST}")
    if not cost:
        return Decimal(0)  # -0, 0E-1000026: 0
    if cost.as_tuple().exponent < -MAX_COST_PLACES:
        raise RecordRejected(f"{name} must have at most {MAX_COST_PLACES} decimal places")
    return cost


def split_prompt(prompt: int, *, cached: int, cache_write: int, audio: int = 0) -> int:
    """The prompt's tokens billed as plain input: the prompt's count less what it
    holds of cached reads, cache writes and audio."""
    plain = prompt - cached - cache_write - audio
    if plain < 0:
        raise RecordRejected(
            f"the prompt's {prompt} tokens are fewer than its cached, cache-write and "
            f"audio tokens ({cached + cache_write + audio})",
            code=BAD_TOKENS,
        )
    return plain


def split_completion(completion: int, *, reasoning: int, audio: int = 0) -> int:
    """The completion's tokens billed as plain output: less its reasoning and audio."""
    plain = completion - reasoning - audio
    if plain < 0:
        raise RecordRejected(
            f"the completion's {completion} tokens are fewer than its reasoning and audio "
            f"tokens ({reasoning + audio})",
            code=BAD_TOKENS,
        )
    return plain


def model_properties(call: Call, priced: PricedModel) -> dict:
    """The model properties of a call's events: the model priced (what meters group
    by and cards price by), the name the source sent and, where it differs, the name
    the caller asked for (what re-rating names the model from again)."""
    properties = {"model": priced.model, "source_model": call.model}
    if call.requested_model and call.requested_model != call.model:
        properties["requested_model"] = call.requested_model
    return properties


def call_events(call: Call, mapping: SourceMapping, *, card: Collection[str]) -> list[dict]:
    """The usage events of one call, as POST /events takes them, its model priced
    by the source's mapping and the card's model values (SourceMapping.priced)."""
    names = model_properties(call, mapping.priced(call, card))
    # The moment itself, not its text: ingestion takes a datetime from its callers
    # (billing.usage.ingestion.parse_timestamp) and checks it as it checks a text's.
    timestamp = call.moment
    events = []
    for kind in TOKEN_KINDS:
        count = call.tokens.get(kind, 0)
        token_type = mapping.token_type_of(kind)
        if not count or not token_type:
            continue
        events.append(
            {
                "id": f"{call.id}:{kind}",
                "customer": call.customer,
                "event_name": mapping.event_name,
                "timestamp": timestamp,
                "properties": {
                    **names,
                    "token_type": token_type,
                    "tokens": count,
                    "source": mapping.source,
                },
            }
        )
    if call.provider_cost is not None:
        events.append(
            {
                "id": f"{call.id}:{PROVIDER_COST_KIND}",
                "customer": call.customer,
                "event_name": PROVIDER_COST_EVENT,
                "timestamp": timestamp,
                "properties": {
                    **names,
                    "cost": str(call.provider_cost),
                    "currency": "USD",
                    "source": mapping.source,
                },
            }
        )
    return events

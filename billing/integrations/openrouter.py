"""OpenRouter's usage records, each of two kinds, one a request, a JSON array of them,
or NDJSON:

- a generation, as its generation endpoint (GET /api/v1/generation?id=) answers it
  (`{"data": {...}}` or the object alone): `id`, `model`, `created_at`,
  `native_tokens_prompt`, `native_tokens_completion`, `native_tokens_reasoning`,
  `native_tokens_cached`, `total_cost`, `usage` (a number there: the credits
  charged) and `external_user`, the `user` the request named;
- a completion, as its chat completion endpoint answers it with usage accounting:
  `id`, `model`, `created`, `usage` an object with `prompt_tokens`,
  `completion_tokens`, their details' `cached_tokens`, `cache_write_tokens` and
  `reasoning_tokens`, and `cost`. OpenRouter does not send the request's `user` back:
  the caller adds it, or the mapping names another field.

The generation id is the call's id (a completion's `id` is its generation's), so a
call sent both ways is billed once. OpenRouter's own cost is kept beside our price
(the call's provider_cost: an `llm.provider_cost` event, billing.integrations.calls),
so that margins can set what OpenRouter charged against what the card bills.

Counts: the provider's own ("native") counts where the record has them, as
OpenRouter bills by them; the prompt holds its cached tokens and the completion its
reasoning tokens, each billed once under its own kind. A cancelled generation is
billed for the tokens it reports: OpenRouter bills a cancelled stream for the
tokens produced before it stopped.

The customer: by default (customer_from PER_KIND) the field each kind names it by,
a generation's `external_user`, a completion's `user`, and the `user.id` attribute
of its Broadcast's spans (OTLP JSON, read by billing.integrations.otlp); any other
customer_from names one field for every kind (`metadata.<key>` a key of the
record's `metadata`)."""

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from billing.integrations.calls import (
    BAD_TOKENS,
    CACHE_WRITE,
    CACHED_INPUT,
    INPUT,
    NO_CUSTOMER,
    NOT_JSON,
    OUTPUT,
    REASONING,
    Call,
    RecordRejected,
    RecordSkipped,
    SourceMapping,
    call_id,
    epoch_moment,
    optional_count,
    provider_cost,
    split_completion,
    split_prompt,
    text_field,
    token_count,
)
from billing.integrations.ingest import PER_KIND, UNREADABLE
from billing.integrations.litellm import METADATA_PREFIX
from common.periods import parse_instant

GENERATION = "generation"
COMPLETION = "completion"
# Where each kind names the customer when customer_from is PER_KIND (its default).
CUSTOMER_FIELDS = {GENERATION: "external_user", COMPLETION: "user"}
# The span attribute OpenRouter's Broadcast writes the request's `user` to.
BROADCAST_CUSTOMER = "user.id"
# A generation's fields that say it is one (its normalized counts, in older records).
GENERATION_COUNTS = ("native_tokens_prompt", "native_tokens_completion", "tokens_prompt")


def unwrapped(records: list) -> list:
    """The records of a body (billing.integrations.ingest.json_records), the
    generation endpoint's `{"data": ...}` unwrapped."""
    if len(records) == 1 and isinstance(records[0], dict) and set(records[0]) == {"data"}:
        data = records[0]["data"]
        return data if isinstance(data, list) else [data]
    return records


def broadcast_mapping(mapping: SourceMapping) -> SourceMapping:
    """The mapping its Broadcast's spans are read with: by default, their `user.id`
    attribute names the customer."""
    if mapping.customer_from != PER_KIND:
        return mapping
    return replace(mapping, customer_from=BROADCAST_CUSTOMER)


def _object(record: Mapping, key: str) -> Mapping:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordRejected(f"{key} must be an object")
    return value


def customer_of(record: Mapping, customer_from: str, kind: str) -> str:
    """The customer's external id: the field customer_from names, or by default
    (PER_KIND) the record kind's own field (CUSTOMER_FIELDS)."""
    field = CUSTOMER_FIELDS[kind] if customer_from == PER_KIND else customer_from
    if field.startswith(METADATA_PREFIX):
        value = _object(record, "metadata").get(field[len(METADATA_PREFIX) :])
    else:
        value = record.get(field)
    if value is None or value == "":
        if customer_from == PER_KIND:
            raise RecordRejected(
                f"the {kind} names no customer (no {field!r}; customer_from {PER_KIND!r})",
                code=NO_CUSTOMER,
            )
        raise RecordRejected(
            f"the record names no customer (customer_from {customer_from!r})", code=NO_CUSTOMER
        )
    return text_field(value, f"customer ({field})")


def _cost(record: Mapping, key: str, name: str) -> Decimal | None:
    value = record.get(key)
    return None if value is None else provider_cost(value, name)


def _moment(record: Mapping):
    if isinstance(record.get("created_at"), str):
        try:
            return parse_instant(record["created_at"])
        except ValueError:
            raise RecordRejected("created_at must be an ISO 8601 time with an offset") from None
    return epoch_moment(record.get("created"), "created")


def kind_of(record: Mapping) -> str:
    """A completion when `usage` is an object, a generation when the record has a
    generation's counts (its `usage` a number, or absent); else refused."""
    usage = record.get("usage")
    if isinstance(usage, dict):
        return COMPLETION
    if any(record.get(key) is not None for key in GENERATION_COUNTS):
        return GENERATION
    if usage is not None:
        raise RecordRejected(
            "usage must be an object (a completion's usage accounting), or the record a "
            "generation with native_tokens_prompt and native_tokens_completion",
            code=BAD_TOKENS,
        )
    raise RecordRejected("the record carries no token usage", code=BAD_TOKENS)


def _generation_count(record: Mapping, kind: str) -> int:
    """A generation's prompt or completion count: the provider's own, else
    OpenRouter's normalized count (older records), else none."""
    native = f"native_tokens_{kind}"
    if record.get(native) is not None:
        return token_count(record[native], native)
    return optional_count(record, f"tokens_{kind}")


def _completion_counts(usage: Mapping) -> tuple[int, int, int, int, int, Decimal | None]:
    """(prompt, completion, cached, cache_write, reasoning, cost) of a completion's
    usage accounting."""
    prompt = token_count(usage.get("prompt_tokens", 0), "usage.prompt_tokens")
    completion = token_count(usage.get("completion_tokens", 0), "usage.completion_tokens")
    prompt_details = _object(usage, "prompt_tokens_details")
    completion_details = _object(usage, "completion_tokens_details")
    cached = optional_count(
        prompt_details, "cached_tokens", "usage.prompt_tokens_details.cached_tokens"
    )
    cache_write = optional_count(
        prompt_details, "cache_write_tokens", "usage.prompt_tokens_details.cache_write_tokens"
    )
    reasoning = optional_count(
        completion_details, "reasoning_tokens", "usage.completion_tokens_details.reasoning_tokens"
    )
    return prompt, completion, cached, cache_write, reasoning, _cost(usage, "cost", "usage.cost")


def _generation_counts(record: Mapping) -> tuple[int, int, int, int, int, Decimal | None]:
    """The same of a generation: its native counts, its total_cost (else its
    `usage`, the same amount)."""
    prompt = _generation_count(record, "prompt")
    completion = _generation_count(record, "completion")
    cached = optional_count(record, "native_tokens_cached")
    reasoning = optional_count(record, "native_tokens_reasoning")
    cost = _cost(record, "total_cost", "total_cost")
    if cost is None:
        cost = _cost(record, "usage", "usage")
    return prompt, completion, cached, 0, reasoning, cost


def call_of(record: object, mapping: SourceMapping, index: int) -> Call:
    if record is UNREADABLE:
        raise RecordRejected("this line is not JSON", code=NOT_JSON)
    if not isinstance(record, dict):
        raise RecordRejected(
            "each record must be a JSON object (an OpenRouter generation or completion)"
        )
    if record.get("error"):
        raise RecordSkipped
    identifier = call_id(record.get("id"))
    kind = kind_of(record)
    customer = customer_of(record, mapping.customer_from, kind)
    model = text_field(record.get("model"), "model")
    moment = _moment(record)
    if kind == COMPLETION:
        counts = _completion_counts(record["usage"])
    else:
        counts = _generation_counts(record)
    prompt, completion, cached, cache_write, reasoning, cost = counts
    tokens = {
        INPUT: split_prompt(prompt, cached=cached, cache_write=cache_write),
        CACHED_INPUT: cached,
        CACHE_WRITE: cache_write,
        OUTPUT: split_completion(completion, reasoning=reasoning),
        REASONING: reasoning,
    }
    return Call(identifier, customer, model, moment, tokens, provider_cost=cost, index=index)

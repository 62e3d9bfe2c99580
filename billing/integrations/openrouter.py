"""OpenRouter's usage records: a generation as its generation endpoint reports it
(`{"data": {...}}` or the object alone: `id`, `model`, `created_at`,
`native_tokens_prompt`, `native_tokens_completion`, `native_tokens_reasoning`,
`native_tokens_cached`, `total_cost`), or a completion answered with usage
accounting (`id`, `model`, `created`, `usage` with `prompt_tokens`,
`completion_tokens`, their details' `cached_tokens` and `reasoning_tokens`, and
`cost`), one a request, a JSON array of them, or NDJSON. The generation id is the
call's id; OpenRouter's own cost is kept beside our price (the call's
provider_cost: an `llm.provider_cost` event, billing.integrations.calls), so that
margins can set what OpenRouter charged against what the card bills.

Counts: the provider's own ("native") counts where the record has them, as
OpenRouter bills by them; the prompt holds its cached tokens and the completion
its reasoning tokens, each billed once under its own kind."""

from collections.abc import Mapping
from decimal import Decimal

from billing.core.periods import parse_instant
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
from billing.integrations.ingest import UNREADABLE
from billing.integrations.litellm import METADATA_PREFIX


def unwrapped(records: list) -> list:
    """The records of a body (billing.integrations.ingest.json_records), the
    generation endpoint's `{"data": ...}` unwrapped."""
    if len(records) == 1 and isinstance(records[0], dict) and set(records[0]) == {"data"}:
        data = records[0]["data"]
        return data if isinstance(data, list) else [data]
    return records


def _object(record: Mapping, key: str) -> Mapping:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordRejected(f"{key} must be an object")
    return value


def customer_of(record: Mapping, customer_from: str) -> str:
    if customer_from.startswith(METADATA_PREFIX):
        value = _object(record, "metadata").get(customer_from[len(METADATA_PREFIX) :])
    else:
        value = record.get(customer_from)
    if value is None or value == "":
        raise RecordRejected(
            f"the record names no customer (customer_from {customer_from!r})", code=NO_CUSTOMER
        )
    return text_field(value, f"customer ({customer_from})")


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


def call_of(record: object, mapping: SourceMapping, index: int) -> Call:
    if record is UNREADABLE:
        raise RecordRejected("this line is not JSON", code=NOT_JSON)
    if not isinstance(record, dict):
        raise RecordRejected("each record must be a JSON object (an OpenRouter generation)")
    if record.get("cancelled") is True or record.get("error"):
        raise RecordSkipped
    identifier = call_id(record.get("id"))
    customer = customer_of(record, mapping.customer_from)
    model = text_field(record.get("model"), "model")
    moment = _moment(record)
    usage = _object(record, "usage")
    if usage:
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
            completion_details,
            "reasoning_tokens",
            "usage.completion_tokens_details.reasoning_tokens",
        )
        cost = _cost(usage, "cost", "usage.cost")
    elif any(key in record for key in ("native_tokens_prompt", "tokens_prompt")):
        native = "native_tokens_prompt" in record
        prefix = "native_tokens_" if native else "tokens_"
        prompt = optional_count(record, f"{prefix}prompt")
        completion = optional_count(record, f"{prefix}completion")
        cached = optional_count(record, "native_tokens_cached")
        cache_write = 0
        reasoning = optional_count(record, "native_tokens_reasoning")
        cost = _cost(record, "total_cost", "total_cost")
    else:
        raise RecordRejected("the record carries no token usage", code=BAD_TOKENS)
    tokens = {
        INPUT: split_prompt(prompt, cached=cached, cache_write=cache_write),
        CACHED_INPUT: cached,
        CACHE_WRITE: cache_write,
        OUTPUT: split_completion(completion, reasoning=reasoning),
        REASONING: reasoning,
    }
    return Call(identifier, customer, model, moment, tokens, provider_cost=cost, index=index)

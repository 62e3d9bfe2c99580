"""What LiteLLM's `generic_api` logging callback sends: its StandardLoggingPayload,
one per call, as a JSON array (its default), NDJSON, or one object a request. A
successful call becomes a Call; a failed one (`status` "failure") is not billed.

Its tokens come from the payload's usage object (`metadata.usage_object`, as the
provider answered, normalized by LiteLLM to OpenAI's shape) or, without one, its
`prompt_tokens` and `completion_tokens`. OpenAI's counts hold the cached and audio
tokens inside the prompt's and the reasoning and audio tokens inside the
completion's; LiteLLM counts Anthropic's cache reads and writes inside the prompt's
too: each is billed once, under its own kind (billing.integrations.calls).

Its `model` is the model sent to the provider: through the proxy (its Router) the
deployment's (`openai/o3`, `azure/my-o3-deployment`), the name the caller asked for
being the payload's `model_group` (`o3`); from the SDK alone the model called, with
no model_group. Both are kept, and the model is priced by
billing.integrations.model_names.

The request's metadata may name the hold its run took (`billing_hold`: the proxy's
request `metadata`, or the SDK's `spend_logs_metadata`): the call's usage settles
it, a failed call releases it (billing.usage.holds)."""

from collections.abc import Mapping

from billing.integrations.calls import (
    AUDIO_INPUT,
    AUDIO_OUTPUT,
    BAD_TOKENS,
    CACHE_WRITE,
    CACHED_INPUT,
    HOLD_FIELD,
    INPUT,
    NO_CUSTOMER,
    NOT_JSON,
    OUTPUT,
    REASONING,
    UNREADABLE,
    Call,
    RecordRejected,
    RecordSkipped,
    SourceMapping,
    call_id,
    epoch_moment,
    hold_named,
    optional_count,
    split_completion,
    split_prompt,
    text_field,
    token_count,
)
from common.nesting import TOO_DEEP

# customer_from -> where the payload names the customer: its end user (the
# request's `user`: LiteLLM's proxy puts it in `end_user` and the metadata's
# user_api_key_end_user_id, the SDK only in `model_parameters`), or the LiteLLM
# key's team, alias, user or organization.
# "metadata.<name>" reads the request's own metadata (requester_metadata, then
# spend_logs_metadata).
CUSTOMER_FIELDS = {
    "end_user": None,
    "team_id": "user_api_key_team_id",
    "team_alias": "user_api_key_team_alias",
    "key_alias": "user_api_key_alias",
    "user_id": "user_api_key_user_id",
    "org_id": "user_api_key_org_id",
}
METADATA_PREFIX = "metadata."


def customer_from_valid(name: str) -> bool:
    return name in CUSTOMER_FIELDS or (
        name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX)
    )


def _mapping(record: Mapping, key: str) -> Mapping:
    value = record.get(key)
    if value is None or value is TOO_DEEP:
        return {}
    if not isinstance(value, dict):
        raise RecordRejected(f"{key} must be an object")
    return value


def request_metadata(metadata: Mapping, key: str) -> object:
    """A value of the request's own metadata: what the caller sent as `metadata`
    through the proxy (requester_metadata), else its spend_logs_metadata (which the
    SDK passes on as given)."""
    value = _mapping(metadata, "requester_metadata").get(key)
    if value is None:
        value = _mapping(metadata, "spend_logs_metadata").get(key)
    return value


def hold_of(record: Mapping) -> str | None:
    """The hold the call's request metadata names (calls.HOLD_FIELD), if any; a
    record whose metadata cannot be read names none."""
    try:
        return hold_named(request_metadata(_mapping(record, "metadata"), HOLD_FIELD))
    except RecordRejected:
        return None


def _failed_hold(record: Mapping, mapping: SourceMapping) -> tuple[str | None, str | None]:
    """The hold a failed call names and the customer it names (None: none read)."""
    hold = hold_of(record)
    if hold is None:
        return None, None
    try:
        return hold, customer_of(record, mapping.customer_from)
    except RecordRejected:
        return None, None


def customer_of(record: Mapping, customer_from: str) -> str:
    metadata = _mapping(record, "metadata")
    if customer_from == "end_user":
        value = (
            record.get("end_user")
            or metadata.get("user_api_key_end_user_id")
            or _mapping(record, "model_parameters").get("user")
        )
    elif customer_from.startswith(METADATA_PREFIX):
        value = request_metadata(metadata, customer_from[len(METADATA_PREFIX) :])
    else:
        value = metadata.get(CUSTOMER_FIELDS.get(customer_from) or customer_from)
    if value is None or value == "":
        raise RecordRejected(
            f"the call names no customer (customer_from {customer_from!r})", code=NO_CUSTOMER
        )
    return text_field(value, f"customer ({customer_from})")


def call_of(record: object, mapping: SourceMapping, index: int) -> Call:
    if record is UNREADABLE:
        raise RecordRejected("this line is not JSON", code=NOT_JSON)
    if not isinstance(record, dict):
        raise RecordRejected("each record must be a JSON object (LiteLLM's logging payload)")
    status = record.get("status")
    if status == "failure" or record.get("error_str"):
        raise RecordSkipped(*_failed_hold(record, mapping))
    if status not in (None, "success"):
        # Not repeated in the answer: it may be anything, of any size.
        raise RecordRejected("status must be 'success' or 'failure'")
    id_ = call_id(record.get("id") or record.get("litellm_call_id"))
    customer = customer_of(record, mapping.customer_from)
    model = text_field(record.get("model"), "model")
    # The router's model group (the proxy's public model name); "" or absent without one.
    group = record.get("model_group")
    requested = None if group in (None, "") else text_field(group, "model_group")
    moment = epoch_moment(record.get("startTime"), "startTime")
    usage = _mapping(_mapping(record, "metadata"), "usage_object") or record
    if usage.get("prompt_tokens") is None and usage.get("completion_tokens") is None:
        raise RecordRejected("the call carries no token usage", code=BAD_TOKENS)
    prompt_details = _mapping(usage, "prompt_tokens_details")
    completion_details = _mapping(usage, "completion_tokens_details")
    prompt = token_count(usage.get("prompt_tokens", 0), "prompt_tokens")
    completion = token_count(usage.get("completion_tokens", 0), "completion_tokens")
    cached = optional_count(prompt_details, "cached_tokens", "prompt_tokens_details.cached_tokens")
    if not cached:
        cached = optional_count(usage, "cache_read_input_tokens")
    cache_write = optional_count(usage, "cache_creation_input_tokens")
    audio_in = optional_count(prompt_details, "audio_tokens", "prompt_tokens_details.audio_tokens")
    reasoning = optional_count(
        completion_details, "reasoning_tokens", "completion_tokens_details.reasoning_tokens"
    )
    audio_out = optional_count(
        completion_details, "audio_tokens", "completion_tokens_details.audio_tokens"
    )
    tokens = {
        INPUT: split_prompt(prompt, cached=cached, cache_write=cache_write, audio=audio_in),
        CACHED_INPUT: cached,
        CACHE_WRITE: cache_write,
        AUDIO_INPUT: audio_in,
        OUTPUT: split_completion(completion, reasoning=reasoning, audio=audio_out),
        REASONING: reasoning,
        AUDIO_OUTPUT: audio_out,
    }
    return Call(
        id_,
        customer,
        model,
        moment,
        tokens,
        requested_model=requested,
        index=index,
        hold=hold_of(record),
    )

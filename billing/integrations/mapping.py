"""A source's mapping as finance reads and changes it, through the API (GET/PUT
/api/v1/integrations/<source>) or the admin: one validation for both
(mapping_checked), and which of the model names received the rate card knows
(card_models, models_seen_of, priced as ingestion prices them:
billing.integrations.model_names): a model the card does not name is priced at the
card's default row, which finance must see before the invoice does."""

from collections.abc import Mapping

from billing.integration_models import IntegrationSource
from billing.integrations import litellm
from billing.integrations.calls import TOKEN_KINDS, RecordRejected, text_field
from billing.integrations.model_names import priced_model, unpriced
from common.errors import InvalidRequest
from plans.models import ChargeRate, PlanVersion

FIELDS = ("event_name", "customer_from", "models", "token_types")
# Model names a source maps: more is a pasted price list, not a mapping.
MAX_MODELS = 500
# The longest token_type an event may carry under a kind.
MAX_TOKEN_TYPE = 64
SOURCE_NAMES = tuple(source for source, _ in IntegrationSource.SOURCES)


def source_known(source: str) -> bool:
    return source in SOURCE_NAMES


def unknown_source_words(source: str) -> str:
    return f"no source {source!r}; one of {', '.join(SOURCE_NAMES)}"


def _text(value: object, name: str, *, most: int = 255) -> str:
    """A non-empty storable string of at most `most` characters; the reason why not,
    naming `name`, as ValueError."""
    try:
        text = text_field(value, name)
    except RecordRejected as exc:
        raise ValueError(str(exc)) from None
    if len(text) > most:
        raise ValueError(f"{name} must be at most {most} characters")
    return text


def _customer_from(source: str, value: object) -> str:
    name = _text(value, "customer_from")
    if source == IntegrationSource.LITELLM and not litellm.customer_from_valid(name):
        fields = ", ".join(litellm.CUSTOMER_FIELDS)
        raise ValueError(
            f"customer_from {name!r} is not a field of LiteLLM's payload: one of {fields}, "
            f"or {litellm.METADATA_PREFIX}<key> for the request's metadata"
        )
    return name


def _models(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("models must be an object: the source's model name -> the card's value")
    if len(value) > MAX_MODELS:
        raise ValueError(f"models: at most {MAX_MODELS} model names, not {len(value)}")
    models = {}
    for name, card_value in value.items():
        key = _text(name, "models: a model name")
        models[key] = _text(card_value, f"models[{key!r}]")
    return models


def _token_types(value: object) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise ValueError("token_types must be an object: a token kind -> its token_type or null")
    token_types: dict[str, str | None] = {}
    for kind, token_type in value.items():
        if kind not in TOKEN_KINDS:
            raise ValueError(
                f"token_types: {str(kind)[:80]!r} is not a token kind; one of "
                f"{', '.join(TOKEN_KINDS)}"
            )
        token_types[kind] = (
            None
            if token_type is None
            else _text(token_type, f"token_types[{kind!r}]", most=MAX_TOKEN_TYPE)
        )
    return token_types


CHECKS = {
    "event_name": lambda source, value: _text(value, "event_name"),
    "customer_from": _customer_from,
    "models": lambda source, value: _models(value),
    "token_types": lambda source, value: _token_types(value),
}


def mapping_checked(source: str, document: object) -> dict:
    """The changes a document asks for (any of FIELDS), checked: each wrong or
    unknown field is named in one InvalidRequest, so that nothing is changed."""
    if not isinstance(document, Mapping):
        raise InvalidRequest(
            "the mapping must be a JSON object", fields={"mapping": ["must be an object"]}
        )
    errors: dict[str, list[str]] = {}
    changes = {}
    for name, value in document.items():
        if name not in CHECKS:
            errors[str(name)[:80]] = [f"unknown field; the fields are {', '.join(FIELDS)}"]
            continue
        try:
            changes[name] = CHECKS[name](source, value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        message = "; ".join(f"{name}: {texts[0]}" for name, texts in errors.items())
        raise InvalidRequest(message, fields=errors)
    return changes


def mapping_save(row: IntegrationSource, changes: dict, *, by: str) -> IntegrationSource:
    """Store checked changes (mapping_checked). Only the mapping's columns are
    written: the preview (recent, models_seen) is the ingestion's."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_by = by[:255]
    row.save(update_fields=[*changes, "updated_by", "updated_at"])
    return row


def card_models(event_name: str) -> set[str]:
    """The `model` values the rate cards name for usage of this event name: rows
    with a `model` condition, on the charges of published plan versions whose
    meter reads the event name."""
    whens = ChargeRate.objects.filter(
        charge__meter__event_name=event_name,
        charge__version__status=PlanVersion.PUBLISHED,
        when__has_key="model",
    ).values_list("when", flat=True)
    return {str(when["model"]) for when in whens}


def models_seen_of(row: IntegrationSource) -> dict[str, dict]:
    """The model names received (as sent; `requested`: the name they were asked
    for by, where another), each with what it is priced as now (`mapped`: the next
    call is billed so, by the mapping, the name asked for or the bare name) and
    whether that prices it (`known`: false is priced at the card's default row, and
    listed as unpriced; true too when no card names any model)."""
    card = card_models(row.event_name)
    models = row.models or {}
    seen = {}
    for model, entry in (row.models_seen or {}).items():
        priced = priced_model(
            sent=model, requested=entry.get("requested"), models=models, card=card
        )
        seen[model] = {**entry, "mapped": priced.model, "known": not unpriced(priced, card)}
    return seen

"""Which rate-card model a call is priced as, from the names its source gives: the
name it sent (LiteLLM's deployment `openai/o3`, a trace's dated snapshot
`gpt-4o-2024-08-06`) and, where the source reports it, the name the caller asked for
(LiteLLM's `model_group`, OpenTelemetry's `gen_ai.request.model`).

The first of: the source's mapping (of the name sent, then of the name asked for);
a name the card knows (sent, then asked for); that name without its provider prefix
(`openai/`, `anthropic/`) and its dated snapshot suffix (`-2024-08-06`,
`-20250514`, `@20250514`). A call none of them prices keeps the name the caller
asked for, else the name sent (what finance maps): the card's default row prices
it, and the answer lists it as unpriced (unless no card names any model: then
every model is priced alike, see `unpriced`). One rule, read at ingestion and again
when stored usage is re-rated (events keep `source_model` and `requested_model` as
sent)."""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

# A snapshot's date at a name's end: -2024-08-06, -20250514, @20250514.
_DATED = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|[-@]\d{8})$")


def bare_name(name: str) -> str:
    """A model name without its provider prefix (all up to the last `/`) and its
    dated snapshot suffix."""
    return _DATED.sub("", name.rsplit("/", 1)[-1]) or name


@dataclass(frozen=True, slots=True)
class PricedModel:
    """The model a call is priced as, and whether the card names it (false: the
    card's default row, or no row, prices it)."""

    model: str
    priced: bool


def priced_model(
    *,
    sent: str,
    requested: str | None,
    models: Mapping[str, str],
    card: Collection[str],
) -> PricedModel:
    """The model a call is priced as (see the module): `models` is the source's
    mapping (its name -> the card's value), `card` the model values the rate cards
    name for the source's event name."""
    names = [sent] if not requested or requested == sent else [sent, requested]
    for name in names:
        if name in models:
            return PricedModel(models[name], models[name] in card)
    for name in names:
        if name in card:
            return PricedModel(name, True)
    for name in names:
        bare = bare_name(name)
        if bare in models:
            return PricedModel(models[bare], models[bare] in card)
        if bare in card:
            return PricedModel(bare, True)
    return PricedModel(requested or sent, False)


def unpriced(priced: PricedModel, card: Collection[str]) -> bool:
    """Whether a call priced so is one finance must see (a gateway's
    `unpriced_models`, the admin's flag, the alert): no card names its model while
    some card names models. Where no card names any model, every model is priced
    alike (by token type, or one price), and there is nothing to map."""
    return not priced.priced and bool(card)

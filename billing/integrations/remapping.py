"""Stored gateway calls named again at today's mapping, for re-rating
(billing.invoicing.rerating): each event of a gateway (LiteLLM, OpenRouter,
OpenTelemetry) keeps the name its source sent (`source_model`) and the name the
caller asked for (`requested_model`), so the one rule that named its model at
ingestion (billing.integrations.model_names.priced_model) names it again with the
source's mapping and the rate cards of its event name as they are now. An event whose model comes
out otherwise is restated (billing.usage.restated_events): its `model` rewritten,
its usage counted again."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import TextField
from django.db.models.functions import Cast

from billing.integration_models import IntegrationSource
from billing.integrations.mapping import SOURCE_NAMES, card_models
from billing.integrations.model_names import priced_model
from billing.models import UsageEvent
from billing.usage.metering import PROPERTIES_DECODER
from billing.usage.restated_events import Restatement, events_restate

# Stored events read a chunk at a time.
CHUNK = 2000


@dataclass(frozen=True)
class Renamed:
    """What naming the window's gateway calls again changed: how many events, and
    each (source, name sent, model before, model now) met, with its events."""

    events: int
    models: dict[tuple[str, str, str, str], int]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def gateway_models_rename(
    *,
    start: datetime,
    end: datetime,
    customer_ids: Iterable[int] | None = None,
    event_names: Iterable[str] | None = None,
) -> Renamed:
    """Name the model of every stored gateway call in [start, end) (of these
    customers and event names, when given) again at each source's mapping and the
    rate cards now, and restate the events whose model changes, in the caller's
    transaction (events_restate: the rollup lock is held exclusively until it
    ends). Events without `source_model` (stored before ingestion kept it, or
    sent to POST /events) keep their model. Idempotent: a second call finds
    nothing to change."""
    # Each source's mapping, and the card's model values for its event name, as
    # ingestion reads them (its provider-cost events are named by its tokens' card).
    mappings = {
        row.source: (dict(row.models or {}), card_models(row.event_name))
        for row in IntegrationSource.objects.all()
    }
    events = UsageEvent.objects.filter(
        timestamp__gte=start,
        timestamp__lt=end,
        properties__has_key="source_model",
        properties__source__in=SOURCE_NAMES,
    )
    if customer_ids is not None:
        events = events.filter(customer_id__in=list(customer_ids))
    if event_names is not None:
        events = events.filter(event_name__in=list(event_names))
    rows = (
        events.annotate(raw=Cast("properties", TextField()))
        .values_list("id", "customer_id", "event_id", "event_name", "timestamp", "raw")
        .order_by()
        .iterator(chunk_size=CHUNK)
    )
    restated: list[Restatement] = []
    models: dict[tuple[str, str, str, str], int] = {}
    for row_id, customer_id, event_id, event_name, timestamp, raw in rows:
        properties = PROPERTIES_DECODER.decode(raw)
        sent, source = _text(properties.get("source_model")), properties.get("source")
        if sent is None or source not in mappings:
            continue
        models, card = mappings[source]
        now = priced_model(
            sent=sent,
            requested=_text(properties.get("requested_model")),
            models=models,
            card=card,
        ).model
        before = properties.get("model")
        if now == before:
            continue
        key = (source, sent, str(before), now)
        models[key] = models.get(key, 0) + 1
        restated.append(
            Restatement(
                row_id,
                customer_id,
                event_id,
                event_name,
                timestamp,
                {**properties, "model": now},
            )
        )
    return Renamed(events_restate(restatements=restated), models)

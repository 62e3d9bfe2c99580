"""Finance is told when a usage source first sends a model no rate card prices
(billing.integrations.model_names.unpriced): one `unpriced_model` alert per source
and model, ever, to the seller's team (the team addresses that take the kind, and
the webhook `alert.unpriced_model`), through billing.notifications.alerts like the
low-margin alert, so that a restore's pause holds it as it holds every sender.

Once across processes: the alert is raised by the one request that inserts the
model's UnpricedModel row (its unique key decides). A process remembers the models
it knows to have been announced, so that a source's every request does not ask
the database again."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from billing.integration_models import UnpricedModel
from billing.models import Alert
from billing.notifications.alerts import alert_raise
from common.periods import iso
from customers.models import Customer

# How many (source, model) a process remembers as announced; past it, it forgets
# them all (one query a request more, until it has learnt them again).
REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class UnpricedCall:
    """The first call of a request priced as `model` at the card's default row: the
    names its source gave and its customer's external id."""

    model: str
    source_model: str
    requested_model: str | None
    customer: str


class Announced:
    """The (source, model) this process knows finance was told about."""

    def __init__(self):
        self._known: set[tuple[str, str]] = set()

    def clear(self) -> None:
        self._known = set()

    def unknown(self, source: str, models: list[str]) -> list[str]:
        return [model for model in models if (source, model) not in self._known]

    def add(self, source: str, models: list[str]) -> None:
        if len(self._known) + len(models) > REMEMBERED:
            self._known = set()
        self._known.update((source, model) for model in models)


announced = Announced()


def unpriced_models_announce(
    *, source: str, calls: list[UnpricedCall], now: datetime
) -> list[Alert]:
    """Raise `unpriced_model` for each model of `calls` not announced for this
    source before: once per source and model, whichever process and however many
    requests meet it first (the UnpricedModel row, inserted with the alert in one
    transaction, decides). The alerts raised. Cost: nothing for models this process
    knows announced; else one query, and an insert and an alert per new model."""
    first = {}
    for call in calls:
        first.setdefault(call.model, call)
    unknown = announced.unknown(source, list(first))
    if not unknown:
        return []
    stored = set(
        UnpricedModel.objects.filter(source=source, model__in=unknown).values_list(
            "model", flat=True
        )
    )
    raised = []
    for model in unknown:
        if model in stored:
            continue
        alert = _announce(source, first[model], now)
        if alert is not None:
            raised.append(alert)
    announced.add(source, unknown)
    return raised


def _announce(source: str, call: UnpricedCall, now: datetime) -> Alert | None:
    customer = Customer.objects.filter(external_id=call.customer).first()
    if customer is None:  # the call's customer is known: its events were stored
        return None
    with transaction.atomic():
        _, created = UnpricedModel.objects.get_or_create(
            source=source, model=call.model, defaults={"first_seen_at": now}
        )
        if not created:
            return None
        return alert_raise(
            customer=customer,
            kind=Alert.UNPRICED_MODEL,
            period_start=now,
            key=f"{source}:{call.model}"[:255],
            payload={
                "source": source,
                "model": call.model,
                "source_model": call.source_model,
                "requested_model": call.requested_model,
                "customer": customer.external_id,
                "first_seen": iso(now),
            },
            now=now,
        )

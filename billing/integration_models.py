"""Where usage arrives from besides POST /events: an LLM gateway (LiteLLM's
generic_api callback, OpenRouter) or OpenTelemetry spans (billing.integrations).
One row per source: the mapping finance reads and changes (which event name the
calls become, where the customer is found, how the source's model names map onto
the rate card's values, which token kinds are billed and under which
`token_type`), and what the last calls received became (a preview, kept short).
And the model names a source sent that no rate card priced, each once: finance is
told the first time (UnpricedModel)."""

from django.db import models
from django.db.models import CharField, DateTimeField, JSONField, UniqueConstraint
from django.utils.translation import gettext_lazy as _

# How many of the last calls a source keeps for its preview.
RECENT_CALLS = 20
# How many distinct model names a source remembers having received.
MODELS_SEEN = 200


class IntegrationSource(models.Model):
    LITELLM = "litellm"
    OPENROUTER = "openrouter"
    OTLP = "otlp"
    SOURCES = [
        (LITELLM, "LiteLLM"),
        (OPENROUTER, "OpenRouter"),
        (OTLP, _("OpenTelemetry (OTLP)")),
    ]

    source = CharField(max_length=16, choices=SOURCES, unique=True, verbose_name=_("source"))
    event_name = CharField(
        max_length=255,
        default="llm.tokens",
        verbose_name=_("event name"),
        help_text=_("The events each call becomes; a meter reading this event name bills them."),
    )
    customer_from = CharField(
        max_length=255,
        verbose_name=_("customer from"),
        help_text=_("Where a call names the customer (its external id)."),
    )
    # The source's model name -> the rate card's value ("openai/gpt-4o-2024-08-06" ->
    # "gpt-4o"). A model not listed is taken as the source names it.
    models = JSONField(default=dict, blank=True, verbose_name=_("model names"))
    # A token kind (billing.integrations.calls.TOKEN_KINDS) -> the token_type the
    # events carry, or null: that kind is not billed. A kind not listed keeps its name.
    token_types = JSONField(default=dict, blank=True, verbose_name=_("token types"))
    # The last calls received and what they became, newest first (RECENT_CALLS).
    recent = JSONField(default=list, blank=True, editable=False)
    # Model name as received -> {"mapped", "calls", "last_seen"}: the names received,
    # so that a model the card does not know shows up (MODELS_SEEN at most).
    models_seen = JSONField(default=dict, blank=True, editable=False)
    updated_at = DateTimeField(auto_now=True, verbose_name=_("updated at"))
    updated_by = CharField(max_length=255, blank=True, verbose_name=_("updated by"))

    class Meta:
        verbose_name = _("usage source")
        verbose_name_plural = _("usage sources")

    def __str__(self) -> str:
        return self.get_source_display()


class UnpricedModel(models.Model):
    """A model a source's calls were priced as at the card's default row, or no row,
    the first time that happened (billing.integrations.unpriced_alerts): its unique
    key makes finance's notice go once, whichever process saw the model first.
    Kept once the model is mapped: a model is new once."""

    source = CharField(max_length=16, choices=IntegrationSource.SOURCES)
    # The model as priced (billing.integrations.model_names.priced_model): the name the
    # caller asked for, else the name sent, else what the mapping made of it.
    model = CharField(max_length=255)
    first_seen_at = DateTimeField()

    class Meta:
        constraints = [
            UniqueConstraint(fields=["source", "model"], name="unpriced_model_once_per_source")
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.model}"


class RefusedRecord(models.Model):
    """A record a source sent that could not be billed (no customer, a customer we do
    not know, tokens that do not add up...), kept as received for
    BILLING_REFUSED_RECORD_DAYS so that an operator sees it and, once the mapping or
    the customer is fixed, replays it (billing.integrations.refused). `record` is its
    JSON text, numbers as sent; a record kept cut (see refused.record_text) is not
    replayable. One row per refusal: a record sent and refused twice is two rows."""

    # RecordRejected.code (billing.integrations.calls.REFUSAL_CODES): why, for machines;
    # its words for people.
    REASONS = [
        ("no_customer", _("Names no customer")),
        ("unknown_customer", _("Unknown customer")),
        ("bad_tokens", _("Token counts unusable")),
        ("not_json", _("Not JSON")),
        ("invalid", _("Not a record billing reads")),
    ]
    # What a replay became (billing.integrations.replay).
    OUTCOMES = [
        ("accepted", _("Billed")),
        ("duplicate", _("Already billed")),
        ("skipped", _("Not billable (a failed call)")),
        ("refused", _("Refused again")),
    ]

    source = CharField(max_length=16, choices=IntegrationSource.SOURCES, verbose_name=_("source"))
    received_at = DateTimeField(verbose_name=_("received at"))
    reason = CharField(max_length=32, choices=REASONS, verbose_name=_("reason"))
    message = models.TextField(verbose_name=_("message"))
    # The call's id as the answer named it ("" when the record had none readable).
    call_id = CharField(max_length=255, blank=True, verbose_name=_("call id"))
    record = models.TextField(blank=True, verbose_name=_("record"))
    replayable = models.BooleanField(default=True, verbose_name=_("replayable"))
    replayed_at = DateTimeField(null=True, blank=True, verbose_name=_("replayed at"))
    # Refused again: reason and message say why now.
    replay_outcome = CharField(
        max_length=16, blank=True, choices=OUTCOMES, verbose_name=_("replay outcome")
    )

    class Meta:
        verbose_name = _("refused record")
        verbose_name_plural = _("refused records")
        permissions = [("replay_refusedrecord", _("Can replay refused records"))]
        indexes = [
            # A source's list, newest first (the API pages by id).
            models.Index(fields=["source", "-id"], name="refused_source_newest"),
            # The purge, oldest first.
            models.Index(fields=["received_at"], name="refused_received_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} #{self.pk} ({self.reason})"

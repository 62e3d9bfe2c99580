"""Usage sources in the admin (LiteLLM, OpenRouter, OpenTelemetry): finance reads
and changes a source's mapping, checked by the API's own validation
(billing.integrations.mapping.mapping_checked), and sees what the last calls
became, with the model names the rate card does not price flagged and listed first
(priced as ingestion prices them: billing.integrations.mapping.models_seen_of)."""

from datetime import datetime
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.integration_models import IntegrationSource
from billing.integrations.calls import TOKEN_KINDS
from billing.integrations.ingest import source_row
from billing.integrations.mapping import SOURCE_NAMES, mapping_checked, mapping_save, models_seen_of
from common.admin_fields import moment_text
from common.admin_forms import add_billing_error, money_text, quantity_text
from common.errors import InvalidRequest

TOKEN_FIELD = "token_type_{}"


def models_text(models: dict) -> str:
    """The model mapping as finance reads and writes it: one 'source name = card value'
    a line."""
    return "\n".join(f"{name} = {value}" for name, value in models.items())


def models_read(text: str) -> dict[str, str] | list[str]:
    """The lines of models_text as a mapping; the lines that are not one, in words."""
    models: dict[str, str] = {}
    wrong: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.rpartition("=")
        if not sep:
            wrong.append(
                gettext("Line {number}: write 'source name = card value'.").format(number=number)
            )
            continue
        name = name.strip()
        if name in models:
            wrong.append(
                gettext("Line {number}: {name} is mapped twice.").format(number=number, name=name)
            )
            continue
        models[name] = value.strip()
    return wrong or models


class IntegrationSourceForm(forms.ModelForm):
    """The mapping's fields, each checked only by mapping_checked (so that the API
    and the admin refuse the same things in the same words)."""

    event_name = forms.CharField(
        required=False,
        strip=False,
        label=_("Event name"),
        help_text=_("The events each call becomes; a meter reading this event name bills them."),
    )
    customer_from = forms.CharField(
        required=False,
        strip=False,
        label=_("Customer from"),
        help_text=_("Where a call names the customer (its external id)."),
    )
    models = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 70, "spellcheck": "false"}),
        label=_("Model names"),
        help_text=_(
            "One a line: the model as the source names it = the rate card's model value, "
            "e.g. acme-ft-gpt-4o-2025 = gpt-4o. A model not listed is priced under the "
            "first name the card knows: the name sent, the name asked for, or either "
            "without provider prefix and date (openai/gpt-4o-2024-08-06 as gpt-4o)."
        ),
    )

    class Meta:
        model = IntegrationSource
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        row = self.instance
        token_types = row.token_types or {}
        for kind in TOKEN_KINDS:
            self.fields[TOKEN_FIELD.format(kind)] = forms.CharField(required=False, label=kind)
            self.initial.setdefault(TOKEN_FIELD.format(kind), token_types.get(kind, kind) or "")
        self.initial.setdefault("event_name", row.event_name)
        self.initial.setdefault("customer_from", row.customer_from)
        self.initial.setdefault("models", models_text(row.models or {}))
        self.changes: dict = {}

    def clean(self):
        cleaned = super().clean()
        models = models_read(cleaned.get("models") or "")
        if isinstance(models, list):
            for message in models:
                self.add_error("models", message)
            return cleaned
        token_types = {}
        for kind in TOKEN_KINDS:
            value = cleaned.get(TOKEN_FIELD.format(kind)) or ""
            if value != kind:
                token_types[kind] = value or None
        document = {
            "event_name": cleaned.get("event_name", ""),
            "customer_from": cleaned.get("customer_from", ""),
            "models": models,
            "token_types": token_types,
        }
        try:
            self.changes = mapping_checked(self.instance.source, document)
        except InvalidRequest as error:
            add_billing_error(self, error)
        return cleaned


def _moment(text: str | None) -> str:
    """A preview's stored moment (ISO text) as the admin writes moments."""
    if not text:
        return ""
    try:
        return moment_text(datetime.fromisoformat(text))
    except ValueError:
        return text


def _tokens(tokens: dict) -> str:
    """'input 1,000,000, output 40', a kind and its count never split over two lines."""
    return format_html_join(
        ", ",
        '<span class="name">{} {}</span>',
        ((token_type, quantity_text(count)) for token_type, count in (tokens or {}).items()),
    )


def _received(model: str, requested: str | None) -> str:
    """A model name received, with the name the caller asked for when the source
    gives another (LiteLLM's model group, a span's request model)."""
    if not requested:
        return model
    return format_html(
        '{} <span class="help">({})</span>',
        model,
        gettext("asked for as {model}").format(model=requested),
    )


def _cost(text: str | None) -> str:
    """A call's provider cost (USD, as the source gave it, to its own precision)."""
    return money_text(Decimal(text), "USD") if text else ""


@admin.register(IntegrationSource)
class IntegrationSourceAdmin(admin.ModelAdmin):
    form = IntegrationSourceForm
    list_display = ["source", "event_name", "customer_from", "models_count", "updated_at"]
    readonly_fields = ["source", "recent_calls", "models_received", "updated_at", "updated_by"]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["source", "event_name", "customer_from"]}),
            (_("Model names"), {"fields": ["models"]}),
            (
                _("Token types"),
                {
                    "fields": [TOKEN_FIELD.format(kind) for kind in TOKEN_KINDS],
                    "description": _(
                        "The token_type each kind of token is billed under on the rate "
                        "card. Empty: that kind is not billed."
                    ),
                },
            ),
            (_("Models received"), {"fields": ["models_received"]}),
            (_("Last calls received"), {"fields": ["recent_calls"]}),
            (None, {"fields": ["updated_at", "updated_by"]}),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The form's fields are its own (the token kinds' are made per kind), none
        # written to the row by the form: save_model stores the checked changes.
        return super().get_form(request, obj, change=change, **{**kwargs, "fields": []})

    def changelist_view(self, request, extra_context=None):
        # Every source is listed before its first call: finance maps models first.
        for source in SOURCE_NAMES:
            source_row(source)
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("model names"))
    def models_count(self, obj):
        return len(obj.models or {})

    @admin.display(description=_("Models received"))
    def models_received(self, obj):
        seen = models_seen_of(obj)
        if not seen:
            return gettext("No call received yet.")
        unknown = gettext("not on the rate card: priced at the default row")
        rows = format_html_join(
            "",
            '<tr{}><td class="name">{}</td><td class="name">{}</td><td class="figure">{}</td>'
            '<td>{}</td><td class="flag">{}</td></tr>',
            (
                (
                    "" if entry["known"] else format_html(' class="{}"', "unknown-model"),
                    _received(model, entry.get("requested")),
                    entry["mapped"],
                    quantity_text(entry.get("calls", 0)),
                    _moment(entry.get("last_seen")),
                    "" if entry["known"] else unknown,
                )
                for model, entry in sorted(seen.items(), key=lambda item: item[1]["known"])
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>"
            "</thead><tbody>{}</tbody></table>",
            gettext("Model received"),
            gettext("Billed as"),
            gettext("Calls"),
            gettext("Last seen"),
            rows,
        )

    @admin.display(description=_("Last calls received"))
    def recent_calls(self, obj):
        recent = obj.recent or []
        if not recent:
            return gettext("No call received yet.")
        rows = format_html_join(
            "",
            '<tr><td class="name">{}</td><td class="name">{}</td><td>{}</td><td>{}</td>'
            '<td>{}</td><td class="figure">{}</td><td>{}</td></tr>',
            (
                (
                    _moment(call.get("at")),
                    call.get("id") or "",
                    call.get("customer") or "",
                    (
                        format_html(
                            '<span class="name">{}</span> \N{RIGHTWARDS ARROW} '
                            '<span class="name">{}</span>',
                            call["model"],
                            call.get("mapped"),
                        )
                        if call.get("model")
                        else ""
                    ),
                    _tokens(call.get("tokens")),
                    _cost(call.get("provider_cost")),
                    call.get("error") or "",
                )
                for call in recent
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            gettext("Time"),
            gettext("Call"),
            gettext("Customer"),
            gettext("Model \N{RIGHTWARDS ARROW} billed as"),
            gettext("Tokens by type"),
            gettext("Provider cost"),
            gettext("Error"),
            rows,
        )

    def save_model(self, request, obj, form, change):
        mapping_save(obj, form.changes, by=request.user.get_username())

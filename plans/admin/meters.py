"""Meters in the admin: the form checks a meter with plans.validation and the
services save it. The charge's meter picker (an autocomplete on this admin)
finds a meter by its name or code first, its event name last."""

from django import forms
from django.contrib import admin
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.usage.metering import as_text
from common.admin_deletion import RefusedDeletionMixin
from common.admin_forms import EXACT_DECIMALS, ServiceValidatedForm, adopt
from common.admin_history import AuditHistoryAdmin
from plans import services
from plans.admin.deletion_refusals import meter_deletion_refusal
from plans.models import Meter
from plans.validation import validate_meter

METER_FIELDS = ("code", "name", "event_name", "aggregation", "value_property", "unique_property")


def meter_values(cleaned: dict) -> dict:
    """A meter form's values as the services take them."""
    values = {f: cleaned.get(f) or "" for f in METER_FIELDS}
    values["filters"] = cleaned.get("filters") or {}
    values["group_by"] = [
        p.strip() for p in (cleaned.get("group_by") or "").split(",") if p.strip()
    ]
    values["invoice_breakdown"] = cleaned.get("invoice_breakdown") or ""
    values["unit_code"] = cleaned.get("unit_code") or ""
    return values


FILTERS_HELP = _(
    "One property per line: its name, a colon, then the values it may have, separated "
    "by commas, e.g. model: gpt-4o, gpt-4o-mini (true and false in lower case). Only "
    "events whose property has one of these values count. Empty: every event of the "
    "event name counts."
)
FILTERS_FIXED_HELP = _(
    "These filters hold a name or value the lines cannot write (a colon in a name; a "
    "comma, an edge space or nothing in a value): they are kept as they are here; "
    "change them through the API (PATCH /api/v1/meters/<code>)."
)
FILTERS_ERROR = _("Write each line as a property, a colon and its values, e.g. model: gpt-4o, o1")


def filters_text(filters: dict) -> str:
    """{"model": ["gpt-4o", "o1"]} as 'model: gpt-4o, o1', one property a line."""
    return "\n".join(
        f"{prop}: {', '.join(as_text(v) or '' for v in values)}"
        for prop, values in (filters or {}).items()
    )


def writable_as_lines(filters: dict) -> bool:
    """True when the lines read back exactly what is stored (values compared as text)."""
    as_stored = {prop: [as_text(v) for v in values] for prop, values in (filters or {}).items()}
    try:
        return parse_filters(filters_text(filters)) == as_stored
    except forms.ValidationError:
        return False


def parse_filters(text: str) -> dict[str, list[str]]:
    """'model: gpt-4o, o1' lines back to {"model": ["gpt-4o", "o1"]} (values are
    compared as text, so text is what is stored); ValidationError in words."""
    filters: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        prop, colon, rest = line.partition(":")
        values = [v.strip() for v in rest.split(",") if v.strip()]
        if not colon or not prop.strip() or not values:
            raise forms.ValidationError(FILTERS_ERROR)
        if prop.strip() in filters:
            raise forms.ValidationError(
                gettext("{property} is written twice: put its values on one line.").format(
                    property=prop.strip()
                )
            )
        filters[prop.strip()] = values
    return filters


class MeterForm(ServiceValidatedForm):
    filters = forms.CharField(
        required=False,
        label=_("Only events where"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=FILTERS_HELP,
    )
    group_by = forms.CharField(
        required=False,
        label=_("Break usage down by"),
        help_text=_(
            "Up to 3 event properties, separated by commas, e.g. model, api_key. "
            "Fixed, like the rest of what a meter counts, once a published version charges it."
        ),
    )

    class Meta:
        model = Meter
        fields = [*METER_FIELDS, "filters", "group_by", "invoice_breakdown", "unit_code"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["group_by"] = ", ".join(self.instance.group_by or ())
            self.initial["filters"] = filters_text(self.instance.filters)
            if not writable_as_lines(self.instance.filters):
                self.fields["filters"].disabled = True
                self.fields["filters"].help_text = FILTERS_FIXED_HELP
        self.fields["unit_code"].required = False
        self.fields["invoice_breakdown"].help_text = _(
            "One of the properties in 'Break usage down by': invoices then list the meter's "
            "quantity by its values (the amount is still priced on the whole quantity). "
            "Empty: not split."
        )

    def clean_unit_code(self):
        # Left out of a post, it stays as it is (C62 for a new meter).
        return self.cleaned_data.get("unit_code") or self.instance.unit_code

    def clean_filters(self):
        text = self.cleaned_data.get("filters") or ""
        stored = self.instance.filters or {}
        # Lines left as they were keep the stored filters as they are (a number stays
        # one; filters the lines cannot write are never rewritten).
        if self.fields["filters"].disabled or text.strip() == filters_text(stored).strip():
            return stored
        return parse_filters(text)

    def validate_domain(self, cleaned):
        values = meter_values(cleaned)
        if self.instance.pk:
            original = Meter.objects.get(pk=self.instance.pk)
            services.meter_check_update(meter=original, values=values)
        else:
            validate_meter(**values)


def ranked_by_name_or_code(meters, term: str):
    """Meters whose name or code starts with `term` first, then those containing
    it, then the rest (found by their event name), each group by name."""
    return meters.annotate(
        match_rank=Case(
            When(Q(name__istartswith=term) | Q(code__istartswith=term), then=Value(0)),
            When(Q(name__icontains=term) | Q(code__icontains=term), then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
    ).order_by("match_rank", "name", "code")


@admin.register(Meter)
class MeterAdmin(RefusedDeletionMixin, AuditHistoryAdmin):
    formfield_overrides = EXACT_DECIMALS
    form = MeterForm
    list_display = [
        "code",
        "name",
        "event_name",
        "aggregation",
        "value_property",
        "filters_display",
    ]
    list_filter = ["aggregation"]
    search_fields = ["code", "name", "event_name"]

    def deletion_refusal(self, obj):
        return meter_deletion_refusal(obj)

    @admin.display(description=_("only events where"))
    def filters_display(self, meter: Meter) -> str:
        return "; ".join(filters_text(meter.filters).splitlines()) or "—"

    def get_search_results(self, request, queryset, search_term):
        # The list orders its rows itself; the autocomplete keeps this order.
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            found = ranked_by_name_or_code(found, search_term.strip())
        return found, may_have_duplicates

    def save_model(self, request, obj, form, change):
        values = meter_values(form.cleaned_data)
        if change:
            adopt(obj, services.meter_update(meter=obj, **values))
        else:
            adopt(obj, services.meter_create(**values))

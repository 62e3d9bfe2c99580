"""A charge's rate card on its plan version's admin page: a 'Price by' box and a
'Rate card' box holding the rows as text (pasted from a spreadsheet or typed as
CSV, plans.admin.rate_card_grid), shown above it as a grid with a column per property
and the price beside it. The card is saved with the version, in the same save
as its other charges; a refused row is marked red in the grid, with its message.

A card whose rows the grid cannot hold (tiered or package rows, written through
the API) is shown and kept as it is."""

from django import forms
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from common.admin_forms import admin_language
from common.vocabulary import ConsumptionModel
from plans.admin.rate_card_grid import (
    GRID_STYLE,
    Grid,
    editable,
    grid_rates,
    grid_table,
    grid_text,
    read_grid,
    split_names,
    stored_grid,
)
from plans.rate_cards import rate_of

RATE_CARD_HELP = _(
    "One row per line: the value of each Price by property in order (empty: any "
    "value), then the unit price and optionally per (2.50 per 1000000 units). For a "
    "credits charge: the credits per unit, then per. Paste rows from a spreadsheet, "
    "or type them separated by commas (semicolons where a decimal comma is used); a "
    "first line naming the columns (model,token_type,unit_price,per) is allowed. A "
    "row with every property empty is the default row, which every card needs."
)
PRICE_BY_HELP = _(
    "Properties the meter breaks usage down by (its group_by) that set the price, "
    "separated by commas: model, token_type. Empty: one price for all usage."
)


# Once the text is edited, the grid above it shows rows no longer there: it is
# greyed, and a note says how to see the new ones.
STALE_SCRIPT = mark_safe(
    "<script>if(!window.rateCardStale){window.rateCardStale=true;"
    "document.addEventListener('input',function(e){"
    "if(!e.target.matches||!e.target.matches('textarea.rate-card-text'))return;"
    "var box=e.target.closest('.rate-card-editor');"
    "box.querySelector('.rate-card-grid').classList.add('rate-card-stale');"
    "box.querySelector('.rate-card-stale-note').hidden=false;});}</script>"
)


class RateCardWidget(forms.Textarea):
    """The rows as text, with the grid they make shown above it."""

    def __init__(self, attrs=None):
        super().__init__(
            {"rows": 8, "class": "rate-card-text", "spellcheck": "false", **(attrs or {})}
        )
        self.grid: Grid | None = None
        self.credits = False

    def render(self, name, value, attrs=None, renderer=None):
        table = ""
        if self.grid is not None:
            table = grid_table(self.grid, credits=self.credits, language=admin_language())
        box = super().render(name, value, attrs, renderer)
        return format_html(
            '{}<div class="rate-card-editor"><div class="rate-card-grid">{}</div>'
            '<p class="rate-card-stale-note" hidden>{}</p>{}</div>{}',
            GRID_STYLE,
            table,
            _("Changed: save to check these rows and see them in the grid."),
            box,
            STALE_SCRIPT,
        )


class RateCardFormMixin(forms.Form):
    """The Price by and Rate card boxes of a charge's form. After clean, the
    card's rows are in cleaned_data 'price_by_names' and 'rate_specs'."""

    price_by_text = forms.CharField(
        required=False, label=_("Price by"), help_text=PRICE_BY_HELP, max_length=500
    )
    rate_card = forms.CharField(
        required=False, label=_("Rate card"), help_text=RATE_CARD_HELP, widget=RateCardWidget
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rate_grid: Grid | None = None
        self.card_kept = False
        charge = self.instance
        if charge.pk is None:
            return
        rows = list(charge.rates.all())
        credits = charge.model == ConsumptionModel.CREDITS
        grid = stored_grid(charge.price_by, rows)
        self._show_grid(grid, credits)
        self.initial["price_by_text"] = ", ".join(charge.price_by or ())
        self.initial["rate_card"] = grid_text(grid, credits=credits, language=admin_language())
        if not editable(rows):
            self.card_kept = True
            for name in ("price_by_text", "rate_card"):
                self.fields[name].disabled = True
            self.fields["rate_card"].help_text = _(
                "This card has graduated, volume or package rows: it is kept as it is "
                "here. Change it through the API."
            )

    def _show_grid(self, grid: Grid, credits: bool) -> None:
        self.rate_grid = grid
        widget = self.fields["rate_card"].widget
        widget.grid, widget.credits = grid, credits

    def clean(self):
        data = super().clean()
        if self.card_kept:
            data["price_by_names"] = tuple(self.instance.price_by)
            data["rate_specs"] = tuple(rate_of(row) for row in self.instance.rates.all())
            return data
        credits = data.get("model") == ConsumptionModel.CREDITS
        grid = read_grid(
            data.get("rate_card") or "",
            split_names(data.get("price_by_text") or ""),
            language=admin_language(),
        )
        self._show_grid(grid, credits)
        if grid.refused:
            self.add_error("rate_card", self.refused_words())
        data["price_by_names"] = grid.price_by
        data["rate_specs"] = grid_rates(grid, credits=credits)
        return data

    def refused_words(self) -> str:
        grid = self.rate_grid
        numbers = [str(i + 1) for i, row in enumerate(grid.rows) if row.problems]
        words = list(grid.problems)
        if numbers:
            words.append(
                str(_("Refused rows: {rows}. Each is marked in red in the grid, with why.")).format(
                    rows=", ".join(numbers)
                )
            )
        return " ".join(words)

    def show_rate_error(self, rest: str, text: str) -> None:
        """A message of plans.validation about the card: `rest` is 'price_by',
        'rates' or 'rates.M.<field>' (marked on row M; then show_refused_rows)."""
        parts = rest.split(".")
        if rest == "price_by":
            self.add_error("price_by_text", text)
        elif len(parts) > 1 and parts[1].isdigit() and self.rate_grid is not None:
            self.rate_grid.mark(int(parts[1]), text)
        else:
            self.add_error("rate_card", text)

    def show_refused_rows(self) -> None:
        if self.rate_grid is not None and self.rate_grid.refused:
            self.add_error("rate_card", self.refused_words())

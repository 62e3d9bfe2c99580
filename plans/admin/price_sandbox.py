"""Try prices on a plan version's admin page (plans.admin.plan_versions): the
form of quantities typed in and the invoice in words. The invoice itself is
billing.simulation.sandbox's, rated by the code the period close bills with,
for a draft before it is published or any version. It writes nothing; the
simulation on real past usage is a link away."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.simulation.sandbox import SandboxInvoice, interval_end
from common.admin_forms import (
    ExactDecimalField,
    ExactIntegerField,
    money_text,
    percent_text,
    quantity_text,
    unit_price_text,
)
from common.vocabulary import ConsumptionModel
from plans import rating
from plans.models import TaxRate
from plans.rate_card_pricing import Combination, row_combination
from plans.validation import VersionSpec

# The charges whose usage is on the period's invoice; credits and balance charges
# are paid from wallets as the usage arrives.
INVOICED_MODELS = (ConsumptionModel.OVERAGE, ConsumptionModel.HARD_CAP)
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
NUMBER_ERRORS = {
    "invalid": "Enter a number, e.g. 1500000.",
    "min_value": "Cannot be negative.",
    "max_digits": "Too large a number.",
    "max_decimal_places": "At most 10 decimal places.",
}


class PriceSandboxForm(forms.Form):
    seats = ExactIntegerField(
        min_value=0, max_value=10**9, initial=0, error_messages=NUMBER_ERRORS, label=_("Seats")
    )
    period_start = forms.DateField(label=_("Period start"), widget=DATE_INPUT)
    period_end = forms.DateField(
        label=_("Period end"),
        widget=DATE_INPUT,
        help_text=_("Excluded: the period ends as it starts."),
    )
    tax_rate = forms.ModelChoiceField(
        queryset=TaxRate.objects.filter(active=True).order_by("code"),
        required=False,
        empty_label=_("No tax"),
        label=_("Tax rate"),
    )

    def __init__(self, *args, spec: VersionSpec, names: dict[str, str], today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = spec
        # Each quantity field's meter, and for a rate card's rows the combination
        # it stands for.
        self.meters: dict[str, str] = {}
        self.rows: dict[str, Combination] = {}
        for index, charge in enumerate(spec.charges):
            if charge.model not in INVOICED_MODELS:
                continue
            meter_name = names.get(charge.meter, charge.meter)
            if not charge.rates:
                name = f"quantity_{index}"
                self.meters[name] = charge.meter
                self.fields[name] = _quantity_field(
                    meter_name, _("The period's quantity of this meter.")
                )
                continue
            for row, rate in enumerate(charge.rates):
                name = f"quantity_{index}_{row}"
                self.meters[name] = charge.meter
                self.rows[name] = row_combination(rate)
                self.fields[name] = _quantity_field(
                    rating.rate_description(meter_name, rate.when),
                    _("The period's quantity this row of the rate card prices.")
                    if rate.when
                    else _("The period's quantity no other row of the rate card prices."),
                )
        # The quantities first, then seats, period and tax.
        self.order_fields([*self.meters, "seats", "period_start", "period_end", "tax_rate"])
        if not spec.seat_price:
            self.fields["seats"].help_text = _("This version has no seat price.")
        self.fields["period_start"].initial = today
        self.fields["period_end"].initial = interval_end(today, spec.interval)
        zone = timezone.get_current_timezone_name()
        start_help = gettext("From the start of the day ({zone}).")
        self.fields["period_start"].help_text = start_help.format(zone=zone)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start is None or end is None:
            return cleaned
        if end <= start:
            self.add_error("period_end", gettext("The period must end after it starts."))
        elif end > interval_end(start, self.spec.interval):
            last = interval_end(start, self.spec.interval)
            self.add_error(
                "period_end",
                gettext("A period is at most one billing interval: end by {day}.").format(
                    day=date_format(last, "j M Y")
                ),
            )
        return cleaned

    def quantities(self) -> dict[str, Decimal]:
        """Each meter's quantity (by code): a rate card's, its rows' together."""
        found: dict[str, Decimal] = {}
        for name, meter in self.meters.items():
            found[meter] = found.get(meter, Decimal(0)) + self.cleaned_data[name]
        return found

    def combinations(self) -> dict[str, dict[Combination, Decimal]]:
        """A rate card's quantities per row, by meter code, as the statement reads
        usage per combination of group values."""
        found: dict[str, dict[Combination, Decimal]] = {}
        for name, combination in self.rows.items():
            found.setdefault(self.meters[name], {})[combination] = self.cleaned_data[name]
        return found


def _quantity_field(label: str, help_text: str) -> ExactDecimalField:
    return ExactDecimalField(
        label=label,
        min_value=0,
        max_digits=28,
        decimal_places=10,
        initial=0,
        error_messages=NUMBER_ERRORS,
        help_text=help_text,
    )


# A prorated fee's quantity is the part of the interval billed (13/30 =
# 0.4333...): a fraction below 1 is shown to 4 significant digits, marked as
# rounded; every other quantity exactly. The amount stays exact either way.
SHOWN_DIGITS = 4


def shown_quantity(quantity: Decimal) -> str:
    """'1,500,000', '0.5', '0.00001', or '≈ 0.4333' for a long fraction of a period."""
    if quantity == 0 or abs(quantity) >= 1:
        return quantity_text(quantity)
    step = Decimal(1).scaleb(quantity.adjusted() - SHOWN_DIGITS + 1)
    rounded = quantity.quantize(step, rounding=ROUND_HALF_UP)
    if rounded == quantity:
        return quantity_text(quantity)
    return f"≈ {quantity_text(rounded)}"


def invoice_rows(invoice: SandboxInvoice, currency: str) -> dict:
    """The invoice in words, as the page shows it."""
    return {
        "lines": [
            {
                "description": line.description,
                "quantity": shown_quantity(line.quantity),
                "unit_price": unit_price_text(line.unit_price, line.per, currency),
                "amount": money_text(line.amount, currency),
            }
            for line in invoice.lines
        ],
        "subtotal": money_text(invoice.subtotal, currency),
        "taxes": [
            {
                # The invoice's own words for a tax line, in the admin user's language.
                "label": gettext("%(name)s %(percentage)s on %(taxable_amount)s")
                % {
                    "name": tax.rate.name,
                    "percentage": percent_text(tax.rate.percentage),
                    "taxable_amount": money_text(tax.taxable_amount, currency),
                },
                "amount": money_text(tax.amount, currency),
            }
            for tax in invoice.taxes
        ],
        "total": money_text(invoice.total, currency),
        "period": invoice.label,
        "prorated": invoice.fraction != 1,
    }

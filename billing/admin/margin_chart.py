"""The margins page's chart: revenue, cost and margin of each month as bars of
a server-drawn SVG (no script). Only the bars' geometry is worked out here;
the figures are billing.margins.report's, shown through admin_forms."""

from datetime import date
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from common.admin_forms import money_text

WIDTH, HEIGHT = 660, 240
TOP, PLOT = 12, 190  # the bars' area; the month names below it
LEFT = 10
BAR, GAP = 24, 4
SERIES = (("revenue", _("Revenue")), ("cost", _("Cost")), ("margin", _("Margin")))


def month_chart(months: list, currency: str, *, firsts: list[date]) -> dict:
    """Bars for `months` (report.month_margins' rows): per month one bar per
    SERIES, up from the zero line for a gain, down for a loss. `firsts`: each
    month's first day in the page's zone, what it is labelled by ("first"; its
    "month" is where it starts in UTC)."""
    values = [getattr(m, name) for m in months for name, _label in SERIES]
    high, low = max([Decimal(0), *values]), min([Decimal(0), *values])
    span = (high - low) or Decimal(1)

    def y(value: Decimal) -> float:
        return round(TOP + float((high - value) / span) * PLOT, 1)

    slot = (WIDTH - 2 * LEFT) / max(len(months), 1)
    group = len(SERIES) * BAR + (len(SERIES) - 1) * GAP
    bars, labels = [], []
    for index, (month, day) in enumerate(zip(months, firsts, strict=True)):
        first = LEFT + index * slot + (slot - group) / 2
        for n, (name, label) in enumerate(SERIES):
            value = getattr(month, name)
            top, bottom = y(max(value, Decimal(0))), y(min(value, Decimal(0)))
            bars.append(
                {
                    "series": name,
                    "x": round(first + n * (BAR + GAP), 1),
                    "y": top,
                    "height": max(round(bottom - top, 1), 1),
                    "loss": value < 0,
                    "month": month.key["month"],
                    "first": day,
                    "title": f"{label}: {money_text(value, currency)}",
                }
            )
        labels.append({"x": round(LEFT + index * slot + slot / 2, 1), "first": day})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "zero": y(Decimal(0)),
        "bar": BAR,
        "label_y": TOP + PLOT + 20,
        "bars": bars,
        "labels": labels,
        "series": [{"name": name, "label": label} for name, label in SERIES],
        "months": [
            {
                "month": m.key["month"],
                "first": day,
                "revenue": money_text(m.revenue, currency),
                "cost": money_text(m.cost, currency),
                "margin": money_text(m.margin, currency),
            }
            for m, day in zip(months, firsts, strict=True)
        ],
    }

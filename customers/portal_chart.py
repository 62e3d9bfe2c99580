"""The portal's daily usage chart as the page draws it (an inline SVG): a bar per
day, stacked by group for a grouping meter, on a value axis labelled at 0 and at
the peak, each bar titled with its day and quantity. Every label is written by
the customer's writer (common.customer_text) in the page's language."""

from django.utils.translation import gettext as _

from common import customer_text

CHART_WIDTH = 640
CHART_HEIGHT = 120
# Left of the bars: the value axis and its labels.
AXIS_WIDTH = 56
# Under the bars: the days of the month.
DAYS_HEIGHT = 16
# Above the tallest bar: room for the peak's label.
TOP_MARGIN = 8


def chart_context(chart) -> dict:
    """What the template draws for a customers.portal.DailyChart (call it under the
    page's language): bars, the axis and its labels; coordinates as plain numbers."""
    count = max(1, len(chart.days))
    slot = (CHART_WIDTH - AXIS_WIDTH) / count
    baseline = CHART_HEIGHT - DAYS_HEIGHT
    scale = 0.0 if not chart.peak else (baseline - TOP_MARGIN) / float(chart.peak)
    bars = []
    for index, (day, quantity) in enumerate(chart.days):
        height = float(quantity) * scale
        # A grouping meter's bar: one segment per group, stacked from the baseline.
        segments, top = [], baseline
        for series, part in enumerate(chart.stacked[index] if chart.stacked else ()):
            if part <= 0:
                continue
            tall = float(part) * scale
            top -= tall
            segments.append({"y": round(top, 2), "height": round(tall, 2), "series": series})
        left = AXIS_WIDTH + index * slot
        bars.append(
            {
                "x": round(left + slot * 0.1, 2),
                "y": round(baseline - height, 2),
                "width": round(slot * 0.8, 2),
                "height": round(height, 2),
                "label": _("{day}: {quantity}").format(
                    day=customer_text.day(day), quantity=customer_text.quantity(quantity)
                ),
                "day": day.day,
                "show_day": index % max(1, count // 10) == 0,
                "text_x": round(left + slot / 2, 2),
                "segments": segments,
            }
        )
    return {
        "name": chart.name,
        "meter": chart.meter,
        "peak": customer_text.quantity(chart.peak),
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": baseline,
        # The value axis: a tick and a label at 0 and (with any usage) at the peak.
        "axis_x": AXIS_WIDTH - 2,
        "label_x": AXIS_WIDTH - 6,
        "ticks": [
            {"y": baseline, "label": customer_text.quantity(0)},
            *(
                [{"y": TOP_MARGIN, "label": customer_text.quantity(chart.peak)}]
                if chart.peak
                else []
            ),
        ],
        "series": list(enumerate(chart.series)),
    }

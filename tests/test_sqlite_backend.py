"""config.sqlite3 (and the same on PostgreSQL): a whole decimal of 16 to 19
digits, which SQLite stores exactly as an INTEGER, reads back exactly, from a
column, a computed column and a usage read; a fraction within 15 significant
digits still reads back as written. Django's own SQLite backend rounds the whole
ones to 15 digits (1000000000000001 -> 1000000000000000)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db.models import Max, Sum

from billing.models import UsageRollup
from billing.usage.ingestion import events_ingest
from billing.usage.metering import meter_cache
from billing.usage.reads import usage_quantities
from customers.services import customer_create
from plans.services import meter_create

pytestmark = pytest.mark.django_db

HOUR = datetime(2026, 11, 10, 10, tzinfo=UTC)
# 15 significant digits each: the most the embedded SQLite accepts in an event.
TOKENS = 999_999_999_999_999


def test_a_whole_decimal_beyond_15_digits_reads_back_exactly():
    # given: rollup rows holding whole totals of 16 and 19 digits and a fraction of 15
    rows = [
        (1, HOUR, D("1000000000000001")),
        (1, HOUR + timedelta(hours=1), D("2000000000000002")),
        (2, HOUR, D("9223372036854775807")),  # the largest INTEGER
        (3, HOUR, D("12345678901234.5")),
    ]
    for meter_id, hour, value in rows:
        UsageRollup.objects.create(
            customer_id=1, meter_id=meter_id, hour=hour, value_sum=value, value_max=value
        )

    # when: read back as columns and as computed values
    read = list(
        UsageRollup.objects.order_by("meter_id", "hour").values_list("value_sum", flat=True)
    )
    total = UsageRollup.objects.filter(meter_id=1).aggregate(n=Sum("value_sum"))
    top = UsageRollup.objects.aggregate(top=Max("value_max"))

    # then: every digit is there, columns at their field's places as Django gives them
    assert read == [value for _, _, value in rows]
    assert [value.as_tuple().exponent for value in read] == [-10] * 4
    assert total == {"n": D("3000000000000003")}
    assert top == {"top": D("9223372036854775807")}


def test_a_usage_total_of_whole_quantities_beyond_15_digits_is_exact():
    # given: four events of 15-digit token counts, three in one hour, one mid-hour later
    customer = customer_create(external_id="big", name="Big", currency="USD")
    meter = meter_create(
        code="tokens", name="Tokens", event_name="tokens", aggregation="sum", value_property="n"
    )
    events = [
        {
            "id": f"e{i}",
            "customer": "big",
            "event_name": "tokens",
            "timestamp": (HOUR + timedelta(minutes=minutes)).isoformat(),
            "properties": {"n": TOKENS},
        }
        for i, minutes in enumerate([1, 2, 3, 90])
    ]
    result = events_ingest(events=events, now=HOUR + timedelta(hours=5))
    assert result.accepted == 4
    definition = meter_cache.by_code(meter.code)

    # when: read over whole hours, and with an edge cutting the second hour
    whole = usage_quantities(
        customer_id=customer.pk, meters=[definition], start=HOUR, end=HOUR + timedelta(hours=3)
    )
    edged = usage_quantities(
        customer_id=customer.pk,
        meters=[definition],
        start=HOUR,
        end=HOUR + timedelta(minutes=100),
    )

    # then: 4 x 999999999999999, to the unit
    assert whole == {definition.id: D("3999999999999996")}
    assert edged == {definition.id: D("3999999999999996")}

"""`manage.py rebuild_meter_usage`: events stored before group rollups kept their
combinations (an upgrade to rate cards) are counted per combination once rebuilt."""

from datetime import UTC, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import UsagePropertyDailyRollup, UsagePropertyRollup
from billing.usage.breakdowns import usage_combinations
from billing.usage.ingestion import events_ingest
from billing.usage.metering import combination_position, meter_cache
from customers.services import customer_create
from plans.services import meter_create

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def test_combinations_lost_before_an_upgrade_come_back_from_the_events():
    meter = meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm",
        aggregation="sum",
        value_property="tokens",
        group_by=["model", "token_type"],
    )
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    events_ingest(
        events=[
            {
                "id": f"e{i}",
                "customer": "acme",
                "event_name": "llm",
                "timestamp": "2026-11-05T10:00:00Z",
                "properties": {"tokens": n, "model": "gpt-4o", "token_type": kind},
            }
            for i, (kind, n) in enumerate((("input", 100), ("output", 30), ("input", 5)))
        ],
        now=datetime(2026, 11, 6, tzinfo=UTC),
    )
    definition = meter_cache.by_code("llm_tokens")
    # as stored by the version before: no combination rows
    for rollups in (UsagePropertyRollup, UsagePropertyDailyRollup):
        rollups.objects.filter(
            meter_id=meter.pk, position=combination_position(definition)
        ).delete()
    assert (
        usage_combinations(customer_id=customer.pk, meters=[definition], start=NOV_1, end=DEC_1)[
            meter.pk
        ]
        == {}
    )

    out = StringIO()
    call_command("rebuild_meter_usage", "--combinations", stdout=out)

    assert "llm_tokens: rebuilt from 3 events" in out.getvalue()
    definition = meter_cache.by_code("llm_tokens")
    assert usage_combinations(customer_id=customer.pk, meters=[definition], start=NOV_1, end=DEC_1)[
        meter.pk
    ] == {
        (("model", "gpt-4o"), ("token_type", "input")): D(105),
        (("model", "gpt-4o"), ("token_type", "output")): D(30),
    }


def test_the_command_names_what_it_cannot_rebuild():
    with pytest.raises(CommandError, match="give --combinations"):
        call_command("rebuild_meter_usage")
    with pytest.raises(CommandError, match="no meter with code nope"):
        call_command("rebuild_meter_usage", "nope")

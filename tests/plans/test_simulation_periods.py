"""Price simulation of periods other than October's whole month (tests/plans/test_simulation.py
has October): the version current in a period from the change history, a change within
the period, a first partial calendar period, the period fraction, and the admin form's
defaults."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from billing.simulation import engine
from billing.subscriptions.lifecycle import subscription_change_plan, subscription_create
from customers.services import customer_create
from invoices.models import Invoice
from plans.pricing import PricingSpec
from plans.services import meter_create, plan_create, plan_version_create, plan_version_publish
from plans.validation import ChargeSpec, VersionSpec
from tests.plans import test_simulation
from tests.plans.test_simulation import (
    DEC_1,
    NOV_1,
    OCT_1,
    OCT_10,
    SIMULATE,
    ingest,
    v1_terms,
)

pytestmark = pytest.mark.django_db

# The fixtures of tests/plans/test_simulation.py.
_catalog_once = test_simulation._catalog_once
catalog = test_simulation.catalog
clock = test_simulation.clock


def test_the_current_version_is_the_one_of_the_period_from_the_change_history(catalog):
    # given: delta on v1, moved at October's end (scheduled) to v3, published
    v1, _ = catalog
    v3 = plan_version_publish(
        version=plan_version_create(
            plan=v1.plan,
            version=VersionSpec(currency="USD", base_fee=D("9.99"), charges=v1_terms().charges),
        )
    )
    delta = customer_create(external_id="delta", name="Delta", currency="USD")
    subscription = subscription_create(customer=delta, plan=v1.plan, start=OCT_1, version_number=1)
    ingest("delta", prompts=300, tokens=0)
    subscription_change_plan(
        subscription=subscription, version=v3, effective="period_end", at=OCT_10
    )
    periods_close(as_of=NOV_1)
    subscription.refresh_from_db()
    assert subscription.version == v3

    def rate(start, end):
        return engine.simulation_rate_customer(
            customer=delta, version=v1, period_start=start, period_end=end
        )

    # when / then: October was on v1 (19.99 + 5.00 seat + 100 prompts at 0.05), November on v3
    october = rate(OCT_1, NOV_1)
    assert (october.current_version_label, october.current_total) == ("AI Assistant v1", D("29.99"))
    november = rate(NOV_1, DEC_1)
    assert (november.current_version_label, november.current_total) == (
        "AI Assistant v3",
        D("9.99"),
    )
    assert (november.simulated_total, november.difference) == (D("24.99"), D("15.00"))


def test_a_change_within_the_period_is_named_and_a_customer_without_subscription_pays_nothing(
    catalog,
):
    v1, v2 = catalog
    v3 = plan_version_publish(
        version=plan_version_create(plan=v1.plan, version=VersionSpec(currency="USD"))
    )
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    subscription = subscription_create(customer=acme, plan=v1.plan, start=OCT_1, version_number=1)
    subscription_change_plan(
        subscription=subscription, version=v3, effective="immediate", at=OCT_10
    )
    prospect = customer_create(external_id="prospect", name="Prospect", currency="USD")

    changed = engine.simulation_rate_customer(
        customer=acme, version=v2, period_start=OCT_1, period_end=NOV_1
    )
    nothing = engine.simulation_rate_customer(
        customer=prospect, version=v2, period_start=OCT_1, period_end=NOV_1
    )

    assert (changed.current_version_label, changed.current_total) == (
        "AI Assistant v1 (changed in the period)",
        D("24.99"),
    )
    # 24.99 base fee + one seat at 5.00 + the 20.00 minimum commitment, no usage
    assert (nothing.current_version_label, nothing.current_total, nothing.simulated_total) == (
        "no subscription",
        D(0),
        D("49.99"),
    )


def test_a_first_partial_calendar_period_is_simulated_as_the_close_bills_it(db):
    """Rule: the simulation and the close share the whole period a calendar
    subscription's first partial period is a part of: its month. From Oct 31 12:00
    the period is half a day of October's 31 (not of the 30 days to Nov 30 12:00):
    base fee 31.00 x 0.5/31 = 0.50 on the start invoice, commitment 62.00 x 0.5/31
    = 1.00 on the close: 1.50, simulated at its own version to the cent. At a draft
    of 46.50 and 93.00: 0.75 + 1.50 = 2.25."""
    # given: the first period closed
    meter_create(code="calls", name="Calls", event_name="call", aggregation="count")
    charge = ChargeSpec("calls", "overage", pricing=PricingSpec("per_unit", D("0.001")))
    v1 = plan_create(
        code="committed",
        name="Committed",
        version=VersionSpec(
            currency="USD",
            base_fee=D("31.00"),
            minimum_commitment=D("62.00"),
            charges=(charge,),
        ),
        publish=True,
    )
    v2 = plan_version_create(
        plan=v1.plan,
        version=VersionSpec(
            currency="USD",
            base_fee=D("46.50"),
            minimum_commitment=D("93.00"),
            charges=(charge,),
        ),
    )
    acme = customer_create(external_id="acme", name="Acme", currency="USD")
    start = datetime(2026, 10, 31, 12, tzinfo=UTC)
    subscription_create(customer=acme, plan=v1.plan, start=start, billing_anchor="calendar")
    periods_close(as_of=NOV_1)
    billed = [
        (line.kind, line.amount)
        for invoice in Invoice.objects.filter(period_start=start).order_by("id")
        for line in invoice.lines.all()
        if line.period_start == start
    ]
    assert billed == [("base_fee", D("0.50")), ("minimum_commitment", D("1.00"))]

    # when
    rated = engine.simulation_rate_customer(
        customer=acme, version=v2, period_start=start, period_end=NOV_1
    )

    # then
    assert (rated.current_total, rated.simulated_total) == (D("1.50"), D("2.25"))


def test_period_fraction_counts_whole_months_and_else_seconds(db):
    from zoneinfo import ZoneInfo

    from common.periods import period_fraction

    paris = ZoneInfo("Europe/Paris")
    assert period_fraction(OCT_1, NOV_1, paris, interval="month") == 1
    assert period_fraction(OCT_1, NOV_1, paris, interval="quarter") == D(1) / D(3)
    # October in Paris: 1 October 00:00 +02:00 to 1 November 00:00 +01:00
    paris_october = (datetime(2026, 10, 1, tzinfo=paris), datetime(2026, 11, 1, tzinfo=paris))
    assert period_fraction(*paris_october, paris, interval="month") == 1
    half = datetime(2026, 10, 16, 12, tzinfo=UTC)
    assert period_fraction(OCT_1, half, UTC, interval="month") == D("0.5")


def test_the_simulate_page_defaults_to_last_month_and_the_version(admin_client, catalog, clock):
    _, v2 = catalog

    page = admin_client.get(f"{SIMULATE}?version={v2.pk}").content.decode()

    assert 'value="2026-10"' in page
    assert 'value="2026-10-01T00:00"' in page
    assert 'value="2026-11-01T00:00"' in page
    assert f'<option value="{v2.pk}" selected>' in page
    assert "late usage" in page

"""No list filter answers a 5xx (tests/test_hostile_input.py, on a world of its own):
nasty values and any combination of them in every list's filters, malformed cursors,
times outside the calendar, on a catalog, two customers at either end of the clock,
wallets with ledgers and finalized invoices, made once for the module."""

from base64 import b64encode
from datetime import UTC, datetime
from decimal import Decimal as D
from urllib.parse import quote

import pytest
import time_machine
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.models import Subscription
from invoices.models import Invoice
from tests import test_hostile_input
from tests.test_hostile_input import NOW, error_of, isolated
from wallets.models import LedgerEntry

pytestmark = pytest.mark.django_db

# The API client of tests/test_hostile_input.py (an exception is an answer, a 500).
client = test_hostile_input.client


def made_world() -> None:
    """A catalog, two customers in time zones at either end of the clock, a
    subscription, credit and money wallets with ledgers, and finalized invoices."""
    from billing.subscriptions.lifecycle import subscription_create
    from customers.services import customer_create
    from plans.models import Plan
    from tests.wallets.support import build_catalog
    from wallets.ledger import credits_grant
    from wallets.purchases import money_top_up

    with override_settings(BILLING_INVOICE_PDFS=False), time_machine.travel(NOW, tick=False):
        build_catalog()
        acme = customer_create(
            external_id="acme", name="Acme", currency="USD", timezone_name="Pacific/Kiritimati"
        )
        customer_create(
            external_id="beta", name="Beta", currency="USD", timezone_name="Pacific/Pago_Pago"
        )
        subscription_create(
            customer=acme,
            plan=Plan.objects.get(code="ai_assistant"),
            start=datetime(2026, 11, 3, tzinfo=UTC),
        )
        for day in (1, 2, 3):
            credits_grant(customer=acme, credits=D(10), now=datetime(2026, 12, day, tzinfo=UTC))
            money_top_up(
                customer=acme, amount=D(20), currency="USD", now=datetime(2026, 12, day, tzinfo=UTC)
            )
    assert Invoice.objects.count() == 4  # the top-ups and the first period's base fee
    assert LedgerEntry.objects.count() == 6
    assert Subscription.objects.count() == 1


@pytest.fixture(scope="module")
def _world_once(module_transaction):
    return module_transaction.once(made_world, "world")


@pytest.fixture
def world(_world_once, db):
    """made_world's rows, made once for the module (tests/shared_rows.py)."""
    return _world_once.for_test()


def cursor(text: str) -> str:
    return b64encode(text.encode("latin-1")).decode()


NASTY_VALUES = [
    "0",
    "-1",
    "1.5",
    "1e3",
    "99999999999999999999",
    "9" * 5000,
    "",
    " ",
    "abc",
    "%",
    "_",
    "\u202e",
    "é",
    "\U0001f600",
    "\ufffd",
    "NaN",
    "draft",
    "2026-13-45T00:00:00Z",
    "2026-11-01T00:00:00",
    "2026-11-01T00:00:00+99:00",
    "0001-01-01T00:00:00Z",
    "1900-01-01T00:00:00+00:00",
    "8999-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "x" * 5000,
    "!!!not-base64",
    cursor("\xff\xfe"),
    cursor("p=abc"),
    cursor("p=1.5"),
    cursor("p=1e5"),
    cursor("p=0x10"),
    cursor("p=-1"),
    cursor("p=²"),
    cursor("p=" + "9" * 20),
    cursor("p=" + "9" * 5000),
    cursor("o=99999999999999999999"),
    cursor("o=-5&r=1&p=2"),
    cursor("r=2"),
]
LIST_PARAMETERS = {
    "/api/v1/meters": ["limit", "cursor"],
    "/api/v1/plans": ["limit", "cursor"],
    "/api/v1/credit-packs": ["limit", "cursor"],
    "/api/v1/customers": ["limit", "cursor"],
    "/api/v1/invoices": ["limit", "cursor", "customer", "status"],
    "/api/v1/plans/ai_assistant/versions": ["limit", "cursor"],
    "/api/v1/customers/acme/wallets": ["currency"],
    "/api/v1/customers/acme/wallets/credits/ledger": ["limit", "cursor"],
    "/api/v1/customers/acme/wallets/money/ledger": ["limit", "cursor", "currency"],
    "/api/v1/customers/acme/usage": ["period_start", "period_end"],
    "/api/v1/customers/beta/usage": ["period_start", "period_end"],
}


def test_nasty_list_filters_are_answered_without_a_5xx(world, client):
    failures = []
    with time_machine.travel(NOW, tick=False):
        for path, parameters in LIST_PARAMETERS.items():
            for parameter in parameters:
                for value in NASTY_VALUES:
                    url = f"{path}?{parameter}={quote(value, safe='')}"
                    response = isolated(client.get, url)
                    if response.status_code >= 500:
                        failures.append((url[:120], response.status_code))

    assert failures == []


@pytest.mark.parametrize("path", [p for p, names in LIST_PARAMETERS.items() if "cursor" in names])
@pytest.mark.parametrize("position", ["abc", "1.5", "-1", "²", "9" * 19, "9" * 5000, "\x00"])
def test_a_cursor_whose_position_is_not_a_row_id_is_a_404(world, client, path, position):
    response = isolated(client.get, path, {"cursor": cursor(f"p={position}")})

    assert (response.status_code, error_of(response)["message"]) == (404, "Invalid cursor")


@pytest.mark.parametrize(
    ("path", "count"),
    [("/api/v1/invoices", 4), ("/api/v1/customers/acme/wallets/money/ledger", 3)],
)
def test_the_cursors_the_lists_hand_out_still_page_through(world, client, path, count):
    seen = []
    url = f"{path}?limit=1"
    while url:
        page = client.get(url).json()
        seen += [item["id"] for item in page["results"]]
        url = page["next"]

    assert len(seen) == len(set(seen)) == count


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "1899-12-31T23:00:00Z"]
)
def test_a_time_outside_the_calendar_is_a_400_naming_the_parameter(world, client, moment):
    with time_machine.travel(NOW, tick=False):
        response = client.get("/api/v1/customers/acme/usage", {"period_start": moment})

    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["period_start"]


def test_a_subscription_starting_outside_the_calendar_is_a_400(world, client):
    response = client.post(
        "/api/v1/subscriptions",
        {"customer": "beta", "plan": "runner", "start": "9999-12-31T23:59:59Z"},
        format="json",
    )

    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["start"]
    assert Subscription.objects.count() == 1


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(sorted(LIST_PARAMETERS)),
    parameters=st.lists(
        st.tuples(
            st.sampled_from(["limit", "cursor", "customer", "status", "currency", "period_start"]),
            st.one_of(st.sampled_from(NASTY_VALUES), st.text(max_size=30)),
        ),
        max_size=4,
    ),
)
def test_any_combination_of_list_filters_is_answered_without_a_5xx(world, client, path, parameters):
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in parameters)

    with time_machine.travel(NOW, tick=False):
        response = isolated(client.get, f"{path}?{query}")

    assert response.status_code < 500, (path, parameters, response.content[:300])


@pytest.mark.postgres
def test_a_usage_read_over_a_range_ending_mid_hour_without_meters_is_answered(world, client):
    # beta has no subscription and no usage: no meter to read the partial hour for.
    with time_machine.travel(NOW, tick=False):
        response = client.get(
            "/api/v1/customers/beta/usage",
            {"period_start": "2026-11-01T00:00:00Z", "period_end": "2026-11-15T10:30:00Z"},
        )

    assert response.status_code == 200, response.content[:300]
    assert response.json()["lines"] == []

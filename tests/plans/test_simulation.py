"""Price simulation: October's real usage rated at each customer's own version
(what the close billed, to the cent) and at a draft with other prices, per
customer and in sum; the CSV; the task for large selections; the admin's form,
its refusals and its permission. A simulation never writes an invoice."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from billing.invoicing.close import periods_close
from billing.models import BilledPeriod, Subscription
from billing.simulation import engine, period_subscriptions, report
from billing.subscriptions.lifecycle import subscription_create
from billing.usage.ingestion import events_ingest
from customers.models import Customer
from customers.services import customer_create
from invoices.models import Invoice, InvoiceLine
from plans import tasks
from plans.models import Plan, PlanVersion, PriceSimulation, PriceSimulationRow
from plans.pricing import PricingSpec, TierSpec
from plans.services import meter_create, plan_create, plan_version_create
from plans.validation import ChargeSpec, VersionSpec

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_10 = datetime(2026, 10, 10, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
# The admin's clock in these tests: October is last month.
NOV_21 = datetime(2026, 11, 21, 12, tzinfo=UTC)

# Usage of October: prompts (count) and tokens (sum), and seats.
USAGE = {
    "acme": {"seats": 2, "prompts": 405, "tokens": 26000},
    "beta": {"seats": 1, "prompts": 150, "tokens": 0},
    "gamma": {"seats": 3, "prompts": 250, "tokens": 1000},
}
# At v1: base fee 19.99 + seats at 5.00 + prompts over 200 at 0.05 + tokens over
# 1000 graduated (0.001 up to 10000, then 0.0005).
#   acme:  19.99 + 10.00 + 10.25 + (10.00 + 7.50) = 57.74
#   beta:  19.99 +  5.00                          = 24.99
#   gamma: 19.99 + 15.00 +  2.50                  = 37.49
CURRENT = {"acme": D("57.74"), "beta": D("24.99"), "gamma": D("37.49")}
# At the draft v2: base fee 24.99 + seats at 5.00 + prompts over 300 at 0.045 +
# tokens over 1000 graduated (0.0008 up to 10000, then 0.0004), minimum commitment
# 20.00 on usage.
#   acme:  24.99 + 10.00 + 4.73 (4.725 rounded half up) + (8.00 + 6.00)
#          + true-up 1.27 (20.00 - 18.73)                                = 54.99
#   beta:  24.99 +  5.00 + true-up 20.00                                 = 49.99
#   gamma: 24.99 + 15.00 + true-up 20.00                                 = 59.99
SIMULATED = {"acme": D("54.99"), "beta": D("49.99"), "gamma": D("59.99")}
DIFFERENCE = {"acme": D("-2.75"), "beta": D("25.00"), "gamma": D("22.50")}


def graduated(*tiers) -> PricingSpec:
    return PricingSpec(
        "graduated", tiers=tuple(TierSpec(up_to=up_to, unit_price=D(p)) for up_to, p in tiers)
    )


def v1_terms() -> VersionSpec:
    return VersionSpec(
        currency="USD",
        base_fee=D("19.99"),
        seat_price=D("5.00"),
        charges=(
            ChargeSpec("prompts", "overage", D(200), pricing=PricingSpec("per_unit", D("0.05"))),
            ChargeSpec(
                "tokens",
                "overage",
                D(1000),
                pricing=graduated((D(10000), "0.001"), (None, "0.0005")),
            ),
        ),
    )


def v2_terms() -> VersionSpec:
    return VersionSpec(
        currency="USD",
        base_fee=D("24.99"),
        seat_price=D("5.00"),
        minimum_commitment=D("20.00"),
        charges=(
            ChargeSpec("prompts", "overage", D(300), pricing=PricingSpec("per_unit", D("0.045"))),
            ChargeSpec(
                "tokens",
                "overage",
                D(1000),
                pricing=graduated((D(10000), "0.0008"), (None, "0.0004")),
            ),
        ),
    )


def ingest(external_id: str, *, prompts: int, tokens: int, when: datetime = OCT_10) -> None:
    events = [
        {
            "id": f"{external_id}-p{i}",
            "customer": external_id,
            "event_name": "prompt",
            "timestamp": when.isoformat(),
        }
        for i in range(prompts)
    ]
    if tokens:
        events.append(
            {
                "id": f"{external_id}-t",
                "customer": external_id,
                "event_name": "llm",
                "timestamp": when.isoformat(),
                "properties": {"tokens": tokens},
            }
        )
    result = events_ingest(events=events, now=NOV_1)
    assert not result.rejected, result.rejected[:1]


def made_catalog() -> tuple[PlanVersion, PlanVersion]:
    """AI Assistant v1 (published) and v2 (a draft with other prices)."""
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    meter_create(
        code="tokens", name="Tokens", event_name="llm", aggregation="sum", value_property="tokens"
    )
    v1 = plan_create(code="ai_assistant", name="AI Assistant", version=v1_terms(), publish=True)
    v2 = plan_version_create(plan=v1.plan, version=v2_terms())
    return v1, v2


@pytest.fixture(scope="module")
def _catalog_once(module_transaction):
    return module_transaction.once(made_catalog, "catalog")


@pytest.fixture
def catalog(_catalog_once, db) -> tuple[PlanVersion, PlanVersion]:
    """made_catalog's versions, made once for a module where every test asks
    (tests/shared_rows.py)."""
    return _catalog_once.for_test()


def made_october() -> dict:
    """acme, beta and gamma on v1 from October 1st, with October's usage, and
    October closed: its invoices written and finalized."""
    plan = Plan.objects.get(code="ai_assistant")
    customers = {}
    for external_id, usage in USAGE.items():
        customer = customer_create(
            external_id=external_id, name=external_id.title() + " Inc", currency="USD"
        )
        subscription_create(customer=customer, plan=plan, start=OCT_1, seats=usage["seats"])
        ingest(external_id, prompts=usage["prompts"], tokens=usage["tokens"])
        customers[external_id] = customer
    periods_close(as_of=NOV_1)
    return customers


@pytest.fixture(scope="module")
def _october_once(module_transaction, _catalog_once):
    return module_transaction.once(made_october, "october")


@pytest.fixture
def october(_october_once, catalog) -> dict:
    """made_october's customers, made once for a module where every test asks."""
    return _october_once.for_test()


def simulate(version: PlanVersion, customers, **kwargs) -> PriceSimulation:
    return engine.simulation_request(
        version=version,
        period_start=OCT_1,
        period_end=NOV_1,
        customers=list(customers),
        selection="test",
        user=None,
        now=NOV_21,
        **kwargs,
    )


def rows(result: PriceSimulation) -> dict[str, tuple]:
    return {
        row.customer.external_id: (
            row.current_version_label,
            row.current_total,
            row.simulated_total,
            row.difference,
        )
        for row in report.simulation_rows(simulation=result)
    }


BILLED_KINDS = ("base_fee", "seats", "usage", "overage", "minimum_commitment")


def test_current_totals_are_what_the_close_billed_for_october(catalog, october):
    # given: October closed; its invoice bills October's usage and November's fees
    v1, _ = catalog

    # when: October simulated at the version the customers are on
    result = simulate(v1, october.values())

    # then: each current total is the October invoice's usage and fixed part, exactly
    assert result.status == PriceSimulation.DONE
    for external_id, customer in october.items():
        invoice = Invoice.objects.get(customer=customer, reason="period", period_start=OCT_1)
        billed = sum(
            (line.amount for line in invoice.lines.all() if line.kind in BILLED_KINDS), D(0)
        )
        assert billed == invoice.total == CURRENT[external_id]
    assert {k: v[:3] for k, v in rows(result).items()} == {
        external_id: ("AI Assistant v1", total, total) for external_id, total in CURRENT.items()
    }
    assert result.difference_sum == 0


def test_a_draft_with_other_prices_gives_exact_totals_differences_and_sums(catalog, october):
    _, v2 = catalog

    result = simulate(v2, october.values())

    assert rows(result) == {
        external_id: ("AI Assistant v1", CURRENT[external_id], SIMULATED[external_id], difference)
        for external_id, difference in DIFFERENCE.items()
    }
    assert (result.current_sum, result.simulated_sum, result.difference_sum) == (
        D("120.22"),
        D("164.97"),
        D("44.75"),
    )
    assert (result.status, result.done_count, result.total_customers) == ("done", 3, 3)
    assert result.currency == "USD"
    assert result.finished_at == NOV_21


def test_the_csv_has_one_exact_line_per_customer(catalog, october):
    _, v2 = catalog
    result = simulate(v2, october.values())

    assert report.simulation_csv(simulation=result) == (
        "customer,name,current version,current total,simulated total,difference,currency,"
        "usage breakdown\n"
        "acme,Acme Inc,AI Assistant v1,57.74,54.99,-2.75,USD,\n"
        "beta,Beta Inc,AI Assistant v1,24.99,49.99,25.00,USD,\n"
        "gamma,Gamma Inc,AI Assistant v1,37.49,59.99,22.50,USD,\n"
    )


def test_the_csv_neutralises_names_a_spreadsheet_would_run_and_keeps_amounts(catalog, october):
    _, v2 = catalog
    result = simulate(v2, october.values())
    names = {"acme": "\t=1+1", "beta": "\r=1+1", "gamma": "@SUM(1+1)"}
    for external_id, name in names.items():
        Customer.objects.filter(external_id=external_id).update(name=name)

    lines = list(csv.reader(io.StringIO(report.simulation_csv(simulation=result), newline="")))

    assert lines[1:] == [
        ["acme", "'\t'=1+1", "AI Assistant v1", "57.74", "54.99", "-2.75", "USD", ""],
        ["beta", "'\r'=1+1", "AI Assistant v1", "24.99", "49.99", "25.00", "USD", ""],
        ["gamma", "'@SUM(1+1)", "AI Assistant v1", "37.49", "59.99", "22.50", "USD", ""],
    ]


def test_a_simulation_writes_no_invoice(catalog, october):
    _, v2 = catalog
    before = (Invoice.objects.count(), InvoiceLine.objects.count(), BilledPeriod.objects.count())
    subscriptions = list(Subscription.objects.values_list("id", "version_id", "current_period_end"))

    simulate(v2, october.values())

    after = (Invoice.objects.count(), InvoiceLine.objects.count(), BilledPeriod.objects.count())
    assert after == before
    assert (
        list(Subscription.objects.values_list("id", "version_id", "current_period_end"))
        == subscriptions
    )


def test_a_plan_selects_the_customers_on_it_in_the_period(catalog, october):
    other = plan_create(
        code="other", name="Other", version=VersionSpec(currency="USD"), publish=True
    )
    omega = customer_create(external_id="omega", name="Omega", currency="USD")
    subscription_create(customer=omega, plan=other.plan, start=OCT_1)

    ids = period_subscriptions.plan_subscriber_ids(
        plan=catalog[0].plan, period_start=OCT_1, period_end=NOV_1
    )

    assert ids == sorted(c.pk for c in october.values())
    assert period_subscriptions.plan_subscriber_ids(
        plan=other.plan, period_start=OCT_1, period_end=NOV_1
    ) == [omega.pk]


# The task, for selections above the inline limit


def test_a_large_selection_runs_as_a_task_to_the_end_and_twice_changes_nothing(
    catalog, october, monkeypatch, django_capture_on_commit_callbacks
):
    # given: an inline limit of 2, chunks of 2
    _, v2 = catalog
    monkeypatch.setattr(engine, "INLINE_LIMIT", 2)
    monkeypatch.setattr(engine, "CHUNK", 2)

    # when: three customers
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        requested = simulate(v2, october.values())
        assert requested.status == PriceSimulation.PENDING
        assert requested.done_count == 0

    # then: the task (eager under pytest) rated them all
    assert len(callbacks) == 1
    result = PriceSimulation.objects.get(pk=requested.pk)
    assert (result.status, result.done_count, result.total_customers) == ("done", 3, 3)
    assert result.difference_sum == D("44.75")
    assert rows(result)["acme"][2] == D("54.99")

    # and a second delivery of the task changes nothing
    assert tasks.run_price_simulation(result.pk) == "done"
    assert PriceSimulationRow.objects.filter(simulation=result).count() == 3
    assert PriceSimulation.objects.get(pk=result.pk).difference_sum == D("44.75")


def test_a_run_resumed_after_a_lost_worker_rates_only_the_customers_left(catalog, october):
    # given: a task that died after rating acme
    _, v2 = catalog
    ids = sorted(c.pk for c in october.values())
    stuck = PriceSimulation.objects.create(
        version=v2,
        period_start=OCT_1,
        period_end=NOV_1,
        selection="three",
        customer_ids=ids,
        currency="USD",
        status=PriceSimulation.RUNNING,
        total_customers=3,
        done_count=1,
        created_at=NOV_21,
    )
    PriceSimulationRow.objects.create(
        simulation=stuck,
        customer=october["acme"],
        current_version_label="AI Assistant v1",
        current_total=D("57.74"),
        simulated_total=D("54.99"),
        difference=D("-2.75"),
        currency="USD",
    )

    # when
    tasks.run_price_simulation(stuck.pk)

    # then
    stuck.refresh_from_db()
    assert (stuck.status, stuck.done_count, stuck.difference_sum) == ("done", 3, D("44.75"))


# The admin


@pytest.fixture
def clock():
    with time_machine.travel(NOV_21, tick=False):
        yield


def form(version, **values) -> dict:
    return {
        "version": version.pk,
        "month": "2026-10",
        "period_start": "",
        "period_end": "",
        "plan": "",
        **values,
    }


SIMULATE = "/admin/plans/pricesimulation/simulate/"


def test_simulate_a_plans_subscribers_in_the_admin(admin_client, catalog, october, clock):
    # given
    v1, v2 = catalog

    # when
    response = admin_client.post(SIMULATE, form(v2, plan=v1.plan.pk))

    # then: the result page, its CSV and its progress
    result = PriceSimulation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/plans/pricesimulation/{result.pk}/result/"
    assert result.selection == "subscribers of AI Assistant (3)"
    assert result.created_by.username == "admin"
    page = admin_client.get(response["Location"]).content.decode()
    assert '<td class="difference" style="text-align:right">-2.75</td>' in page
    assert '<th class="difference" style="text-align:right">+44.75</th>' in page
    assert '<th class="simulated" style="text-align:right">164.97</th>' in page
    csv = admin_client.get(f"/admin/plans/pricesimulation/{result.pk}/csv/")
    assert csv["Content-Type"] == "text/csv; charset=utf-8"
    assert csv.content.decode() == report.simulation_csv(simulation=result)
    progress = admin_client.get(f"/admin/plans/pricesimulation/{result.pk}/progress/").json()
    assert progress == {"status": "done", "done": 3, "total": 3}
    listing = admin_client.get("/admin/plans/pricesimulation/").content.decode()
    assert "+44.75 USD" in listing
    change = admin_client.get(f"/admin/plans/pricesimulation/{result.pk}/change/")
    assert change["Location"] == response["Location"]


def test_simulate_chosen_customers_in_the_admin(admin_client, catalog, october, clock):
    _, v2 = catalog
    chosen = [october["beta"].pk, october["acme"].pk]

    response = admin_client.post(SIMULATE, form(v2, customers=chosen))

    assert response.status_code == 302
    result = PriceSimulation.objects.get()
    assert result.selection == "2 customers: Acme Inc, Beta Inc"
    assert (result.current_sum, result.simulated_sum, result.difference_sum) == (
        D("82.73"),
        D("104.98"),
        D("22.25"),
    )


def test_a_running_simulation_shows_a_progress_bar_that_follows_the_task(
    admin_client, catalog, october, clock
):
    _, v2 = catalog
    running = PriceSimulation.objects.create(
        version=v2,
        period_start=OCT_1,
        period_end=NOV_1,
        selection="many",
        customer_ids=[1, 2, 3, 4],
        currency="USD",
        status=PriceSimulation.RUNNING,
        total_customers=4,
        done_count=1,
        created_at=NOV_21,
    )

    page = admin_client.get(f"/admin/plans/pricesimulation/{running.pk}/result/").content.decode()

    assert '<progress id="simulation-progress" max="4" value="1">' in page
    # dates as the rest of the admin writes them, not ISO
    assert '<td id="simulation-period">1 Oct 2026, 00:00 UTC to 1 Nov 2026, 00:00 UTC</td>' in page
    assert '<td id="simulation-asked">—, 21 Nov 2026, 12:00 UTC</td>' in page
    assert f"/admin/plans/pricesimulation/{running.pk}/progress/" in page
    assert 'http-equiv="refresh"' in page
    assert "simulation-rows" not in page
    csv = admin_client.get(f"/admin/plans/pricesimulation/{running.pk}/csv/")
    assert csv.status_code == 302


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"customers": ["eur", "acme"]},
            "AI Assistant v2 bills in USD and Euro GmbH pays in EUR: choose customers who "
            "pay in USD, or a version in their currency.",
        ),
        ({"customers": []}, "Choose customers, or a plan for all its subscribers."),
        (
            {"customers": [], "plan": "other"},
            "Other had no subscribers in the period: choose another period or pick customers "
            "instead.",
        ),
        ({"customers": ["acme"], "plan": "ai"}, "Choose customers or a plan, not both."),
        (
            {"month": "", "period_start": "2026-10-31T00:00", "period_end": "2026-10-01T00:00"},
            "must be after the start",
        ),
        ({"month": "2026-11"}, "must not be in the future: simulate a period that has ended"),
        ({"month": "October"}, "Enter a month as YYYY-MM."),
        ({"month": "", "period_start": "2026-10-01T00:00"}, "Give both a start and an end"),
        ({"month": ""}, "Choose a month, or a start and an end."),
    ],
)
def test_refusals_are_form_errors_and_create_nothing(
    admin_client, catalog, october, clock, values, message
):
    # given
    v1, v2 = catalog
    euro = customer_create(external_id="euro", name="Euro GmbH", currency="EUR")
    other = plan_create(
        code="other", name="Other", version=VersionSpec(currency="USD"), publish=True
    ).plan
    names = {"eur": euro.pk, "acme": october["acme"].pk, "other": other.pk, "ai": v1.plan.pk}
    data = form(v2, customers=[october["acme"].pk])
    for key, value in values.items():
        if key == "customers":
            value = [names[v] for v in value]
        elif key == "plan":
            value = names[value]
        data[key] = value

    # when
    response = admin_client.post(SIMULATE, data)

    # then
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PriceSimulation.objects.exists()


def test_a_staff_user_without_the_permission_may_not_simulate(client, catalog, october, clock):
    # given: staff who may view plan versions, not run simulations
    _, v2 = catalog
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_planversion"))
    client.force_login(user)

    # when
    page = client.get(SIMULATE)
    posted = client.post(SIMULATE, form(v2, customers=[october["acme"].pk]))
    version_page = client.get(f"/admin/plans/planversion/{v2.pk}/change/").content.decode()
    action = client.post(
        "/admin/plans/planversion/", {"action": "simulate", "_selected_action": [v2.pk]}
    )

    # then
    assert (page.status_code, posted.status_code) == (403, 403)
    assert "Simulate prices" not in version_page
    assert action.status_code == 200  # no action for this user: the list again
    assert not PriceSimulation.objects.exists()
    assert not PriceSimulationRow.objects.exists()


def test_a_finance_user_may_simulate_from_a_version(client, catalog, october, clock):
    v1, v2 = catalog
    user = User.objects.create_user("finance", password="x", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_planversion", "run_pricesimulation", "view_customer"]
        )
    )
    client.force_login(user)

    version_page = client.get(f"/admin/plans/planversion/{v2.pk}/change/").content.decode()
    action = client.post(
        "/admin/plans/planversion/", {"action": "simulate", "_selected_action": [v2.pk]}
    )
    two = client.post(
        "/admin/plans/planversion/",
        {"action": "simulate", "_selected_action": [v1.pk, v2.pk]},
        follow=True,
    )
    posted = client.post(SIMULATE, form(v2, customers=[october["acme"].pk]))

    assert f'href="{SIMULATE}?version={v2.pk}"' in version_page
    assert "Choose one version to simulate." in two.content.decode()
    assert action["Location"] == f"{SIMULATE}?version={v2.pk}"
    assert posted.status_code == 302
    result = PriceSimulation.objects.get()
    assert client.get(posted["Location"]).status_code == 200
    assert rows(result) == {"acme": ("AI Assistant v1", D("57.74"), D("54.99"), D("-2.75"))}


@pytest.mark.parametrize(
    ("raised", "saved"),
    [
        (
            engine.InvalidRequest("plan 'ai' bills in USD", words="AI Assistant bills in USD."),
            "AI Assistant bills in USD.",
        ),
        (
            ZeroDivisionError("decimal.DivisionByZero [<class 'decimal.DivisionByZero'>]"),
            "An unexpected error stopped the simulation (ZeroDivisionError); the details are "
            "in the server log. Run it again, and tell whoever runs the server if it fails "
            "again.",
        ),
    ],
)
def test_a_failed_simulation_says_why_in_words(catalog, october, monkeypatch, raised, saved):
    _, v2 = catalog
    simulation = PriceSimulation.objects.create(
        version=v2,
        period_start=OCT_1,
        period_end=NOV_1,
        selection="three",
        customer_ids=sorted(c.pk for c in october.values()),
        currency="USD",
        status=PriceSimulation.PENDING,
        total_customers=3,
        created_at=NOV_21,
    )

    def fails(simulation):
        raise raised

    monkeypatch.setattr(engine, "_rate_remaining", fails)
    done = engine.simulation_run(simulation_id=simulation.pk, now=NOV_21)

    assert (done.status, done.error) == (PriceSimulation.FAILED, saved)
    assert not PriceSimulationRow.objects.filter(simulation=simulation).exists()

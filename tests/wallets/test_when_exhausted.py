"""SCENARIOS.md S23: a wallet that runs dry, with `when_exhausted` "bill" (the
usage it cannot pay for is billed at the close, and the check allows it) or
"block" (today's behaviour: refused, nothing billed). Exact amounts."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from billing.simulation.engine import simulation_rate_customer
from billing.usage.ingestion import events_ingest
from common.errors import InvalidRequest
from customers.portal import portal_session_create
from invoices.models import Invoice
from plans.models import PlanVersion
from plans.validation import ChargeSpec, VersionSpec, validate_version
from tests.factories import (
    MeterFactory,
    PlanVersionFactory,
    check_v1,
    per_unit,
    published_version,
    subscribe,
)
from wallets.ledger import credits_grant
from wallets.models import Wallet
from wallets.purchases import money_top_up

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def agent_runs(when_exhausted: str, pricing=None) -> ChargeSpec:
    return ChargeSpec(
        "agent_runs",
        "credits",
        credits_per_unit=D(1),
        when_exhausted=when_exhausted,
        pricing=pricing,
    )


def runs(count: int, *, prefix: str) -> None:
    events = [
        {
            "id": f"{prefix}-{i}",
            "customer": "acme",
            "event_name": "agent.run",
            "timestamp": NOW.isoformat(),
        }
        for i in range(count)
    ]
    result = events_ingest(events=events, now=NOW)
    assert (result.rejected, result.duplicates) == ([], 0)


def check(api, meter: str = "agent_runs") -> dict:
    with time_machine.travel(NOW, tick=False):
        return api.post(
            "/api/v1/customers/acme/check", {"meter": meter, "quantity": 1}, format="json"
        ).json()


def usage_line(api, meter: str = "agent_runs") -> dict:
    with time_machine.travel(NOW, tick=False):
        body = api.get("/api/v1/customers/acme/usage").json()
    return next(line for line in body["lines"] if line["meter"] == meter)


def closing_invoice(acme) -> Invoice:
    periods_close(as_of=DEC_1)
    return Invoice.objects.get(customer=acme, reason=Invoice.PERIOD)


def test_s23_credits_that_bill_when_dry(api, client, acme):
    # given: 1 credit a run, 0.50 a run no credit covers; 100 credits
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    published_version("agents", charges=(agent_runs("bill", per_unit("0.50")),))
    subscribe(acme, "agents")
    credits_grant(customer=acme, credits=D(100), now=NOW)

    # when: 130 runs
    runs(130, prefix="a")

    # then: 100 drawn, the balance 0, and the check still allows
    assert Wallet.objects.get(customer=acme, kind="credits").balance == 0
    answer = check(api)
    assert check_v1(answer) == {
        "allowed": True,
        "model": "credits",
        "reason": "ok",
        "used": "130",
        "included": None,
        "remaining": "0",
        "balance": "0",
    }
    assert answer["message"] == (
        "allowed: what the wallet cannot pay for is billed on the period's invoice"
    )
    # /usage shows the 30 uncovered runs and what the close will bill for them
    line = usage_line(api)
    assert (line["quantity"], line["uncovered"], line["amount"]) == ("130", "30", "15.00")

    # the portal says they are billed
    token = portal_session_create(customer=acme, now=NOW).token
    with time_machine.travel(NOW, tick=False):
        page = client.get(f"/portal/{token}/").content.decode()
    assert "30 not covered by your credits: billed on your period invoice" in page

    # and the closing invoice has one uncovered_usage line of 30 x 0.50
    invoice = closing_invoice(acme)
    lines = [
        (x.kind, x.description, x.quantity, x.unit_price, x.amount) for x in invoice.lines.all()
    ]
    assert lines == [
        (
            "uncovered_usage",
            "Agent runs not covered by credits",
            D(30),
            D("0.50"),
            D("15.00"),
        )
    ]
    assert invoice.subtotal == D("15.00")


def test_s23_with_block_the_check_refuses_after_100_and_nothing_is_billed(api, acme):
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    published_version("agents", charges=(agent_runs("block"),))
    subscribe(acme, "agents")
    credits_grant(customer=acme, credits=D(100), now=NOW)

    runs(100, prefix="a")
    assert check_v1(check(api))["allowed"] is False
    assert check(api)["reason"] == "insufficient_credits"
    runs(30, prefix="b")  # sent anyway: recorded as uncovered, not billed

    line = usage_line(api)
    assert (line["quantity"], line["uncovered"], line["amount"]) == ("130", "30", "0.00")
    assert not closing_invoice(acme).lines.exists()


def test_a_balance_that_bills_when_dry_bills_the_money_it_lacked(api, acme):
    # given: a money balance of 2.00 paying 0.10 a run under graduated pricing
    # (0.10 for the first 20 runs, 0.05 beyond): the tier walk goes on over the
    # period's runs, covered or not
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    from plans.pricing import PricingSpec, TierSpec

    graduated = PricingSpec(
        "graduated",
        tiers=(TierSpec(D(20), D("0.10")), TierSpec(None, D("0.05"))),
    )
    published_version(
        "agents",
        charges=(ChargeSpec("agent_runs", "balance", pricing=graduated, when_exhausted="bill"),),
    )
    subscribe(acme, "agents")
    money_top_up(customer=acme, amount=D("2.00"), currency="USD", now=NOW)

    # when: 50 runs: the first 20 cost 2.00 (the whole balance); 30 at 0.05 lack 1.50
    runs(50, prefix="a")

    # then
    assert Wallet.objects.get(customer=acme, kind="money").balance == 0
    assert check(api)["allowed"] is True
    line = usage_line(api)
    assert (line["uncovered"], line["amount"]) == ("30", "1.50")
    invoice = closing_invoice(acme)
    assert [(x.kind, x.quantity, x.unit_price, x.amount) for x in invoice.lines.all()] == [
        ("uncovered_usage", D(30), None, D("1.50"))
    ]


@pytest.mark.parametrize(
    ("charge", "path", "message"),
    [
        (
            agent_runs("bill"),
            "charges.0.pricing",
            "A credits charge that bills when the credits run out needs a price: "
            "what a unit no credit covers costs",
        ),
        (
            agent_runs("block", per_unit("0.50")),
            "charges.0.pricing",
            "A credits charge has no price unless it bills when the credits run out: "
            "remove the price or set 'When exhausted' to Bill",
        ),
        (
            ChargeSpec(
                "agent_runs", "overage", D(10), pricing=per_unit("1"), when_exhausted="bill"
            ),
            "charges.0.when_exhausted",
            "A soft cap charge has no wallet to run out: leave 'When exhausted' at Block",
        ),
        (
            agent_runs("later", per_unit("0.50")),
            "charges.0.when_exhausted",
            "Pick what happens when the wallet runs out: block or bill",
        ),
    ],
)
def test_when_exhausted_is_validated_as_the_catalog(charge, path, message):
    spec = VersionSpec(currency="USD", charges=(charge,))
    with pytest.raises(InvalidRequest) as raised:
        validate_version(spec, known_meters={"agent_runs": "count"})
    assert raised.value.fields[path] == [message]


def test_the_api_takes_and_shows_when_exhausted(api):
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    body = {
        "code": "agents",
        "name": "Agents",
        "currency": "USD",
        "charges": [
            {
                "meter": "agent_runs",
                "model": "credits",
                "credits_per_unit": "1",
                "when_exhausted": "bill",
                "pricing": {"scheme": "per_unit", "unit_price": "0.50"},
            }
        ],
    }
    response = api.post("/api/v1/plans", body, format="json")
    assert response.status_code == 201, response.content
    charge = response.json()["versions"][0]["charges"][0]
    assert (charge["when_exhausted"], charge["pricing"]["unit_price"]) == ("bill", "0.5")

    response = api.post(
        "/api/v1/plans",
        {**body, "code": "agents2", "charges": [{**body["charges"][0], "when_exhausted": 7}]},
        format="json",
    )
    assert response.status_code == 400
    assert "charges.0.when_exhausted" in response.json()["error"]["fields"]


def test_a_hard_spend_limit_counts_what_a_dry_credit_wallet_would_bill(api, acme):
    # given: no credits, 0.50 a run not covered, a hard spend limit of 10.00
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    published_version("agents", charges=(agent_runs("bill", per_unit("0.50")),))
    subscribe(acme, "agents")
    type(acme).objects.filter(pk=acme.pk).update(spend_limit=D("10.00"), spend_limit_mode="hard")

    def ask(quantity: int) -> dict:
        with time_machine.travel(NOW, tick=False):
            return api.post(
                "/api/v1/customers/acme/check",
                {"meter": "agent_runs", "quantity": quantity},
                format="json",
            ).json()

    # then: 20 runs (10.00) fit the limit, 21 (10.50) do not
    assert ask(20)["allowed"] is True
    refused = ask(21)
    assert (refused["allowed"], refused["reason"]) == (False, "spend_limit_reached")


def test_uncovered_usage_of_a_late_event_is_billed_with_the_period_it_belongs_to(api, acme):
    # given: November's 100 credits ran dry after 100 of 120 runs; closed on 1 Dec
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    published_version("agents", charges=(agent_runs("bill", per_unit("0.50")),))
    subscribe(acme, "agents")
    credits_grant(customer=acme, credits=D(100), now=NOW)
    runs(120, prefix="a")
    periods_close(as_of=DEC_1)
    november = Invoice.objects.get(customer=acme, reason=Invoice.PERIOD)
    assert [(x.kind, x.quantity, x.amount) for x in november.lines.all()] == [
        ("uncovered_usage", D(20), D("10.00"))
    ]

    # when: 10 runs of 20 Nov arrive on 3 Dec, the wallet still dry
    late = [
        {
            "id": f"late-{i}",
            "customer": "acme",
            "event_name": "agent.run",
            "timestamp": "2026-11-20T10:30:00Z",
        }
        for i in range(10)
    ]
    assert events_ingest(events=late, now=datetime(2026, 12, 3, tzinfo=UTC)).accepted == 10
    periods_close(as_of=datetime(2027, 1, 1, tzinfo=UTC))

    # then: December's close bills them as November's late usage, at its price
    december = Invoice.objects.get(customer=acme, reason=Invoice.PERIOD, period_start=DEC_1)
    assert [(x.kind, x.description, x.amount) for x in december.lines.all()] == [
        ("late_usage", "Late usage for Nov 2026: Agent runs", D("5.00"))
    ]


def test_a_simulation_of_a_draft_that_bills_when_dry_prices_the_uncovered_runs(acme):
    # given: on a blocking plan in November, 30 of 130 runs were not covered
    MeterFactory(code="agent_runs", name="Agent runs", event_name="agent.run")
    version = published_version("agents", charges=(agent_runs("block"),))
    subscribe(acme, "agents")
    credits_grant(customer=acme, credits=D(100), now=NOW)
    runs(130, prefix="a")
    draft = PlanVersionFactory(
        plan=version.plan,
        status=PlanVersion.DRAFT,
        charges=(agent_runs("bill", per_unit("0.50")),),
    )

    # when: the draft that bills them at 0.50 a run is simulated on November
    rated = simulation_rate_customer(
        customer=acme,
        version=draft,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=DEC_1,
    )

    # then: today nothing is billed; the draft would bill 30 x 0.50
    assert (rated.current_total, rated.simulated_total) == (D("0.00"), D("15.00"))

"""S34 (SCENARIOS.md): limits the customer sets, through the API as a product's
settings page sets them, and `check` answering against them exactly.

Rate card by model: gpt-4o 5.00, o3 20.00 per 1M tokens. The merchant's spend
limit is 500.00. The customer sets a budget of 300.00 (stop), a cap of 50.00 on
o3 and alerts at 50 and 80 %."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import override_settings

from customers.models import Customer, CustomerLimitChange
from customers.services import customer_create
from tests.factories import api_client, llm_tokens_meter, subscribe

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
MILLION = 1_000_000


def per_million(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": str(MILLION)}


CARD = {
    "meter": "llm_tokens",
    "model": "overage",
    "included_units": "0",
    "price_by": ["model"],
    "rates": [
        {"when": {"model": "gpt-4o"}, "pricing": per_million("5.00")},
        {"when": {"model": "o3"}, "pricing": per_million("20.00")},
        {"when": {}, "pricing": per_million("5.00")},
    ],
}
LIMITS = {
    "budget": {"amount": "300.00", "action": "stop"},
    "caps": [{"meter": "llm_tokens", "when": {"model": "o3"}, "amount": "50.00"}],
    "alert_thresholds": ["50", "80"],
    "channels": [
        {"kind": "slack", "url": "http://127.0.0.1:9/slack", "name": "#ai-spend"},
        {"kind": "email", "to": "ops@acme.example"},
    ],
}


@pytest.fixture
def s34(db):
    llm_tokens_meter()
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    created = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [CARD]}, format="json"
    )
    assert created.status_code == 201, created.json()
    customer = customer_create(
        external_id="acme", name="Acme", currency="USD", spend_limit=Decimal("500.00")
    )
    subscribe(customer, "tokens", start=datetime(2026, 11, 1, tzinfo=UTC))
    with (
        time_machine.travel(NOW, tick=False),
        override_settings(BILLING_WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"]),
    ):
        yield customer


class Product:
    """The AI product: posts usage and asks before a call."""

    def __init__(self):
        self.client = api_client("events:write")
        self.sent = 0

    def use(self, model: str, tokens: int) -> None:
        self.sent += 1
        event = {
            "id": f"call-{self.sent}",
            "customer": "acme",
            "event_name": "llm.tokens",
            "timestamp": (NOW - timedelta(minutes=30)).isoformat(),
            "properties": {"tokens": tokens, "model": model, "token_type": "input"},
        }
        posted = self.client.post("/api/v1/events", {"events": [event]}, format="json")
        assert posted.status_code == 202, posted.json()

    def check(self, model: str, tokens: int) -> dict:
        answer = self.client.post(
            "/api/v1/customers/acme/check",
            {"meter": "llm_tokens", "quantity": str(tokens), "properties": {"model": model}},
            format="json",
        )
        assert answer.status_code == 200, answer.json()
        return answer.json()


def spent(limits: dict) -> tuple:
    """(budget spent, budget remaining, o3 cap spent, o3 cap remaining)."""
    (cap,) = limits["caps"]
    budget = limits["budget"]
    return budget["spent"], budget["remaining"], cap["spent"], cap["remaining"]


def test_s34_check_answers_against_the_limits_the_customer_set(s34):
    settings_page = api_client("admin", "read")
    put = settings_page.put(
        "/api/v1/customers/acme/limits", LIMITS | {"changed_by": "jane@acme"}, format="json"
    )
    assert put.status_code == 200, put.json()
    product = Product()

    product.use("gpt-4o", 20 * MILLION)  # 100.00
    product.use("o3", 2 * MILLION)  # 40.00
    limits = settings_page.get("/api/v1/customers/acme/limits").json()
    assert spent(limits) == ("140.00", "160.00", "40.00", "10.00")
    product.use("gpt-4o", 6 * MILLION)  # 30.00: 170.00

    # 1M o3 (20.00) would put o3 at 60.00, past its 50.00 cap.
    refused = product.check("o3", MILLION)
    assert (refused["allowed"], refused["reason"], refused["remaining"]) == (
        False,
        "customer_cap_reached",
        "10.00",
    )
    assert refused["limit"] == {
        "kind": "cap",
        "meter": "llm_tokens",
        "when": {"model": "o3"},
        "amount": "50.00",
        "spent": "40.00",
    }
    assert refused["message"] == (
        "this use would pass the customer's cap on llm_tokens (model o3) this period "
        "(50.00 USD): 10.00 USD left under it"
    )
    # A gpt-4o call is not counted against the o3 cap.
    assert product.check("gpt-4o", MILLION)["allowed"] is True
    allowed = product.check("o3", 500_000)  # 10.00: o3 at exactly 50.00
    assert (allowed["allowed"], allowed["reason"]) == (True, "ok")
    product.use("o3", 500_000)
    assert spent(settings_page.get("/api/v1/customers/acme/limits").json()) == (
        "180.00",
        "120.00",
        "50.00",
        "0.00",
    )
    reached = product.check("o3", 1)
    assert (reached["reason"], reached["remaining"]) == ("customer_cap_reached", "0.00")
    assert reached["message"].endswith("(50.00 USD) is reached: 0.00 USD left")

    product.use("gpt-4o", 20 * MILLION)  # 100.00: 280.00
    refused = product.check("gpt-4o", 5 * MILLION)  # 25.00 would make 305.00
    assert (refused["allowed"], refused["reason"], refused["remaining"]) == (
        False,
        "customer_budget_reached",
        "20.00",
    )
    assert refused["limit"] == {
        "kind": "budget",
        "amount": "300.00",
        "spent": "280.00",
        "action": "stop",
    }
    assert product.check("gpt-4o", 4 * MILLION)["allowed"] is True  # 20.00: exactly 300.00

    # The budget only tightens the merchant's limit.
    above = settings_page.put(
        "/api/v1/customers/acme/limits",
        LIMITS | {"budget": {"amount": "600.00", "action": "stop"}},
        format="json",
    )
    assert above.status_code == 400
    assert "500.00\N{NO-BREAK SPACE}USD" in above.json()["error"]["fields"]["budget.amount"][0]
    assert Customer.objects.get(external_id="acme").limits["budget"]["amount"] == "300.00"

    history = settings_page.get("/api/v1/customers/acme/limits").json()["history"]
    assert [(h["by"], h["via"], h["before"], h["after"]["budget"]) for h in history] == [
        ("jane@acme (API key admin-read)", "api", {}, {"amount": "300.00", "action": "stop"})
    ]


def test_an_alert_budget_warns_and_never_refuses(s34):
    client = api_client("admin", "read")
    limits = LIMITS | {"budget": {"amount": "100.00", "action": "alert"}, "caps": []}
    assert client.put("/api/v1/customers/acme/limits", limits, format="json").status_code == 200
    product = Product()
    product.use("gpt-4o", 30 * MILLION)  # 150.00, past the 100.00 budget
    answer = product.check("gpt-4o", MILLION)
    assert (answer["allowed"], answer["reason"]) == (True, "ok")
    body = client.get("/api/v1/customers/acme/limits").json()
    assert (body["budget"]["spent"], body["budget"]["remaining"]) == ("150.00", "0.00")


def test_a_quantity_cap_counts_units_of_the_values_it_names(s34):
    client = api_client("admin", "read")
    limits = {"caps": [{"meter": "llm_tokens", "when": {"model": "o3"}, "quantity": "3000000"}]}
    assert client.put("/api/v1/customers/acme/limits", limits, format="json").status_code == 200
    product = Product()
    product.use("o3", 2 * MILLION)
    product.use("gpt-4o", 9 * MILLION)
    refused = product.check("o3", 1_500_000)
    assert (refused["reason"], refused["remaining"]) == ("customer_cap_reached", "1000000")
    assert refused["limit"] == {
        "kind": "cap",
        "meter": "llm_tokens",
        "when": {"model": "o3"},
        "quantity": "3000000",
        "spent": "2000000",
    }
    assert product.check("o3", MILLION)["allowed"] is True
    (cap,) = client.get("/api/v1/customers/acme/limits").json()["caps"]
    assert (cap["spent"], cap["remaining"]) == ("2000000", "1000000")


def test_limits_survive_a_top_up_and_a_plan_change(s34):
    """They belong to the customer: what changes its wallets or its plan leaves
    them as they are (no silent reset)."""
    from billing.subscriptions.lifecycle import subscription_change_plan
    from plans.models import PlanVersion
    from wallets.purchases import money_top_up

    client = api_client("admin", "read")
    assert client.put("/api/v1/customers/acme/limits", LIMITS, format="json").status_code == 200
    stored = Customer.objects.get(external_id="acme").limits
    money_top_up(customer=s34, amount=Decimal("100.00"), currency="USD", now=NOW)
    subscription = s34.subscriptions.get()
    created = api_client("admin").post(
        "/api/v1/plans",
        {"code": "tokens2", "name": "Tokens 2", "currency": "USD", "base_fee": "0"}
        | {"publish": True, "charges": [CARD]},
        format="json",
    )
    assert created.status_code == 201
    subscription_change_plan(
        subscription=subscription,
        version=PlanVersion.objects.get(plan__code="tokens2"),
        effective="immediate",
        at=NOW,
    )
    assert Customer.objects.get(external_id="acme").limits == stored
    assert CustomerLimitChange.objects.filter(customer=s34).count() == 1


def test_s34_end_to_end_through_the_portal_with_alerts_on_slack_and_teams(
    s34, client, settings, django_capture_on_commit_callbacks
):
    """The whole scenario as its people live it: the customer's CTO sets the limits
    through a manage link, the product posts usage and asks before each call, the
    alerts reach a Slack-shaped and a Teams-shaped receiver once each, a read-only
    link cannot change anything, and the history names the holder."""
    from django.core import mail

    from billing.models import Alert
    from billing.tasks import check_usage_alerts
    from customers.portal_links import portal_link_create, portal_session_create
    from tests.billing.channel_receiver import ChannelReceiver
    from tests.customers.test_portal_limits import form

    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    slack, teams = ChannelReceiver().start(), ChannelReceiver().start()
    capture = django_capture_on_commit_callbacks
    try:
        _, token = portal_link_create(
            customer=s34,
            manage=True,
            holder="Jane (CTO)",
            expires_in_days=30,
            created_by="tests",
            now=NOW,
        )
        with capture(execute=True):
            saved = client.post(
                f"/portal/{token}/limits",
                form(
                    budget="300.00",
                    action="stop",
                    thresholds="50, 80",
                    caps=[
                        {
                            "meter": "llm_tokens",
                            "property": "model",
                            "value": "o3",
                            "measure": "amount",
                            "limit": "50.00",
                        }
                    ],
                    channels=[
                        {"kind": "slack", "target": slack.url("/services/T0/B0/x"), "name": "#ai"},
                        {"kind": "teams", "target": teams.url("/workflows/1"), "name": ""},
                        {"kind": "email", "target": "ops@acme.example", "name": ""},
                    ],
                ),
            )
        assert saved.status_code == 302, saved.content.decode()[:2000]
        assert Customer.objects.get(pk=s34.pk).limits == {
            "budget": {"amount": "300.00", "action": "stop"},
            "caps": [{"meter": "llm_tokens", "when": {"model": "o3"}, "amount": "50.00"}],
            "alert_thresholds": ["50", "80"],
            "channels": [
                {"kind": "slack", "url": slack.url("/services/T0/B0/x"), "name": "#ai"},
                {"kind": "teams", "url": teams.url("/workflows/1")},
                {"kind": "email", "to": "ops@acme.example"},
            ],
        }
        product = Product()

        def use(model: str, tokens: int) -> None:
            # The worker's check after the ingest, and the messages it queues.
            with capture(execute=True):
                product.use(model, tokens)
            with capture(execute=True):
                check_usage_alerts.delay([s34.pk]).get()

        def thresholds() -> list[str]:
            return sorted(
                Alert.objects.filter(customer=s34, kind="budget_threshold").values_list(
                    "key", flat=True
                )
            )

        use("gpt-4o", 20 * MILLION)
        use("o3", 2 * MILLION)  # 140.00: no alert
        assert (thresholds(), slack.received, teams.received) == ([], [], [])

        use("gpt-4o", 6 * MILLION)  # 170.00: the 50 % alert once on each channel
        assert thresholds() == ["budget:50"]
        assert [b["blocks"][0]["text"]["text"] for b in slack.accepted] == [
            "You have used 56% of your budget"
        ]
        assert len(teams.accepted) == 1
        facts = teams.accepted[0]["attachments"][0]["content"]["body"][2]["facts"]
        assert [(f["title"], f["value"]) for f in facts[:3]] == [
            ("Spent", "170.00\N{NO-BREAK SPACE}USD"),
            ("Budget", "300.00\N{NO-BREAK SPACE}USD"),
            ("Left", "130.00\N{NO-BREAK SPACE}USD"),
        ]
        assert [m.subject for m in mail.outbox if m.to == ["ops@acme.example"]] == [
            "You have used 56% of your budget"
        ]

        refused = product.check("o3", MILLION)
        assert (refused["allowed"], refused["reason"], refused["remaining"]) == (
            False,
            "customer_cap_reached",
            "10.00",
        )
        assert product.check("o3", 500_000)["allowed"] is True
        use("o3", 500_000)  # o3 at 50.00; 180.00 in all
        use("gpt-4o", 20 * MILLION)  # 280.00: the 80 % alert
        assert thresholds() == ["budget:50", "budget:80"]
        assert len(slack.accepted) == len(teams.accepted) == 2
        assert [f["text"] for f in slack.accepted[1]["blocks"][2]["fields"]][:3] == [
            "*Spent*\n280.00\N{NO-BREAK SPACE}USD",
            "*Budget*\n300.00\N{NO-BREAK SPACE}USD",
            "*Left*\n20.00\N{NO-BREAK SPACE}USD",
        ]
        refused = product.check("gpt-4o", 5 * MILLION)
        assert (refused["allowed"], refused["reason"], refused["remaining"]) == (
            False,
            "customer_budget_reached",
            "20.00",
        )

        # A read-only link cannot change anything.
        read_only = portal_session_create(customer=s34, now=NOW).token
        answer = client.post(f"/portal/{read_only}/limits", form(budget="1000.00"))
        assert answer.status_code == 403
        assert Customer.objects.get(pk=s34.pk).limits["budget"]["amount"] == "300.00"
        # Nor can the manage link pass the merchant's 500.00.
        answer = client.post(f"/portal/{token}/limits", form(budget="600.00"))
        assert answer.status_code == 400
        assert "500.00\N{NO-BREAK SPACE}USD" in answer.content.decode()
        history = api_client("read").get("/api/v1/customers/acme/limits").json()["history"]
        assert [(h["by"], h["via"]) for h in history] == [("Jane (CTO)", "portal")]
    finally:
        slack.stop()
        teams.stop()

"""The alerts of the budget a customer sets itself (issue 78, SCENARIOS S34), to the
channels it chose: a rate card by model (gpt-4o 5.00, o3 20.00 per 1M tokens), a
budget of 300.00 (stop) with thresholds at 50 and 80 %, a Slack and a Teams
incoming webhook (real HTTP receivers on 127.0.0.1) and an e-mail address. Usage
is ingested for real, the check after ingestion raises the alerts, the tasks and
the beat's sweep send them: each once per threshold, period and channel, in the
customer's language, through the webhooks' outbound guard, retried when a
receiver fails. Also the e-mail of a change of the limits, and the admin."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connections

from billing.invoicing.close import periods_close
from billing.models import Alert, AlertTeamRecipient, ChannelMessage
from billing.notifications import channels
from billing.notifications.channel_messages import budget_words, email_text
from billing.tasks import (
    check_usage_alerts,
    retry_due_channel_messages,
)
from billing.usage.ingestion import events_ingest
from common.customer_text import CustomerText
from common.errors import InvalidRequest
from config.celery import URGENT_QUEUE, app
from customers.limits import limits_set
from customers.models import Customer
from customers.portal_links import portal_email_url
from plans.pricing import PER_UNIT, PricingSpec
from plans.rate_card_pricing import RateSpec
from plans.services import meter_create
from plans.validation import ChargeSpec
from tests.beat import scheduled
from tests.billing.channel_receiver import ChannelReceiver
from tests.factories import CustomerFactory, published_version, subscribe

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
MILLION = D(1_000_000)
NBSP = "\xa0"
SET_AT = NOV_1 + timedelta(hours=1)


@pytest.fixture
def slack(settings):
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    receiver = ChannelReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def teams(slack):
    receiver = ChannelReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def s34_plan(db):
    meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation="sum",
        value_property="tokens",
        group_by=["model"],
    )

    def rate(model: str | None, price: str) -> RateSpec:
        return RateSpec(
            when=(("model", model),) if model else (),
            pricing=PricingSpec(PER_UNIT, unit_price=D(price), per=MILLION),
        )

    return published_version(
        "s34",
        charges=(
            ChargeSpec(
                "llm_tokens",
                "overage",
                D(0),
                price_by=("model",),
                # Any other model (the default row, required) at gpt-4o's price.
                rates=(rate("gpt-4o", "5.00"), rate("o3", "20.00"), rate(None, "5.00")),
            ),
        ),
    )


def s34_limits(slack, teams, *, email: str = "ops@acme.test") -> dict:
    return {
        "budget": {"amount": "300.00", "action": "stop"},
        "caps": [{"meter": "llm_tokens", "when": {"model": "o3"}, "amount": "50.00"}],
        "alert_thresholds": ["50", "80"],
        "channels": [
            {"kind": "slack", "url": slack.url("/services/T0/B0/x"), "name": "#ops"},
            {"kind": "teams", "url": teams.url("/workflows/1")},
            {"kind": "email", "to": email},
        ],
    }


def make_customer(
    s34_plan, *, locale: str = "en", email: str = "billing@acme.test", spend_limit="500.00"
) -> Customer:
    customer = CustomerFactory(
        external_id="acme",
        name="Acme Inc",
        email=email,
        spend_limit=D(spend_limit),
        locale=locale,
    )
    subscribe(customer, s34_plan)
    return customer


@pytest.fixture
def acme(s34_plan, slack, teams, django_capture_on_commit_callbacks):
    customer = make_customer(s34_plan)
    with (
        time_machine.travel(SET_AT, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        limits_set(
            customer=customer,
            document=s34_limits(slack, teams),
            by="Jane (CTO)",
            via="portal",
            now=SET_AT,
        )
    return customer


class Usage:
    """Ingests llm.tokens events at a set time and runs what the commit enqueues, as
    the workers would (the alert check, then the channel messages' tasks)."""

    def __init__(self, capture):
        self.capture = capture
        self.sent = 0

    def send(self, at: datetime, *tokens: tuple[str, int], customer: str = "acme") -> None:
        events = []
        for model, count in tokens:
            self.sent += 1
            events.append(
                {
                    "id": f"e{self.sent}",
                    "customer": customer,
                    "event_name": "llm.tokens",
                    "timestamp": (at - timedelta(minutes=1)).isoformat(),
                    "properties": {"model": model, "tokens": count},
                }
            )
        with time_machine.travel(at, tick=False), self.capture(execute=True):
            result = events_ingest(events=events, now=at)
        assert (result.rejected, result.duplicates) == ([], 0)


@pytest.fixture
def usage(django_capture_on_commit_callbacks):
    return Usage(django_capture_on_commit_callbacks)


def sweep(at: datetime, capture) -> int:
    with time_machine.travel(at, tick=False), capture(execute=True):
        return retry_due_channel_messages.delay().get()


def check_again(customer: Customer, at: datetime, capture) -> int:
    with time_machine.travel(at, tick=False), capture(execute=True):
        return check_usage_alerts.delay([customer.pk]).get()


def budget_keys(customer: Customer) -> list[str]:
    return list(
        Alert.objects.filter(customer=customer, kind="budget_threshold")
        .order_by("id")
        .values_list("key", flat=True)
    )


def portal_link(customer: Customer, at: datetime) -> str:
    """The read-only portal link an alert raised at `at` carries (its token is signed
    with the clock's time)."""
    with time_machine.travel(at, tick=False):
        return portal_email_url(customer=customer, now=at)


def alert_emails() -> list:
    return [m for m in mail.outbox if m.to == ["ops@acme.test"]]


T1 = NOV_10 + timedelta(minutes=1)


def slack_50(url: str) -> dict:
    """What the Slack receiver gets at 170.00 of 300.00 (S34's 50 % alert)."""
    summary = (
        f"Acme Inc has spent 170.00{NBSP}USD (56%) of its 300.00{NBSP}USD budget in the period "
        f"1 Nov \u2013 30 Nov 2026 (UTC): 130.00{NBSP}USD left."
    )
    return {
        "text": f"You have used 56% of your budget\n{summary}",
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": "You have used 56% of your budget"},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Spent*\n170.00{NBSP}USD"},
                    {"type": "mrkdwn", "text": f"*Budget*\n300.00{NBSP}USD"},
                    {"type": "mrkdwn", "text": f"*Left*\n130.00{NBSP}USD"},
                    {"type": "mrkdwn", "text": "*Alert threshold*\n50%"},
                    {"type": "mrkdwn", "text": "*Period*\n1 Nov \u2013 30 Nov 2026 (UTC)"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "Usage that would go past the budget is refused until the next "
                        "period.",
                    }
                ],
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "See your usage and limits"},
                        "url": url,
                    }
                ],
            },
        ],
    }


def teams_50(url: str) -> dict:
    """What the Teams receiver gets for the same alert: an Adaptive Card 1.4."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "You have used 56% of your budget",
                            "weight": "Bolder",
                            "size": "Medium",
                            "color": "Warning",
                            "wrap": True,
                        },
                        {
                            "type": "TextBlock",
                            "text": f"Acme Inc has spent 170.00{NBSP}USD (56%) of its "
                            f"300.00{NBSP}USD budget in the period 1 Nov \u2013 30 Nov 2026 "
                            f"(UTC): 130.00{NBSP}USD left.",
                            "wrap": True,
                        },
                        {
                            "type": "FactSet",
                            "facts": [
                                {"title": "Spent", "value": f"170.00{NBSP}USD"},
                                {"title": "Budget", "value": f"300.00{NBSP}USD"},
                                {"title": "Left", "value": f"130.00{NBSP}USD"},
                                {"title": "Alert threshold", "value": "50%"},
                                {"title": "Period", "value": "1 Nov \u2013 30 Nov 2026 (UTC)"},
                            ],
                        },
                        {
                            "type": "TextBlock",
                            "text": "Usage that would go past the budget is refused until the "
                            "next period.",
                            "wrap": True,
                            "isSubtle": True,
                        },
                    ],
                    "actions": [
                        {"type": "Action.OpenUrl", "title": "See your usage and limits", "url": url}
                    ],
                },
            }
        ],
    }


def test_s34_each_budget_threshold_is_sent_once_on_each_channel(
    acme, usage, slack, teams, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    AlertTeamRecipient.objects.create(email="team@seller.test", kinds=["budget_threshold"])
    mail.outbox.clear()  # the limits' change, e-mailed (test_the_limit_change_is_emailed...)

    # when: 20M gpt-4o (100.00) and 2M o3 (40.00): 140.00 of 300.00
    usage.send(NOV_10, ("gpt-4o", 20_000_000), ("o3", 2_000_000))

    # then: nothing
    assert budget_keys(acme) == []
    assert (slack.received, teams.received, mail.outbox) == ([], [], [])

    # when: 6M gpt-4o (30.00): 170.00, past 50 %
    usage.send(T1, ("gpt-4o", 6_000_000))

    # then: the 50 % alert, once on each channel
    assert budget_keys(acme) == ["budget:50"]
    url = portal_link(acme, T1)
    alert = Alert.objects.get(key="budget:50")
    assert alert.payload == {
        "threshold": "50",
        "percentage": "56",
        "spend": "170.00",
        "budget": "300.00",
        "remaining": "130.00",
        "currency": "USD",
        "action": "stop",
        "portal_url": url,
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
        "period": "1 Nov \u2013 30 Nov 2026 (UTC)",
    }
    assert slack.accepted == [slack_50(url)]
    assert [p.path for p in slack.received] == ["/services/T0/B0/x"]
    assert slack.received[0].headers["Content-Type"] == "application/json"
    assert teams.accepted == [teams_50(url)]
    assert [p.path for p in teams.received] == ["/workflows/1"]
    # the e-mail channel; the merchant's team its copy; not the billing contact
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["ops@acme.test"], "You have used 56% of your budget"),
        (["team@seller.test"], "[Acme Inc] You have used 56% of your budget"),
    ]
    assert mail.outbox[0].body == (
        "Hello,\n\n"
        f"Acme Inc has spent 170.00{NBSP}USD (56%) of its 300.00{NBSP}USD budget in the period "
        f"1 Nov \u2013 30 Nov 2026 (UTC): 130.00{NBSP}USD left.\n\n"
        f"Spent: 170.00{NBSP}USD\n"
        f"Budget: 300.00{NBSP}USD\n"
        f"Left: 130.00{NBSP}USD\n"
        "Alert threshold: 50%\n"
        "Period: 1 Nov \u2013 30 Nov 2026 (UTC)\n\n"
        "Usage that would go past the budget is refused until the next period.\n\n"
        f"See your usage and limits: {url}\n"
    )
    assert set(ChannelMessage.objects.filter(alert=alert).values_list("kind", "status")) == {
        ("slack", "succeeded"),
        ("teams", "succeeded"),
        ("email", "succeeded"),
    }

    # when: the check and the sweep run again, later
    assert check_again(acme, T1 + timedelta(minutes=5), capture) == 0
    assert sweep(T1 + timedelta(hours=1), capture) == 0

    # then: nothing is sent twice
    assert (len(slack.received), len(teams.received), len(mail.outbox)) == (1, 1, 2)

    # when: o3 500,000 (10.00): 180.00; then 20M gpt-4o (100.00): 280.00, past 80 %
    usage.send(T1 + timedelta(hours=2), ("o3", 500_000))
    assert len(slack.received) == 1
    at = T1 + timedelta(hours=3)
    usage.send(at, ("gpt-4o", 20_000_000))

    # then: the 80 % alert on each channel, saying 280.00 spent and 20.00 left
    assert budget_keys(acme) == ["budget:50", "budget:80"]
    assert len(slack.accepted) == len(teams.accepted) == 2
    later = slack.accepted[1]
    assert later["blocks"][0]["text"]["text"] == "You have used 93% of your budget"
    assert [f["text"] for f in later["blocks"][2]["fields"]] == [
        f"*Spent*\n280.00{NBSP}USD",
        f"*Budget*\n300.00{NBSP}USD",
        f"*Left*\n20.00{NBSP}USD",
        "*Alert threshold*\n80%",
        "*Period*\n1 Nov \u2013 30 Nov 2026 (UTC)",
    ]
    assert teams.accepted[1]["attachments"][0]["content"]["body"][2]["facts"][2] == {
        "title": "Left",
        "value": f"20.00{NBSP}USD",
    }
    assert [m.subject for m in alert_emails()] == [
        "You have used 56% of your budget",
        "You have used 93% of your budget",
    ]
    assert sweep(at + timedelta(hours=1), capture) == 0
    assert check_again(acme, at + timedelta(hours=1), capture) == 0
    assert (len(slack.received), len(teams.received), len(alert_emails())) == (2, 2, 2)
    assert not any(m.to == ["billing@acme.test"] for m in mail.outbox)


def test_one_crossing_over_both_thresholds_announces_the_highest_only(acme, usage, slack, teams):
    # when: 250.00 at once
    usage.send(NOV_10, ("gpt-4o", 50_000_000))

    # then: 80 % announced, 50 % recorded with it so that it never fires later
    assert budget_keys(acme) == ["budget:50", "budget:80"]
    assert Alert.objects.get(key="budget:50").payload["announced_with"] == "budget:80"
    assert [m["blocks"][0]["text"]["text"] for m in slack.accepted] == [
        "You have used 83% of your budget"
    ]
    assert len(teams.accepted) == 1
    assert ChannelMessage.objects.filter(alert__key="budget:50").count() == 0


def test_a_budget_that_only_alerts_alerts_at_100_percent_unlisted(
    s34_plan, slack, usage, django_capture_on_commit_callbacks
):
    customer = make_customer(s34_plan)
    limits_set(
        customer=customer,
        document={
            "budget": {"amount": "150.00", "action": "alert"},
            "channels": [{"kind": "slack", "url": slack.url()}],
        },
        by="API key ops",
        via="api",
        now=NOV_1,
    )

    usage.send(NOV_10, ("gpt-4o", 34_000_000))

    assert budget_keys(customer) == ["budget:100"]
    (posted,) = slack.accepted
    assert posted["blocks"][0]["text"]["text"] == f"Your budget of 150.00{NBSP}USD is reached"
    assert posted["blocks"][2]["fields"][2]["text"] == f"*Left*\n0.00{NBSP}USD"
    assert posted["blocks"][3]["elements"][0]["text"] == (
        "Usage goes on past the budget: this budget only alerts."
    )


def test_a_budget_threshold_alerts_when_the_spend_reaches_it_not_only_once_past_it(
    s34_plan, slack, usage, django_capture_on_commit_callbacks
):
    customer = make_customer(s34_plan)
    limits_set(
        customer=customer,
        document={
            "budget": {"amount": "150.00", "action": "alert"},
            "alert_thresholds": ["50"],
            "channels": [{"kind": "slack", "url": slack.url()}],
        },
        by="API key ops",
        via="api",
        now=NOV_1,
    )

    # when: 15M gpt-4o tokens at 5.00 per 1M, 75.00: exactly half the budget
    usage.send(NOV_10, ("gpt-4o", 15_000_000))
    # then: the 50 % threshold alerts, the budget not yet
    assert budget_keys(customer) == ["budget:50"]

    # when: 15M more, 150.00: exactly the budget
    usage.send(NOV_10 + timedelta(hours=1), ("gpt-4o", 15_000_000))
    check_again(customer, NOV_10 + timedelta(hours=1), django_capture_on_commit_callbacks)
    # then: the budget's 100 % alerts, at 0.00 left
    assert budget_keys(customer) == ["budget:50", "budget:100"]
    assert slack.accepted[-1]["blocks"][0]["text"]["text"] == (
        f"Your budget of 150.00{NBSP}USD is reached"
    )
    assert slack.accepted[-1]["blocks"][2]["fields"][2]["text"] == f"*Left*\n0.00{NBSP}USD"


def test_a_receiver_answering_500_is_retried_by_the_sweep_then_sent_once(
    acme, usage, slack, teams, delayed_sends, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    # given: Slack answers 500 once
    slack.statuses = [500]

    # when: 170.00 is reached
    usage.send(T1, ("gpt-4o", 26_000_000), ("o3", 2_000_000))

    # then: one failed attempt, its retry a row due in 30 s
    message = ChannelMessage.objects.get(kind="slack")
    assert (
        message.status,
        message.attempts,
        message.last_status_code,
        message.last_error,
        message.next_attempt_at,
    ) == ("pending", 1, 500, "receiver answered HTTP 500", T1 + timedelta(seconds=30))
    assert [p.answered for p in slack.received] == [500]
    assert len(teams.accepted) == 1

    # when: the beat sweeps before it is due, then when due, then again
    assert sweep(T1 + timedelta(seconds=29), capture) == 0
    assert len(slack.received) == 1
    assert sweep(T1 + timedelta(seconds=30), capture) == 1
    assert sweep(T1 + timedelta(minutes=1), capture) == 0
    assert check_again(acme, T1 + timedelta(minutes=2), capture) == 0

    # then: sent once more, the same message, and nothing waited in the broker
    assert [p.answered for p in slack.received] == [500, 200]
    assert slack.received[0].body == slack.received[1].body
    message.refresh_from_db()
    assert (message.status, message.attempts, message.delivered_at, message.last_error) == (
        "succeeded",
        2,
        T1 + timedelta(seconds=30),
        "",
    )
    assert len(teams.received) == 1
    assert delayed_sends == []


def test_a_receiver_that_never_recovers_fails_after_the_webhooks_attempts(
    acme, usage, slack, teams, django_capture_on_commit_callbacks
):
    slack.statuses = [503] * 20
    usage.send(T1, ("gpt-4o", 34_000_000))

    at = T1
    for _ in range(7):
        at = ChannelMessage.objects.get(kind="slack").next_attempt_at
        assert sweep(at, django_capture_on_commit_callbacks) == 1

    message = ChannelMessage.objects.get(kind="slack")
    assert (message.status, message.attempts, message.next_attempt_at) == ("failed", 8, None)
    # 30 s, then 1, 2, 4, 8, 16 and 32 minutes apart, as webhooks
    assert at - T1 == timedelta(seconds=30) + timedelta(minutes=63)
    assert sweep(at + timedelta(days=1), django_capture_on_commit_callbacks) == 0
    assert len(slack.received) == 8


@pytest.mark.parametrize(
    ("url", "allowed", "error"),
    [
        ("http://127.0.0.1:{port}/hook", [], "refused: must be an https:// URL"),
        ("https://127.0.0.1:{port}/hook", [], "refused: address 127.0.0.1 is not public"),
        (
            "https://localhost:{port}/hook",
            [],
            "refused: the host resolves to an address that is not public",
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            ["127.0.0.1"],
            "refused: address 169.254.169.254 is not public",
        ),
    ],
)
def test_a_channel_to_a_private_address_is_refused_at_send(
    s34_plan, slack, usage, settings, url, allowed, error
):
    # given: a channel that passed when it was set (its host allowed then, or its DNS
    # public then), stored as limits_set stores it
    customer = make_customer(s34_plan)
    Customer.objects.filter(pk=customer.pk).update(
        limits={
            "budget": {"amount": "300.00", "action": "stop"},
            "alert_thresholds": ["50"],
            "channels": [{"kind": "slack", "url": url.format(port=slack.port)}],
        }
    )
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = allowed

    # when
    usage.send(T1, ("gpt-4o", 34_000_000))

    # then: a failed attempt with a fixed text, retried later; nothing reached
    message = ChannelMessage.objects.get()
    assert (message.status, message.attempts, message.last_status_code, message.last_error) == (
        "pending",
        1,
        None,
        error,
    )
    assert slack.connections == 0


def test_limits_refuse_a_channel_to_a_private_address(s34_plan, slack, settings):
    customer = make_customer(s34_plan)
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = []

    for url in (slack.url(), "https://169.254.169.254/latest"):
        with pytest.raises(InvalidRequest) as refused:
            limits_set(
                customer=customer,
                document={"channels": [{"kind": "teams", "url": url}]},
                by="x",
                via="api",
                now=NOV_1,
            )
        assert list(refused.value.fields) == ["channels.0.url"]

    customer.refresh_from_db()
    assert customer.limits == {}
    assert ChannelMessage.objects.count() == 0


def test_a_redirect_is_not_followed(acme, usage, slack, teams):
    slack.statuses = [302]

    usage.send(T1, ("gpt-4o", 34_000_000))

    message = ChannelMessage.objects.get(kind="slack")
    assert (message.status, message.last_status_code, message.last_error) == (
        "pending",
        302,
        "receiver answered HTTP 302",
    )
    assert len(slack.received) == 1


def test_a_discord_channel_gets_content_and_an_embed_that_mentions_nobody(s34_plan, slack, usage):
    customer = make_customer(s34_plan)
    Customer.objects.filter(pk=customer.pk).update(name="Acme @everyone <!channel>")
    customer.refresh_from_db()
    limits_set(
        customer=customer,
        document={
            "budget": {"amount": "300.00"},
            "alert_thresholds": ["50"],
            "channels": [{"kind": "discord", "url": slack.url("/api/webhooks/1/x")}],
        },
        by="x",
        via="api",
        now=NOV_1,
    )

    usage.send(T1, ("gpt-4o", 34_000_000))

    url = portal_link(customer, T1)
    assert slack.accepted == [
        {
            "content": "You have used 56% of your budget",
            "embeds": [
                {
                    "title": "You have used 56% of your budget",
                    "description": f"Acme @everyone <!channel> has spent 170.00{NBSP}USD (56%) "
                    f"of its 300.00{NBSP}USD budget in the period 1 Nov \u2013 30 Nov 2026 "
                    f"(UTC): 130.00{NBSP}USD left.\n\nUsage that would go past the budget is "
                    "refused until the next period.",
                    "color": 0xE8A317,
                    "fields": [
                        {"name": "Spent", "value": f"170.00{NBSP}USD", "inline": True},
                        {"name": "Budget", "value": f"300.00{NBSP}USD", "inline": True},
                        {"name": "Left", "value": f"130.00{NBSP}USD", "inline": True},
                        {"name": "Alert threshold", "value": "50%", "inline": True},
                        {
                            "name": "Period",
                            "value": "1 Nov \u2013 30 Nov 2026 (UTC)",
                            "inline": True,
                        },
                    ],
                    "url": url,
                }
            ],
            "allowed_mentions": {"parse": []},
        }
    ]


def test_slack_reads_a_customers_name_as_text(s34_plan, slack, usage):
    customer = make_customer(s34_plan)
    Customer.objects.filter(pk=customer.pk).update(name="<!channel> & <https://x.test|Acme>")
    customer.refresh_from_db()
    limits_set(
        customer=customer,
        document={
            "budget": {"amount": "300.00"},
            "alert_thresholds": ["50"],
            "channels": [{"kind": "slack", "url": slack.url()}],
        },
        by="x",
        via="api",
        now=NOV_1,
    )

    usage.send(T1, ("gpt-4o", 34_000_000))

    (posted,) = slack.accepted
    assert posted["blocks"][1]["text"]["text"].startswith(
        "&lt;!channel&gt; &amp; &lt;https://x.test|Acme&gt; has spent"
    )
    assert posted["text"].startswith("You have used 56% of your budget\n&lt;!channel&gt;")


def test_a_french_customer_reads_its_alerts_in_french(
    s34_plan, slack, teams, usage, django_capture_on_commit_callbacks
):
    customer = make_customer(s34_plan, locale="fr")
    limits_set(
        customer=customer,
        document=s34_limits(slack, teams),
        by="Jeanne",
        via="portal",
        now=NOV_1,
    )

    usage.send(T1, ("gpt-4o", 26_000_000), ("o3", 2_000_000))

    # then: Slack, Teams and the e-mail in French, figures and days as the French write them
    summary = (
        f"Acme Inc a dépensé 170,00{NBSP}USD (56{NBSP}%) de son budget de 300,00{NBSP}USD sur la "
        f"période 1 nov. \u2013 30 nov. 2026 (UTC) : il reste 130,00{NBSP}USD."
    )
    title = f"Vous avez utilisé 56{NBSP}% de votre budget"
    (posted,) = slack.accepted
    assert posted["text"] == f"{title}\n{summary}"
    assert [f["text"] for f in posted["blocks"][2]["fields"]] == [
        f"*Dépensé*\n170,00{NBSP}USD",
        f"*Budget*\n300,00{NBSP}USD",
        f"*Restant*\n130,00{NBSP}USD",
        f"*Seuil d'alerte*\n50{NBSP}%",
        "*Période*\n1 nov. \u2013 30 nov. 2026 (UTC)",
    ]
    assert posted["blocks"][4]["elements"][0]["text"]["text"] == (
        "Voir votre consommation et vos limites"
    )
    (card,) = teams.accepted
    body = card["attachments"][0]["content"]["body"]
    assert [body[0]["text"], body[1]["text"], body[3]["text"]] == [
        title,
        summary,
        "L'utilisation qui dépasserait le budget est refusée jusqu'à la prochaine période.",
    ]
    (email,) = alert_emails()
    assert email.subject == title
    assert email.body == (
        f"Bonjour,\n\n{summary}\n\n"
        f"Dépensé : 170,00{NBSP}USD\n"
        f"Budget : 300,00{NBSP}USD\n"
        f"Restant : 130,00{NBSP}USD\n"
        f"Seuil d'alerte : 50{NBSP}%\n"
        "Période : 1 nov. \u2013 30 nov. 2026 (UTC)\n\n"
        "L'utilisation qui dépasserait le budget est refusée jusqu'à la prochaine période.\n\n"
        f"Voir votre consommation et vos limites : {portal_link(customer, T1)}\n"
    )


# The e-mail of a change of the limits


def change_limits(customer, document, at, capture=None, *, by="Jane (CTO)", via="portal"):
    """limits_set at `at`, and what its commit enqueues run (unless `capture` is None:
    the broker lost the task)."""
    with time_machine.travel(at, tick=False):
        if capture is None:
            return limits_set(customer=customer, document=document, by=by, via=via, now=at)
        with capture(execute=True):
            return limits_set(customer=customer, document=document, by=by, via=via, now=at)


def test_a_change_of_the_limits_is_emailed_to_the_billing_contact_once(
    acme, slack, teams, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    # the acme fixture set them (from nothing) in the portal
    (first,) = mail.outbox
    assert (first.to, first.subject) == (["billing@acme.test"], "Your usage limits were changed")
    assert first.body == (
        "Hello,\n\n"
        "Jane (CTO) changed the usage limits of Acme Inc in the portal on 1 Nov 2026, "
        "01:00 UTC:\n\n"
        f"- Budget set to 300.00{NBSP}USD (usage refused beyond it)\n"
        f"- Cap added on LLM tokens, model o3: 50.00{NBSP}USD\n"
        "- Alert thresholds set to 50%, 80%\n"
        "- Alerts now also sent to Slack (#ops)\n"
        "- Alerts now also sent to Microsoft Teams (127.0.0.1)\n"
        "- Alerts now also sent to ops@acme.test\n\n"
        f"See your limits and what was spent: {portal_link(acme, SET_AT)}\n"
    )

    # when: the budget alone changes, through the API
    document = s34_limits(slack, teams) | {"budget": {"amount": "250.00", "action": "alert"}}
    change = change_limits(acme, document, NOV_10, capture, by="API key ops", via="api")

    # then: that change, once, and the sweep sends nothing again
    assert mail.outbox[1].body == (
        "Hello,\n\n"
        "API key ops changed the usage limits of Acme Inc through the API on 10 Nov 2026, "
        "12:00 UTC:\n\n"
        f"- Budget changed from 300.00{NBSP}USD to 250.00{NBSP}USD\n"
        "- When the budget is reached: usage refused beyond it, now alert only\n\n"
        f"See your limits and what was spent: {portal_link(acme, NOV_10)}\n"
    )
    assert sweep(NOV_10 + timedelta(hours=1), capture) == 0
    assert len(mail.outbox) == 2
    message = ChannelMessage.objects.get(limit_change=change)
    assert (message.kind, message.target, message.status, message.attempts) == (
        "email",
        "billing@acme.test",
        "succeeded",
        1,
    )
    # a webhook URL is a secret: never written in the e-mail
    assert "/services/T0/B0/x" not in first.body and "/workflows/1" not in first.body


def test_a_french_customer_reads_the_change_in_french(
    s34_plan, slack, teams, django_capture_on_commit_callbacks
):
    customer = make_customer(s34_plan, locale="fr", spend_limit="5000.00")
    change_limits(customer, {"budget": {"amount": "300.00"}}, NOV_1)
    mail.outbox.clear()

    change_limits(
        customer,
        {"budget": {"amount": "1234.50"}, "alert_thresholds": ["80"]},
        NOV_10,
        django_capture_on_commit_callbacks,
        via="admin",
        by="support@seller.test",
    )

    (email,) = mail.outbox
    assert email.subject == "Vos limites de consommation ont été modifiées"
    assert email.body == (
        "Bonjour,\n\n"
        "support@seller.test a modifié les limites de consommation de Acme Inc dans "
        "l'administration le 10 nov. 2026, 12:00 UTC :\n\n"
        f"- Budget modifié de 300,00{NBSP}USD à 1{NBSP}234,50{NBSP}USD\n"
        f"- Seuils d\u2019alerte fixés à 80{NBSP}%\n\n"
        f"Voir vos limites et ce qui a été dépensé : {portal_link(customer, NOV_10)}\n"
    )


def test_a_change_whose_task_was_lost_is_emailed_by_the_sweep(
    s34_plan, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    customer = make_customer(s34_plan)
    change = change_limits(customer, {"budget": {"amount": "300.00"}}, NOV_10)
    assert mail.outbox == []

    assert sweep(NOV_10 + timedelta(seconds=59), capture) == 0
    assert mail.outbox == []
    sweep(NOV_10 + timedelta(minutes=1), capture)
    sweep(NOV_10 + timedelta(minutes=2), capture)

    assert [m.subject for m in mail.outbox] == ["Your usage limits were changed"]
    assert ChannelMessage.objects.get().limit_change == change


def test_a_customer_without_an_address_is_not_emailed_its_changes(
    s34_plan, django_capture_on_commit_callbacks
):
    customer = make_customer(s34_plan, email="")
    change_limits(
        customer, {"budget": {"amount": "300.00"}}, NOV_10, django_capture_on_commit_callbacks
    )
    sweep(NOV_10 + timedelta(minutes=5), django_capture_on_commit_callbacks)

    assert mail.outbox == []
    assert ChannelMessage.objects.count() == 0


# The admin, the beat, the queues


def test_the_admin_lists_the_messages_and_retries_a_failed_one_now(
    admin_client, acme, usage, slack, teams, django_capture_on_commit_callbacks
):
    # given: Slack was down for every attempt
    slack.statuses = [500]
    usage.send(T1, ("gpt-4o", 34_000_000))
    ChannelMessage.objects.filter(kind="slack").update(status="failed", next_attempt_at=None)
    failed = ChannelMessage.objects.get(kind="slack")
    alert = Alert.objects.get()

    # then: the pages load, read-only
    for url in [
        "/admin/billing/channelmessage/",
        "/admin/billing/channelmessage/?status__exact=failed",
        "/admin/billing/channelmessage/?kind__exact=teams",
        "/admin/billing/channelmessage/?q=acme",
        f"/admin/billing/channelmessage/{failed.pk}/change/",
        f"/admin/billing/alert/{alert.pk}/change/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/billing/channelmessage/add/").status_code == 403
    listing = admin_client.get("/admin/billing/channelmessage/").content.decode()
    assert "receiver answered HTTP 500" in listing and "budget:50" in listing
    # the list names a webhook channel, never its URL (the customer's secret)
    assert "/services/T0/B0/x" not in listing

    # when: ops retries the failed one and a succeeded one
    sent = ChannelMessage.objects.get(kind="teams")
    later = T1 + timedelta(days=1)
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/billing/channelmessage/",
            {"action": "retry_now", "_selected_action": [failed.pk, sent.pk]},
            follow=True,
        )

    # then: the failed one is sent, the other left alone
    assert "1 message(s) sent again; 1 already succeeded, left alone" in response.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.delivered_at) == ("succeeded", 2, later)
    assert [p.answered for p in slack.received] == [500, 200]
    assert len(teams.received) == 1


def test_the_sweep_runs_every_minute_and_messages_go_on_the_urgent_queue(db):
    assert scheduled("Send overdue messages to customers' channels") == (
        "billing.tasks.retry_due_channel_messages",
        1,
        "minutes",
    )
    app.loader.import_default_modules()
    assert app.amqp.router.route({}, "billing.tasks.deliver_channel_message")["queue"].name == (
        URGENT_QUEUE
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_a_message_once(transactional_db, settings):
    # given: a Slack message due, and a receiver
    settings.BILLING_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = ChannelReceiver().start()
    customer = CustomerFactory(external_id="acme", name="Acme Inc")
    alert = Alert.objects.create(
        customer=customer,
        kind="budget_threshold",
        period_start=NOV_1,
        key="budget:50",
        payload={},
        created_at=NOV_10,
    )
    message = ChannelMessage.objects.create(
        customer=customer,
        alert=alert,
        kind="slack",
        target=receiver.url(),
        target_digest=channels.target_digest(receiver.url()),
        body='{"text": "hi"}',
        next_attempt_at=NOV_10,
        created_at=NOV_10,
    )
    threads = 6
    barrier = threading.Barrier(threads)
    results, errors = [], []

    def send():
        try:
            barrier.wait()
            sent = channels.channel_message_send(message=message, now=NOV_10 + timedelta(minutes=2))
            results.append(sent.status if sent else None)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=send) for _ in range(threads)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        receiver.stop()

    # then: one attempt between them
    assert errors == []
    assert sorted(results, key=str) == [*[None] * (threads - 1), "succeeded"]
    assert len(receiver.received) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("succeeded", 1)


def test_the_spend_is_read_once_for_the_spend_limit_and_the_budget(
    acme, usage, monkeypatch, django_capture_on_commit_callbacks
):
    # given: the spend limit (500.00) and the budget's thresholds both still to fire
    from billing.usage import priced

    statements = []
    build = priced.spend_statement
    monkeypatch.setattr(
        priced, "spend_statement", lambda **kw: statements.append(kw) or build(**kw)
    )

    # when: a check after ingestion
    usage.send(T1, ("gpt-4o", 34_000_000))

    # then: one statement between them
    assert len(statements) == 1
    assert budget_keys(acme) == ["budget:50"]


def test_the_next_period_arms_the_budget_alerts_again(acme, usage, slack, teams):
    usage.send(T1, ("gpt-4o", 34_000_000))
    periods_close(as_of=DEC_1)

    usage.send(DEC_1 + timedelta(days=1), ("gpt-4o", 34_000_000))

    assert list(
        Alert.objects.filter(kind="budget_threshold")
        .order_by("id")
        .values_list("period_start", "key")
    ) == [(NOV_1, "budget:50"), (DEC_1, "budget:50")]
    assert [m["blocks"][2]["fields"][4]["text"] for m in slack.accepted] == [
        "*Period*\n1 Nov \u2013 30 Nov 2026 (UTC)",
        "*Period*\n1 Dec \u2013 31 Dec 2026 (UTC)",
    ]


PAYLOAD = {
    "threshold": "80",
    "percentage": "93",
    "spend": "1234.50",
    "budget": "1300.00",
    "remaining": "65.50",
    "currency": "EUR",
    "action": "alert",
    "portal_url": "https://billing.example/portal/t/",
    "period_start": "2026-11-01T00:00:00Z",
    "period_end": "2026-12-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("locale", "title", "spent", "then"),
    [
        ("en", "You have used 93% of your budget", f"1,234.50{NBSP}EUR", "Usage goes on"),
        ("fr", f"Vous avez utilisé 93{NBSP}% de votre budget", f"1{NBSP}234,50{NBSP}EUR", "L'util"),
        ("de", f"Sie haben 93{NBSP}% Ihres Budgets verbraucht", f"1.234,50{NBSP}EUR", "Die Nutz"),
        ("es", f"Ha utilizado el 93{NBSP}% de su presupuesto", f"1.234,50{NBSP}EUR", "El uso"),
        ("ja", "予算の 93% を使用しました", f"1,234.50{NBSP}EUR", "予算を超えても"),
    ],
)
def test_each_language_writes_the_budget_alert_in_its_words(locale, title, spent, then):
    write = CustomerText(locale, ZoneInfo("UTC"))

    words = budget_words(write=write, data=PAYLOAD, customer_name="Acme")

    assert words.title == title
    assert words.facts[0][1] == spent
    assert spent in words.summary and words.then.startswith(then)
    assert email_text(words)[0] == title

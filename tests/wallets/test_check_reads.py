"""What the check and the entitlements read cost in queries (billing.usage.check
live_read): one query reads the customer, its live subscription and, as the
request needs, the wallets' usable balances, the credits an auto top-up would add,
or whether the feature asked exists; the usage read is the only other. The
answers are those of test_check.py and test_entitlements.py; here, that they come
from that many queries, and that reading the body first changed no precedence
(an unknown customer is a 404 whatever the body)."""

import json
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.models import CreditPack
from tests.factories import hard_cap, published_version, subscribe
from wallets.ledger import credits_grant
from wallets.purchases import auto_top_up_set, money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def call(api, method: str, path: str, body: dict | str | None = None):
    """The request at NOW, with the queries it sent when made a second time: as
    on every request but a process's first, the key and the meters are known to
    the process then (their caches). Checks write nothing, so both answer alike."""
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    with time_machine.travel(NOW, tick=False):
        first = api.generic(method, path, data or "", content_type="application/json")
        with CaptureQueriesContext(connection) as queries:
            response = api.generic(method, path, data or "", content_type="application/json")
    assert (response.status_code, response.content) == (first.status_code, first.content)
    # A statement psycopg runs prepared has no text to show (None).
    return response, [(q["sql"] or "(prepared)")[:150] for q in queries.captured_queries]


def check(api, body, customer: str = "acme"):
    return call(api, "POST", f"/api/v1/customers/{customer}/check", body)


@pytest.fixture
def features(catalog, acme):
    """acme on `featured`: sso granted as false, max_projects 5; audit_log exists
    and is not granted."""
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    feature_create(code="max_projects", name="Projects", kind="config")
    feature_create(code="audit_log", name="Audit log", kind="boolean")
    published_version(
        "featured",
        charges=(hard_cap("sms", 500),),
        features=(FeatureGrant("sso", False), FeatureGrant("max_projects", 5)),
    )
    subscribe(acme, "featured", NOV_1)


@pytest.mark.parametrize(
    ("feature", "allowed", "reason", "message", "value"),
    [
        ("max_projects", True, "ok", "allowed", 5),
        ("sso", False, "feature_not_in_plan", "the customer's plan grants 'sso' as false", False),
        (
            "audit_log",
            False,
            "feature_not_in_plan",
            "the customer's plan does not grant this feature",
            None,
        ),
        ("nope", False, "feature_not_in_plan", "there is no feature 'nope'", None),
    ],
    ids=["granted", "granted as false", "not granted", "no such feature"],
)
def test_a_feature_check_is_one_query(api, features, feature, allowed, reason, message, value):
    response, queries = check(api, {"feature": feature})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["allowed"], body["reason"], body["message"], body["value"]) == (
        allowed,
        reason,
        message,
        value,
    )
    assert len(queries) == 1, queries


def test_a_feature_check_without_a_subscription_is_one_query(api, catalog, acme):
    response, queries = check(api, {"feature": "sso"})

    assert response.json()["reason"] == "no_subscription"
    assert len(queries) == 1, queries


def test_a_credits_check_short_of_credits_with_an_auto_top_up_is_two_queries(api, catalog, acme):
    # given: 1 credit left, and an auto top-up of a 100-credit pack
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(1), now=NOV_1)
    pack = CreditPack.objects.get(code="runs_100")
    auto_top_up_set(customer=acme, enabled=True, threshold=D(20), pack=pack)

    # when: 10 runs, 20 credits, asked
    response, queries = check(api, {"meter": "agent_runs", "quantity": "10"})

    # then: allowed on the pack the top-up buys; the subscription with the wallets,
    # then the usage
    body = response.json()
    assert (body["allowed"], body["reason"], body["balance"]) == (True, "ok", "1")
    assert len(queries) == 2, queries


def test_a_balance_check_is_two_queries(api, catalog, acme):
    subscribe(acme, "prepaid", NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)

    response, queries = check(api, {"meter": "gpt4o_input_tokens", "quantity": "1000"})

    body = response.json()
    assert (body["allowed"], body["balance"], body["remaining"]) == (True, "10.00", "4000000")
    assert len(queries) == 2, queries


def test_entitlements_with_credits_short_and_an_auto_top_up_are_two_queries(api, catalog, acme):
    subscribe(acme, "runner", NOV_1)
    credits_grant(customer=acme, credits=D(1), now=NOV_1)
    pack = CreditPack.objects.get(code="runs_100")
    auto_top_up_set(customer=acme, enabled=True, threshold=D(20), pack=pack)

    response, queries = call(api, "GET", "/api/v1/customers/acme/entitlements")

    meter = response.json()["meters"]["agent_runs"]
    # one run (2 credits) is more than the 1 left, but the top-up pays for it
    assert (meter["balance"], meter["remaining"], meter["allowed"]) == ("1", "0.5", True)
    assert len(queries) == 2, queries


@pytest.mark.parametrize(
    "body",
    ['{"meter": "sms", "quantity": 1', json.dumps({"quantity": "1"}), "null", ""],
    ids=["malformed", "no meter", "null", "empty"],
)
def test_an_unknown_customer_is_a_404_whatever_the_body(api, catalog, body):
    response, _ = check(api, body, customer="nobody")

    assert response.status_code == 404, response.content
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"meter": "sms", "quantity": 1', "malformed JSON"),
        ("null", "No data provided"),
        (json.dumps({"meter": "sms", "feature": "sso"}), "give a meter"),
        (json.dumps({"feature": "sso", "quantity": "2"}), "a feature check takes no quantity"),
    ],
    ids=["malformed", "null", "both", "feature with a quantity"],
)
def test_a_known_customer_with_a_bad_body_is_a_400(api, catalog, acme, body, message):
    subscribe(acme, "sms_starter", NOV_1)

    response, _ = check(api, body)

    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["message"]


# Read ahead (common.rawsql.read_ahead): a customer's meter check sends the
# same statements every time, so from its third on, the usage read travels with
# the customer's in one round trip. Its rows are read in the request itself: what
# was ingested in between counts, and a statement read ahead for a period that
# has ended is not used for the next.


def checked(api, at: datetime, meter: str = "sms") -> dict:
    with time_machine.travel(at, tick=False):
        response = api.post(
            "/api/v1/customers/acme/check", {"meter": meter, "quantity": 1}, format="json"
        )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.postgres
def test_a_repeated_check_reads_its_usage_ahead_and_counts_what_came_in_between(
    api, catalog, acme, sent_ahead
):
    from tests.wallets.support import ingest, repeat

    # given: a period starting at 00:30, so that a check reads the rollups and the
    # partial first hour's counts; 10 messages sent on the 10th
    subscribe(acme, "sms_starter", NOV_1.replace(minute=30))
    ingest(repeat(10, "sms.sent", NOW, prefix="a"), now=NOW)

    # when: two checks, then 3 messages more (1 in the partial first hour), a third
    first, second = checked(api, NOW), checked(api, NOW)
    late = NOV_1.replace(minute=45)
    ingest(
        repeat(2, "sms.sent", NOW, prefix="b") + repeat(1, "sms.sent", late, prefix="c"), now=NOW
    )
    third = checked(api, NOW)

    # then: the first two sent each statement alone; the third sent the usage read
    # (the whole hours' sums and the partial hour's counts) with the customer's,
    # and counted all 13
    assert (first["used"], second["used"], third["used"]) == ("10", "10", "13")
    assert third["remaining"] == "487"
    assert len(sent_ahead) == 1, sent_ahead
    assert sent_ahead[0] == [
        "SELECT c.id, c.external_",
        "SELECT meter_id, SUM(eve",
        "SELECT edge, meter_id, S",
    ]


@pytest.mark.postgres
def test_a_check_reads_the_new_period_when_the_one_read_ahead_has_ended(
    api, catalog, acme, sent_ahead
):
    from tests.wallets.support import ingest, repeat

    # given: 20 messages in November, checked three times on its last evening
    subscribe(acme, "sms_starter", NOV_1)
    evening = datetime(2026, 11, 30, 20, tzinfo=UTC)
    ingest(repeat(20, "sms.sent", evening, prefix="nov"), now=evening)
    assert [checked(api, evening)["used"] for _ in range(3)] == ["20", "20", "20"]
    assert len(sent_ahead) == 1

    # when: 2 messages on December 1st, checked before any close has run
    december = datetime(2026, 12, 1, 9, tzinfo=UTC)
    ingest(repeat(2, "sms.sent", december, prefix="dec"), now=december)
    answer = checked(api, december)

    # then: November's usage read went ahead of the customer's and was not used: the
    # check counts December's 2
    assert len(sent_ahead) == 2
    assert (answer["used"], answer["period_start"]) == ("2", "2026-12-01T00:00:00Z")


def test_a_card_row_in_tiers_reads_its_own_usage_not_the_meters(api, catalog, acme):
    # A row in tiers counts its own usage so far: the meter's total is not read.
    from plans.pricing import GRADUATED, PricingSpec, TierSpec
    from plans.rate_card_pricing import RateSpec
    from plans.validation import ChargeSpec
    from tests.factories import llm_tokens_meter

    llm_tokens_meter()
    tiers = (TierSpec(D(1000), D("0.01")), TierSpec(None, D("0.005")))
    gpt_input = (("model", "gpt-4o"), ("token_type", "input"))
    card = ChargeSpec(
        "llm_tokens",
        "balance",
        price_by=("model", "token_type"),
        rates=(
            RateSpec(when=gpt_input, pricing=PricingSpec(scheme=GRADUATED, tiers=tiers)),
            RateSpec(when=(), pricing=PricingSpec(scheme=GRADUATED, tiers=tiers)),
        ),
    )
    published_version("tokens", charges=(card,))
    subscribe(acme, "tokens", NOV_1)
    money_top_up(customer=acme, amount=D("10.00"), currency="USD", now=NOV_1)
    properties = {"model": "gpt-4o", "token_type": "input"}

    response, queries = check(
        api, {"meter": "llm_tokens", "quantity": "1000", "properties": properties}
    )

    body = response.json()
    assert (body["allowed"], body["balance"], body["used"]) == (True, "10.00", "0")
    # the customer, its subscription and wallets; then the row's usage
    assert len(queries) == 2, queries

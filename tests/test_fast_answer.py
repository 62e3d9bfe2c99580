"""`check` and `entitlements` give their fast answer (billing.api.fast_answer) ahead of
DRF's request: every request here is sent twice, through the views as they are
and with the fast answer turned off (DRF's dispatch, as before), and the two
answers must be the same to the byte: status, every header, body. The fast
answer gives the 200s and hands everything else to DRF, which then answers; a
request over the rate limit is counted once either way. Both are routed by
config/urls.py and pass through every middleware in MIDDLEWARE."""

import json
from contextlib import nullcontext
from datetime import UTC, datetime
from decimal import Decimal as D
from unittest import mock

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, ProgrammingError
from django.test import override_settings
from rest_framework.test import APIClient

from billing.api.entitlements import EntitlementsApi
from billing.api.fast_answer import FastAnswerApi
from billing.api.usage import CheckApi
from common.throttling import key_leases, window_count
from customers.api_keys import api_key_revoke, hash_secret
from customers.models import ApiKey, Customer
from plans.features import feature_create
from tests.factories import ApiKeyFactory, CustomerFactory, subscribe
from tests.test_outage import database_fails
from tests.wallets.support import build_catalog, event, ingest, repeat
from wallets.ledger import credits_grant
from wallets.purchases import money_top_up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("keys")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def made_keys() -> dict[str, str]:
    """Secrets by name: every scope, read only, events:write only, admin only, and
    a revoked key."""
    made = {
        "all": ApiKeyFactory(name="all"),
        "read": ApiKeyFactory(name="read", scopes=["read"]),
        "events": ApiKeyFactory(name="events", scopes=["events:write"]),
        "admin": ApiKeyFactory(name="admin", scopes=["admin"]),
        "revoked": ApiKeyFactory(name="revoked"),
    }
    api_key_revoke(key=made["revoked"])
    secrets = {name: key.secret for name, key in made.items()}
    # api_key_create reads no scopes as all of them; the admin can save an empty list.
    secrets["none"] = "sk_test_no_scope"
    ApiKey.objects.create(
        name="none", prefix="sk_test_no", secret_hash=hash_secret(secrets["none"]), scopes=[]
    )
    return secrets


def made_customers(keys: dict[str, str]) -> None:
    """On tests.wallets.support.build_catalog (one plan per consumption model), one
    customer per consumption model, a soft spend limit, a plan granting features,
    and one customer with no subscription."""
    build_catalog()
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {keys['all']}")
    feature_create(code="sso", name="Single sign-on", kind="boolean")
    feature_create(code="models", name="Models", kind="config")
    response = admin.post(
        "/api/v1/plans",
        {
            "code": "pro",
            "name": "Pro",
            "currency": "USD",
            "base_fee": "10.00",
            "publish": True,
            "charges": [{"meter": "prompts", "model": "hard_cap", "included_units": "1000"}],
            "features": [
                {"feature": "sso", "value": True},
                {"feature": "models", "value": ["gpt-4o", "o1"]},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    plans = {
        "capped": "sms_starter",
        "overage": "ai_assistant",
        "credits": "runner",
        "money": "prepaid",
        "spend": "ai_assistant",
        "pro": "pro",
    }
    made = {}
    for name, plan in plans.items():
        made[name] = CustomerFactory(external_id=name)
        subscribe(made[name], plan, NOV_1)
    CustomerFactory(external_id="idle")
    Customer.objects.filter(external_id="spend").update(
        spend_limit=D("20.00"), spend_limit_mode="soft"
    )
    credits_grant(customer=made["credits"], credits=D(10), now=NOV_1)
    money_top_up(customer=made["money"], amount=D("5.00"), currency="USD", now=NOV_1)
    ingest(
        [
            *repeat(40, "sms.sent", NOW, prefix="s", customer="capped"),
            *repeat(250, "prompt", NOW, prefix="o", customer="overage"),
            *repeat(3, "agent.run", NOW, prefix="c", customer="credits"),
            *repeat(210, "prompt", NOW, prefix="p", customer="spend"),
            event("m1", "llm.completion", NOW, customer="money", input_tokens=400_000),
        ],
        now=NOW,
    )


def made_world() -> dict[str, str]:
    keys = made_keys()
    made_customers(keys)
    return keys


@pytest.fixture(scope="module")
def _world_once(module_transaction):
    return module_transaction.once(made_world, "keys")


@pytest.fixture
def keys(_world_once, db):
    """The keys' secrets by name (made_keys) and the customers (made_customers), made
    once for this module (tests/shared_rows.py)."""
    return _world_once.for_test()


@pytest.fixture
def customers(keys):
    """The customers of made_customers (made with the keys)."""


def send(*, fast: bool, secret: str | None, method: str, path: str, body=None, **extra):
    """One request to the views as they are, or with their fast answer turned off
    (DRF's dispatch answers everything); the response."""
    off = nullcontext() if fast else mock.patch.object(FastAnswerApi, "fast_response", no_fast)
    # One request id for both, which the answer carries back (config.request_log).
    extra.setdefault("HTTP_X_REQUEST_ID", "fast-answer-test")
    with off, time_machine.travel(NOW, tick=False):
        client = APIClient(raise_request_exception=False)
        if secret is not None:
            client.credentials(HTTP_AUTHORIZATION=secret)
        key_leases.clear()
        if body is None:
            return client.generic(method, path, **extra)
        if isinstance(body, dict):
            body = json.dumps(body)
        extra.setdefault("content_type", "application/json")
        return client.generic(
            method, path, body.encode() if isinstance(body, str) else body, **extra
        )


def no_fast(self, request, kwargs):
    return None


ANSWERED_HERE: list = []


@pytest.fixture(autouse=True)
def fast_answers(monkeypatch):
    """Records each request given the fast answer (not left to DRF)."""
    respond = FastAnswerApi.fast_response

    def spy(self, request, kwargs):
        response = respond(self, request, kwargs)
        if response is not None:
            ANSWERED_HERE.append(request)
        return response

    ANSWERED_HERE.clear()
    monkeypatch.setattr(FastAnswerApi, "fast_response", spy)


def answered_fast(response) -> bool:
    return any(request is response.wsgi_request for request in ANSWERED_HERE)


CHECK = "/api/v1/customers/{}/check"
ENTITLEMENTS = "/api/v1/customers/{}/entitlements"


def case(name, method, path, body=None, *, key="all", extra=None):
    """A case: its name, the key it sends, method, path, body and extra headers."""
    return (name, key, method, path, body, extra or {})


def check(name, customer, body, *, key="all", extra=None):
    return case(name, "POST", CHECK.format(customer), body, key=key, extra=extra)


# Given the fast answer, 200.
ANSWERED = [
    check("hard cap", "capped", {"meter": "sms"}),
    check("hard cap over", "capped", {"meter": "sms", "quantity": 461}),
    check("overage", "overage", {"meter": "prompts", "quantity": "2.5"}, key="read"),
    check("credits", "credits", {"meter": "agent_runs", "quantity": 2}, key="events"),
    check("credits short", "credits", {"meter": "agent_runs", "quantity": "3"}),
    check("money", "money", {"meter": "gpt4o_input_tokens", "quantity": "1000"}),
    check("soft spend limit", "spend", {"meter": "prompts", "quantity": 5}),
    check("meter not in plan", "capped", {"meter": "prompts"}),
    check("no subscription", "idle", {"meter": "sms"}),
    check("unknown meter", "capped", {"meter": "nope"}),
    check("feature granted", "pro", {"feature": "sso"}),
    check("feature list", "pro", {"feature": "models"}),
    check("feature not granted", "capped", {"feature": "sso"}),
    check("unknown feature", "pro", {"feature": "nope"}),
    check("accept json", "capped", {"meter": "sms"}, extra={"HTTP_ACCEPT": "application/json"}),
    check("accept any", "capped", {"meter": "sms"}, extra={"HTTP_ACCEPT": "*/*"}),
    check("unicode meter", "capped", {"meter": "sm\u2028s é"}),
    # DRF's CharField takes a number as its text.
    check("meter a number", "capped", {"meter": 5}),
    case("entitlements", "GET", ENTITLEMENTS.format("pro")),
    case("entitlements credits", "GET", ENTITLEMENTS.format("credits"), key="read"),
    case("entitlements money", "GET", ENTITLEMENTS.format("money"), key="events"),
    case("entitlements spend", "GET", ENTITLEMENTS.format("spend")),
    case("entitlements idle", "GET", ENTITLEMENTS.format("idle")),
]

# Left to DRF, which refuses or answers them as before.
LEFT = [
    check("no key", "capped", {"meter": "sms"}, key=None),
    check("basic auth", "capped", {"meter": "sms"}, key="Basic abc"),
    check("empty bearer", "capped", {"meter": "sms"}, key="Bearer "),
    check("unknown key", "capped", {"meter": "sms"}, key="Bearer sk_nope"),
    check("revoked key", "capped", {"meter": "sms"}, key="revoked"),
    # `admin` writes; it does not ask check (a 403, as any key without its scopes).
    check("admin key", "capped", {"meter": "sms"}, key="admin"),
    case("revoked key entitlements", "GET", ENTITLEMENTS.format("pro"), key="revoked"),
    check("unknown customer", "nobody", {"meter": "sms"}),
    check("unknown customer, bad body", "nobody", {"meter": 5}),
    case("unknown customer entitlements", "GET", ENTITLEMENTS.format("nobody")),
    check("malformed JSON", "capped", '{"meter": '),
    check("a list", "capped", "[1, 2]"),
    check("empty body", "capped", ""),
    check("both", "pro", {"meter": "prompts", "feature": "sso"}),
    check("neither", "pro", {}),
    check("feature quantity", "pro", {"feature": "sso", "quantity": 1}),
    check("negative", "capped", {"meter": "sms", "quantity": "-1"}),
    check("zero", "capped", {"meter": "sms", "quantity": 0}),
    check("not a number", "capped", {"meter": "sms", "quantity": "abc"}),
    check("NaN", "capped", '{"meter": "sms", "quantity": NaN}'),
    check("float", "capped", '{"meter": "sms", "quantity": 1e400}'),
    check("too precise", "capped", {"meter": "sms", "quantity": "0.00000000001"}),
    check("NUL in body", "capped", {"meter": "s\x00ms"}),
    check("surrogate", "capped", '{"meter": "\\ud800"}'),
    check("not UTF-8", "capped", b'{"meter": "\xff"}'),
    check("NUL in path", "ca%00pped", {"meter": "sms"}),
    case("NUL in path entitlements", "GET", ENTITLEMENTS.format("%00")),
    case("query string", "POST", CHECK.format("capped") + "?x=1", body={"meter": "sms"}),
    case("format query", "GET", ENTITLEMENTS.format("pro") + "?format=json"),
    check("accept html", "capped", {"meter": "sms"}, extra={"HTTP_ACCEPT": "text/html"}),
    case(
        "accept list",
        "GET",
        ENTITLEMENTS.format("pro"),
        extra={"HTTP_ACCEPT": "application/json, */*"},
    ),
    check("text body", "capped", '{"meter": "sms"}', extra={"content_type": "text/plain"}),
    check(
        "json with charset",
        "capped",
        '{"meter": "sms"}',
        extra={"content_type": "application/json; charset=utf-8"},
    ),
    # A browser's request (cookies): CSRF and sessions may add to the answer.
    check("bad CSRF cookie", "capped", {"meter": "sms"}, extra={"HTTP_COOKIE": "csrftoken=bad"}),
    case(
        "good CSRF cookie",
        "GET",
        ENTITLEMENTS.format("pro"),
        extra={"HTTP_COOKIE": "csrftoken=" + "a" * 32},
    ),
    case(
        "session cookie", "GET", ENTITLEMENTS.format("pro"), extra={"HTTP_COOKIE": "sessionid=abc"}
    ),
    case("GET check", "GET", CHECK.format("capped")),
    case("PUT check", "PUT", CHECK.format("capped"), body={"meter": "sms"}),
    case("HEAD entitlements", "HEAD", ENTITLEMENTS.format("pro")),
    case("OPTIONS check", "OPTIONS", CHECK.format("capped")),
    case("POST entitlements", "POST", ENTITLEMENTS.format("pro"), body={"meter": "sms"}),
    case("trailing slash", "POST", CHECK.format("capped") + "/", body={"meter": "sms"}),
    check("key without scopes", "capped", {"meter": "sms"}, key="none"),
    check("too large", "capped", '{"meter": "' + "x" * 3000000 + '"}'),
    check("bad host", "capped", {"meter": "sms"}, extra={"HTTP_HOST": "evil.example"}),
]


def _secret(keys, key):
    if key is None or " " in key:
        return key
    return f"Bearer {keys[key]}"


def _compare(keys, key, method, path, body, extra):
    fast = send(fast=True, secret=_secret(keys, key), method=method, path=path, body=body, **extra)
    plain = send(
        fast=False, secret=_secret(keys, key), method=method, path=path, body=body, **extra
    )
    assert (fast.status_code, sorted(fast.items()), cookies(fast), fast.content) == (
        plain.status_code,
        sorted(plain.items()),
        cookies(plain),
        plain.content,
    )
    return fast


def cookies(response) -> dict:
    """The cookies a response sets, with their attributes (not their values: a new
    CSRF token is random)."""
    return {name: dict(morsel) for name, morsel in response.cookies.items()}


@pytest.mark.parametrize(
    ("name", "key", "method", "path", "body", "extra"), ANSWERED, ids=[c[0] for c in ANSWERED]
)
def test_the_fast_answer_is_drfs(customers, keys, name, key, method, path, body, extra):
    response = _compare(keys, key, method, path, body, extra)
    assert response.status_code == 200, response.content
    assert answered_fast(response)


@pytest.mark.parametrize(
    ("name", "key", "method", "path", "body", "extra"), LEFT, ids=[c[0] for c in LEFT]
)
def test_anything_else_is_left_to_drf(customers, keys, name, key, method, path, body, extra):
    response = _compare(keys, key, method, path, body, extra)
    assert not answered_fast(response)
    # Not refused, these: DRF answers them.
    answered_by_view = {
        "json with charset",
        "query string",
        "format query",
        "accept list",
        "HEAD entitlements",
        "OPTIONS check",
        "bad CSRF cookie",
        "good CSRF cookie",
        "session cookie",
    }
    assert (response.status_code == 200) == (name in answered_by_view), response.content


def test_the_answers_carry_the_security_headers(customers, keys):
    response = send(
        fast=True,
        secret=f"Bearer {keys['all']}",
        method="POST",
        path=CHECK.format("capped"),
        body={"meter": "sms"},
    )
    assert answered_fast(response)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "POST, OPTIONS"


class StampMiddleware:
    """A middleware added last to MIDDLEWARE, as a later change might add one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Stamped"] = request.resolver_match.view_name
        return response


FAST_READS = [
    ("POST", CHECK, {"meter": "sms"}, CheckApi),
    ("GET", ENTITLEMENTS, None, EntitlementsApi),
]


@pytest.mark.parametrize(("method", "path", "body", "view"), FAST_READS, ids=["check", "ent"])
def test_a_middleware_added_later_runs_for_the_fast_answer(
    customers, keys, method, path, body, view
):
    stamped = [*settings.MIDDLEWARE, f"{__name__}.StampMiddleware"]
    with override_settings(MIDDLEWARE=stamped):
        response = send(
            fast=True,
            secret=f"Bearer {keys['all']}",
            method=method,
            path=path.format("capped"),
            body=body,
        )
    assert response.status_code == 200, response.content
    assert answered_fast(response)
    # Routed by config/urls.py to the view, as every other request.
    assert response.resolver_match.func.view_class is view
    assert response["X-Stamped"] == response.resolver_match.view_name


@pytest.mark.parametrize(("method", "path", "body", "view"), FAST_READS, ids=["check", "ent"])
def test_a_header_the_view_sets_is_on_its_200_and_its_errors(
    customers, keys, monkeypatch, method, path, body, view
):
    drf_headers = view.default_response_headers.fget

    def headers(self):
        return {**drf_headers(self), "X-From-View": view.__name__}

    monkeypatch.setattr(view, "default_response_headers", property(headers))
    answers = {
        customer: send(
            fast=True,
            secret=f"Bearer {keys['all']}",
            method=method,
            path=path.format(customer),
            body=body,
        )
        for customer in ("capped", "nobody")
    }
    assert [answers[c].status_code for c in ("capped", "nobody")] == [200, 404]
    assert answered_fast(answers["capped"]) and not answered_fast(answers["nobody"])
    assert [answers[c]["X-From-View"] for c in ("capped", "nobody")] == [view.__name__] * 2


@override_settings(API_THROTTLE_RATE=(3, 3600))
def test_a_request_over_the_rate_limit_is_refused_by_drf_and_counted_once(customers, keys):
    key = ApiKeyFactory(name="limited", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.secret}")
    key_leases.clear()
    answers = []
    with time_machine.travel(NOW, tick=False):
        for _ in range(5):
            response = client.post(CHECK.format("capped"), {"meter": "sms"}, format="json")
            answers.append((response.status_code, answered_fast(response)))
        count, _ = window_count(f"key:{key.pk}", 3600)
    assert answers == [(200, True)] * 3 + [(429, False)] * 2
    assert response["Retry-After"]
    # Five requests, five hits: the refused ones were not counted again by DRF.
    assert count == 5


def test_a_soft_spend_limit_alert_is_raised_once_through_the_fast_answer(customers, keys):
    from billing.models import Alert

    for _ in range(2):
        response = send(
            fast=True,
            secret=f"Bearer {keys['read']}",
            method="POST",
            path=CHECK.format("spend"),
            body={"meter": "prompts", "quantity": 300},
        )
        assert answered_fast(response)
        assert response.json()["allowed"] is True
    assert list(
        Alert.objects.filter(kind="spend_limit").values_list("period_start", flat=True)
    ) == [NOV_1]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OperationalError("server closed the connection unexpectedly"), 503),
        (ProgrammingError('relation "billing_customer" does not exist'), 500),
    ],
    ids=["database away", "statement error"],
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", CHECK.format("capped"), {"meter": "sms"}),
        ("POST", CHECK.format("pro"), {"feature": "sso"}),
        ("GET", ENTITLEMENTS.format("credits"), None),
    ],
    ids=["meter check", "feature check", "entitlements"],
)
def test_a_database_error_is_answered_by_drf(
    customers, keys, error, status, method, path, body, caplog
):
    # The key is known to this process (the fixture used it): the answer itself fails.
    with database_fails(error), caplog.at_level("WARNING", logger="billing.api.fast_answer"):
        response = _compare(keys, "all", method, path, body, {})
    assert response.status_code == status
    assert not answered_fast(response)
    # An error DRF is not expected to answer is logged by the fast answer too; the
    # database away is the view's to log (common.outage), once.
    logged = [r.getMessage() for r in caplog.records if r.name == "billing.api.fast_answer"]
    assert logged == ([] if status == 503 else [f"fast answer left {path} to DRF after an error"])


@pytest.mark.parametrize(
    "change",
    [
        {"throttle_classes": []},
        {"authentication_classes": []},
        {"permission_classes": []},
        {"parser_classes": []},
        {"versioning_class": object},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_view_set_up_otherwise_than_the_fast_answer_copies_stops_the_process(monkeypatch, change):
    for name, value in change.items():
        monkeypatch.setattr(CheckApi, name, value)
    with pytest.raises(ImproperlyConfigured, match=next(iter(change))):
        CheckApi.as_view()

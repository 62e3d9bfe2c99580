"""The shortcuts the API takes on every request answer exactly as what they stand
in for: the content negotiation (common.rest_api.ContentNegotiation) as DRF's, the
shared validation of a body (common.rest_api.validated) as a serializer of its own,
and the API skips the site's session, user, messages, audit history request and
outage page (config.site_middleware, one entry) while the admin keeps them."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse
from django.test import Client, RequestFactory
from rest_framework import exceptions, renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.serializers import ValidationError
from rest_framework.test import APIRequestFactory
from simple_history.models import HistoricalRecords

from common.rest_api import ContentNegotiation, validated
from config.site_middleware import SiteMiddleware
from wallets.serializers import CheckSerializer

JSON_ONLY = [renderers.JSONRenderer()]
SEVERAL = [renderers.JSONRenderer(), renderers.TemplateHTMLRenderer()]


def negotiated(negotiation, accept: str | None, query: str, renderer_list):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/v1/meters{query}", **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderer_list)
    except (exceptions.NotAcceptable, Http404) as exc:
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/json; indent=4",
        "application/*",
        "text/html",
        "text/html, */*;q=0.1",
        "*/*; q=0.5",
        "",
    ],
)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=html", "?format=xml"])
@pytest.mark.parametrize("renderer_list", [JSON_ONLY, SEVERAL], ids=["json", "json+html"])
def test_the_negotiation_answers_as_drf(accept, query, renderer_list):
    ours = negotiated(ContentNegotiation(), accept, query, renderer_list)
    drf = negotiated(DefaultContentNegotiation(), accept, query, renderer_list)

    assert ours == drf


BODIES = [
    {"meter": "sms"},
    {"meter": "sms", "quantity": "2.5"},
    {"meter": "sms", "quantity": 3},
    {"feature": "sso"},
    {"meter": "sms", "quantity": None},
    {},
    {"meter": "sms", "feature": "sso"},
    {"feature": "sso", "quantity": "1"},
    {"feature": 5},
    {"meter": ""},
    {"meter": "x" * 256},
    {"meter": "sms", "quantity": "abc"},
    {"meter": "sms", "quantity": True},
    {"meter": "sms", "quantity": "1e30"},
    {"meter": "sms", "unknown": 1},
    ["sms"],
    "sms",
    None,
]


def outcome(validate):
    try:
        return "valid", dict(validate())
    except ValidationError as exc:
        return "invalid", json.loads(json.dumps(exc.detail))


@pytest.mark.parametrize("body", BODIES, ids=[json.dumps(b)[:40] for b in BODIES])
def test_shared_validation_answers_as_a_serializer_of_its_own(body):
    def own():
        serializer = CheckSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    # twice: the second time on the instance the first one left behind
    assert outcome(lambda: validated(CheckSerializer, body)) == outcome(own)
    assert outcome(lambda: validated(CheckSerializer, body)) == outcome(own)


def test_the_api_builds_no_site_session_user_nor_messages(db, api):
    response = api.get("/api/v1/meters")

    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "_messages")
    assert not hasattr(response.wsgi_request, "auser")


@pytest.mark.parametrize(("path", "seen"), [("/api/v1/meters", False), ("/admin/", True)])
def test_the_audit_history_sees_the_sites_requests_only(path, seen):
    found = []

    def view(request):
        found.append(getattr(HistoricalRecords.context, "request", None))
        return HttpResponse()

    request = RequestFactory().get(path)
    SiteMiddleware(view)(request)

    assert found == [request if seen else None]
    assert getattr(HistoricalRecords.context, "request", None) is None


def test_the_admin_keeps_its_user_messages_session_and_csrf(db, admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert response.wsgi_request.user.is_authenticated
    assert response.wsgi_request.session.session_key
    assert hasattr(response.wsgi_request, "_messages")
    page = Client().get("/admin/login/")
    assert "csrftoken" in page.cookies


class HasAViewHook:
    def __init__(self, get_response):
        self.get_response = get_response

    def process_view(self, request, view, args, kwargs):
        return None


def test_a_site_only_middleware_with_a_view_hook_is_refused(monkeypatch):
    # The handler would call the hook for the API's requests too: it belongs in
    # MIDDLEWARE, where that shows.
    monkeypatch.setattr("config.site_middleware.SITE_ONLY", [f"{__name__}.HasAViewHook"])

    with pytest.raises(ImproperlyConfigured, match="HasAViewHook"):
        SiteMiddleware(lambda request: HttpResponse())

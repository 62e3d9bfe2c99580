"""The usage sources in the admin: every source listed before its first call,
its mapping edited through the API's own validation, and the preview of the
last calls with the model names the rate card does not know flagged."""

import re

import pytest
from django.contrib.auth.models import User

from billing.integration_models import IntegrationSource
from billing.integrations.ingest import source_row
from tests.integrations.test_litellm_ingest import payload, post
from tests.test_admin_languages import words

pytestmark = pytest.mark.django_db

DATED = "openai/gpt-4o-2024-08-06"
FINE_TUNED = "acme-ft-gpt-4o-2025"
LIST = "/admin/billing/integrationsource/"


@pytest.fixture
def finance(client):
    client.force_login(User.objects.create_superuser("finance", password="x"))
    return client


def change_url(source: str) -> str:
    return f"{LIST}{source_row(source).pk}/change/"


def form_data(**changes) -> dict:
    data = {
        "event_name": "llm.tokens",
        "customer_from": "end_user",
        "models": "",
        **{f"token_type_{kind}": kind for kind in ("input", "cached_input", "cache_write")},
        **{f"token_type_{kind}": kind for kind in ("output", "reasoning")},
        **{f"token_type_{kind}": kind for kind in ("audio_input", "audio_output")},
    }
    return data | changes


def test_every_source_is_listed_before_any_call(finance):
    page = words(finance.get(LIST).content.decode())
    assert "LiteLLM" in page and "OpenRouter" in page and "OpenTelemetry (OTLP)" in page
    assert sorted(IntegrationSource.objects.values_list("source", flat=True)) == [
        "litellm",
        "openrouter",
        "otlp",
    ]
    assert "No call received yet." in words(finance.get(change_url("otlp")).content.decode())


def test_finance_maps_a_model_and_a_token_kind(finance):
    url = change_url("litellm")
    response = finance.post(
        url,
        form_data(
            models=f"{DATED} = gpt-4o\n\n  claude-3-5-sonnet-latest = claude-3.5-sonnet  ",
            token_type_cached_input="cache_read",
            token_type_audio_input="",
        ),
    )
    assert response.status_code == 302, words(response.content.decode())
    row = IntegrationSource.objects.get(source="litellm")
    assert row.models == {DATED: "gpt-4o", "claude-3-5-sonnet-latest": "claude-3.5-sonnet"}
    # Only what differs from a kind's own name is stored; empty is "not billed".
    assert row.token_types == {"cached_input": "cache_read", "audio_input": None}
    assert row.updated_by == "finance"
    page = finance.get(url).content.decode()
    assert f"{DATED} = gpt-4o" in page
    (audio,) = re.findall(r'<input[^>]*name="token_type_audio_input"[^>]*>', page)
    assert "value=" not in audio
    (cached,) = re.findall(r'<input[^>]*name="token_type_cached_input"[^>]*>', page)
    assert 'value="cache_read"' in cached


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"customer_from": "nobody"}, "customer_from 'nobody' is not a field of LiteLLM"),
        ({"event_name": ""}, "event_name must be a non-empty string"),
        ({"models": "gpt-4o-2024"}, "Line 1: write 'source name = card value'."),
        ({"models": "a = b\na = c"}, "Line 2: a is mapped twice."),
        ({"models": "a = "}, "must be a non-empty string"),
        ({"token_type_input": "x" * 65}, "at most 64 characters"),
    ],
)
def test_a_wrong_mapping_is_shown_and_nothing_is_stored(finance, changes, message):
    url = change_url("litellm")
    response = finance.post(url, form_data(models="kept = not stored") | changes)
    assert response.status_code == 200
    assert message in words(response.content.decode())
    row = IntegrationSource.objects.get(source="litellm")
    assert (row.models, row.token_types, row.event_name, row.customer_from) == (
        {},
        {},
        "llm.tokens",
        "end_user",
    )


def test_the_preview_shows_the_last_calls_and_flags_a_model_the_card_does_not_know(finance, s35):
    post([payload("call-1", model=FINE_TUNED, cached=0, prompt=1_000_000, completion=5)])
    post([payload("call-2", model="gpt-4o", cached=250_000, prompt=1_000_000, completion=5)])
    # Priced without a mapping: a dated name with its provider, and a proxy's
    # deployment by the model group it was asked for by.
    post([payload("call-3", model=DATED, cached=0, prompt=10, completion=0)])
    deployment = payload("call-4", model="azure/o3-eastus", cached=0, prompt=10, completion=0)
    post([deployment | {"model_group": "o3"}])
    url = change_url("litellm")
    # Each token type and its count is a tag of its own: read without the space before a comma.
    page = words(finance.get(url).content.decode()).replace(" ,", ",")
    assert "Last calls received" in page and "Models received" in page
    assert f"call-1 acme {FINE_TUNED} \N{RIGHTWARDS ARROW} {FINE_TUNED} input 1,000,000" in page
    assert "call-2 acme gpt-4o \N{RIGHTWARDS ARROW} gpt-4o input 750,000" in page
    assert f"call-3 acme {DATED} \N{RIGHTWARDS ARROW} gpt-4o input 10" in page
    assert "call-4 acme azure/o3-eastus \N{RIGHTWARDS ARROW} o3 input 10" in page
    # The unpriced model first, flagged; the others as they are priced.
    models = page[page.index("Model received") : page.index("Last calls received")]
    assert models.index(f"{FINE_TUNED} {FINE_TUNED} 1") < models.index(f"{DATED} gpt-4o 1")
    assert "not on the rate card: priced at the default row" in models
    assert page.count("not on the rate card") == 1
    assert "azure/o3-eastus (asked for as o3) o3 1" in models

    finance.post(url, form_data(models=f"{FINE_TUNED} = gpt-4o"))
    page = words(finance.get(url).content.decode())
    assert "not on the rate card" not in page
    assert f"{FINE_TUNED} gpt-4o 1" in page

"""A usage source's preview is written by a process at most every
BILLING_INTEGRATION_PREVIEW_SECONDS, so that busy workers do not each wait on the
source's row a request: a request bringing a model the preview does not show, or
a refused record, writes it at once; the calls in between are kept and written
with the next write, their counts added."""

import pytest

from billing.integration_models import IntegrationSource
from billing.integrations.ingest import preview_buffer
from tests.integrations.test_litellm_ingest import payload, post

pytestmark = pytest.mark.django_db


def preview() -> tuple[list[str], dict]:
    row = IntegrationSource.objects.get(source="litellm")
    return [entry["id"] for entry in row.recent], {
        model: seen["calls"] for model, seen in row.models_seen.items()
    }


def test_calls_wait_for_the_next_write_and_are_counted_then(s35, settings):
    settings.BILLING_INTEGRATION_PREVIEW_SECONDS = 3600
    assert post([payload("a")]).json()["calls"] == 1
    assert preview() == (["a"], {"gpt-4o": 1})  # a model the preview did not show

    post([payload("b")])
    post([payload("c")])
    assert preview() == (["a"], {"gpt-4o": 1})  # nothing new to show: kept

    post([payload("d", model="o3")])  # a new model: written, with what was kept
    assert preview() == (["d", "c", "b", "a"], {"gpt-4o": 3, "o3": 1})

    post([payload("e")])
    answer = post([payload("f", customer="nobody")]).json()  # a refusal: at once
    assert [r["id"] for r in answer["rejected"]] == ["f"]
    recent, calls = preview()
    # Models received count the calls received, the refused one among them.
    assert recent[:3] == ["f", "e", "d"] and calls == {"gpt-4o": 5, "o3": 1}


def test_after_the_wait_the_next_request_writes(s35, settings, monkeypatch):
    settings.BILLING_INTEGRATION_PREVIEW_SECONDS = 60
    clock = [1000.0]
    monkeypatch.setattr(preview_buffer, "clock", lambda: clock[0])
    post([payload("a")])
    clock[0] += 59
    post([payload("b")])
    assert preview()[0] == ["a"]
    clock[0] += 2
    post([payload("c")])
    assert preview() == (["c", "b", "a"], {"gpt-4o": 3})

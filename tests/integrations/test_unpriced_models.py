"""Models no rate card prices (issue 92): the gateways' answers list them, and
finance is told of each new one once, through the alerts' own path (held while
sending is paused after a restore; once across processes, on PostgreSQL). The
names a source sends are kept on the events, at their longest too."""

from datetime import UTC, datetime

import pytest

from billing.integration_models import UnpricedModel
from billing.integrations.ingest import source_row
from billing.integrations.unpriced_alerts import (
    UnpricedCall,
    announced,
    unpriced_models_announce,
)
from billing.models import Alert, AlertTeamRecipient, UsageEvent
from billing.notifications.outbound_pause import outbound_pause_set
from tests.integrations.test_litellm_ingest import payload, post
from tests.threads import run_at_once

FINE_TUNED = "acme-ft-gpt-4o-2025"


def call(call_id: str, model: str, **fields) -> dict:
    return payload(call_id, model=model, cached=0, prompt=1_000, completion=0) | fields


@pytest.mark.django_db
def test_a_model_mapped_to_a_value_no_card_names_is_listed_under_that_value(s35):
    row = source_row("litellm")
    row.models = {"my-o3": "o3-pro"}
    row.save()

    answer = post([call("c-1", "my-o3"), call("c-2", "gpt-4o"), call("c-3", FINE_TUNED)])

    assert answer.status_code == 202, answer.json()
    assert answer.json()["unpriced_models"] == [FINE_TUNED, "o3-pro"]
    properties = UsageEvent.objects.get(event_id="c-1:input").properties
    assert (properties["model"], properties["source_model"]) == ("o3-pro", "my-o3")
    assert "requested_model" not in properties


@pytest.mark.django_db
def test_the_model_group_is_read_as_the_model_asked_for_or_the_record_refused(s35):
    answer = post(
        [
            call("c-1", "azure/o3-eastus", model_group="o3"),
            # The SDK's payload: no group (null, or empty).
            call("c-2", "o3", model_group=None),
            call("c-3", "gpt-4o", model_group=""),
            call("c-4", "gpt-4o", model_group=["o3"]),
            call("c-5", "gpt-4o", model_group="g" * 256),
        ]
    ).json()

    assert [(r["index"], r["error"]["message"]) for r in answer["rejected"]] == [
        (3, "model_group must be a non-empty string"),
        (4, "model_group must be at most 255 characters"),
    ]
    assert answer["calls"] == 3 and answer["unpriced_models"] == []
    stored = {
        e.event_id: (e.properties["model"], e.properties.get("requested_model"))
        for e in UsageEvent.objects.all()
    }
    assert stored == {
        "c-1:input": ("o3", "o3"),
        "c-2:input": ("o3", None),
        "c-3:input": ("gpt-4o", None),
    }
    assert not UsageEvent.objects.filter(event_id__startswith="c-4").exists()


@pytest.mark.django_db
def test_the_longest_names_are_kept_beside_the_model(s35):
    sent, requested = "s" * 255, "r" * 255

    answer = post([call("c-1", sent, model_group=requested)]).json()

    assert answer["calls"] == 1 and answer["unpriced_models"] == [requested]
    properties = UsageEvent.objects.get(event_id="c-1:input").properties
    assert properties == {
        "model": requested,
        "source_model": sent,
        "requested_model": requested,
        "token_type": "input",
        "tokens": 1_000,
        "source": "litellm",
    }


@pytest.mark.django_db
def test_the_notice_is_held_while_sending_is_paused(
    s35, mailoutbox, django_capture_on_commit_callbacks
):
    # given: finance takes the kind, and a restore paused sending
    AlertTeamRecipient.objects.create(email="finance@seller.test", kinds=[Alert.UNPRICED_MODEL])
    outbound_pause_set(now=datetime(2026, 11, 9, tzinfo=UTC), reason="a test's restore", lost=[])

    # when: the model comes, and again in another request (another process's view)
    with django_capture_on_commit_callbacks(execute=True):
        first = post([call("c-1", FINE_TUNED)])
    announced.clear()
    with django_capture_on_commit_callbacks(execute=True):
        post([call("c-2", FINE_TUNED)])

    # then: one alert, recorded and not emailed; nothing sent
    assert first.json()["unpriced_models"] == [FINE_TUNED]
    (alert,) = Alert.objects.filter(kind=Alert.UNPRICED_MODEL)
    assert alert.emailed_at is None
    assert mailoutbox == []
    assert UnpricedModel.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_call_is_not_listed_nor_announced(s35):
    answer = post([call("c-1", FINE_TUNED, end_user="nobody")]).json()

    assert answer["calls"] == 0 and answer["unpriced_models"] == []
    assert not Alert.objects.exists() and not UnpricedModel.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_processes_meeting_a_new_model_at_once_tell_finance_once(s35):
    """Four requests' announcements at the same moment, none knowing of another's:
    the model's row decides (requests through the API mostly meet one after the
    other, on the customer's usage locks)."""
    first = UnpricedCall(FINE_TUNED, f"openai/{FINE_TUNED}", FINE_TUNED, "acme")

    def work(index: int) -> int:
        return len(
            unpriced_models_announce(
                source="litellm", calls=[first], now=datetime(2026, 11, 10, 12, index, tzinfo=UTC)
            )
        )

    raised = run_at_once(work, clients=4)

    assert sorted(raised) == [0, 0, 0, 1]
    assert Alert.objects.filter(kind=Alert.UNPRICED_MODEL).count() == 1
    assert list(UnpricedModel.objects.values_list("source", "model")) == [("litellm", FINE_TUNED)]
    # And a request after them raises nothing, knowing it from the database.
    announced.clear()
    assert post([call("c-1", FINE_TUNED)]).json()["unpriced_models"] == [FINE_TUNED]
    assert Alert.objects.filter(kind=Alert.UNPRICED_MODEL).count() == 1

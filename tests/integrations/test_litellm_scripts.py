"""Scripts that call their models through the installed litellm package, each run as a
process of its own against the live server, as docs/api-tour.md tells their authors to
("From a script"): a plain synchronous script with contrib/litellm_billing_logger.py
copied beside it, and an async one with LiteLLM's generic_api callback awaiting its
flush. Each ends right after its last call, and every call it made is billed once,
priced by S35's card exactly."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from billing.models import UsageEvent
from tests.factories import ApiKeyFactory
from tests.integrations.conftest import S35_TWO_CALLS, month_usage_rates

pytestmark = pytest.mark.django_db(transaction=True)

LOGGER = Path(__file__).resolve().parents[2] / "contrib" / "litellm_billing_logger.py"
# Importing litellm takes seconds, more on a loaded machine.
SCRIPT_SECONDS = 300
CALLS = 20

# The provider's answers, mocked: even calls are gpt-4o (120,000 prompt tokens of which
# 20,000 cached, 10,000 completion), odd ones o3 (50,000 prompt, 30,000 completion of
# which 25,000 reasoning). The calls' ids are litellm's own.
ANSWERS = """
import litellm


def answer(index):
    if index % 2 == 0:
        model, prompt, cached, completion, reasoning = "gpt-4o", 120_000, 20_000, 10_000, 0
    else:
        model, prompt, cached, completion, reasoning = "o3", 50_000, 0, 30_000, 25_000
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    message = {"role": "assistant", "content": "hi"}
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    return model, litellm.ModelResponse(model=model, choices=[choice], usage=usage)
"""

# An ordinary script: no event loop, no flush; the logger sends 8 calls a request, the
# last 4 when the interpreter exits. A failed call raises and is not billed.
SYNC_SCRIPT = """
import json
import sys

import litellm
from litellm_billing_logger import BillingLogger

from answers import answer

litellm.callbacks = [BillingLogger(batch_size=8)]
ids = []
for index in range(int(sys.argv[1])):
    model, mocked = answer(index)
    response = litellm.completion(
        model=model, messages=[{"role": "user", "content": "hi"}], user="acme", mock_response=mocked
    )
    ids.append(response.id)
try:
    litellm.completion(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], user="acme",
        mock_response=Exception("provider down"),
    )
except Exception:
    pass
print(json.dumps(ids))
"""

# The docs' async recipe: generic_api made inside the loop, and before the script ends
# every call's logging awaited (the tasks that queue it, then the queue: the proxy's
# own order at shutdown), then its batch (sent every 5 s otherwise). Without the
# first, the last call's logging could still be unqueued when the queue was flushed,
# and it was lost (seen, sometimes, in CI and here).
ASYNC_SCRIPT = """
import asyncio
import json
import sys

import litellm
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from litellm.responses.streaming_iterator import drain_logging_tasks

from answers import answer


async def main():
    billing = GenericAPILogger()
    litellm.callbacks = [billing]
    ids = []
    for index in range(int(sys.argv[1])):
        model, mocked = answer(index)
        response = await litellm.acompletion(
            model=model, messages=[{"role": "user", "content": "hi"}], user="acme",
            mock_response=mocked,
        )
        ids.append(response.id)
    await drain_logging_tasks()
    await GLOBAL_LOGGING_WORKER.flush()
    await billing.flush_queue()
    return ids


print(json.dumps(asyncio.run(main())))
"""


def run_script(folder: Path, source: str, base_url: str) -> list[str]:
    """The script run to its end as its own process, reading the endpoint and our key
    from the variables the docs name; the ids of the calls it made."""
    secret = ApiKeyFactory(name="script", scopes=["events:write"]).secret
    (folder / "answers.py").write_text(ANSWERS)
    (folder / "script.py").write_text(source)
    environment = os.environ | {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "GENERIC_LOGGER_ENDPOINT": f"{base_url}/api/v1/integrations/litellm",
        "GENERIC_LOGGER_HEADERS": f"Authorization=Bearer {secret}",
    }
    done = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [sys.executable, "script.py", str(CALLS)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SCRIPT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "litellm_billing_logger:" not in done.stderr, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_every_call_billed_once(ids: list[str]) -> None:
    assert len(set(ids)) == CALLS
    events = UsageEvent.objects.filter(customer__external_id="acme")
    kinds = {}
    for event in events:
        call, _, kind = event.event_id.rpartition(":")
        kinds.setdefault(call, []).append((kind, event.properties["tokens"]))
    assert set(kinds) == set(ids)
    for index, call in enumerate(ids):
        expected = (
            [("input", 100_000), ("cached_input", 20_000), ("output", 10_000)]
            if index % 2 == 0
            else [("input", 50_000), ("output", 5_000), ("reasoning", 25_000)]
        )
        assert sorted(kinds[call]) == sorted(expected), call

    moment = events.first().timestamp
    assert month_usage_rates(moment) == ("7.15", S35_TWO_CALLS)


def test_a_synchronous_script_with_the_docs_logger_bills_every_call_once(
    live_server, s35, tmp_path
):
    shutil.copy(LOGGER, tmp_path)

    ids = run_script(tmp_path, SYNC_SCRIPT, live_server.url)

    # 20 calls, 8 a request: the last 4 were sent as the script exited.
    assert_every_call_billed_once(ids)


def test_an_async_script_that_awaits_generic_apis_flush_bills_its_last_batch(
    live_server, s35, tmp_path
):
    ids = run_script(tmp_path, ASYNC_SCRIPT, live_server.url)

    # All 20 calls end within generic_api's 5 s: its batch was sent by the awaited flush.
    assert_every_call_billed_once(ids)

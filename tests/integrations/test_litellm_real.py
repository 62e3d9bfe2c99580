"""The installed litellm package itself, its model calls mocked, logging to the live
server through its generic_api callback with our API key, over real HTTP: what it
sends is priced by S35's card exactly, a failed call is not billed, and the same
batch flushed twice is billed once, in each of its batch formats."""

import asyncio
import http.server
import json
import threading

import pytest
from django.conf import settings

from billing.integrations.ingest import source_row
from billing.models import UsageEvent
from tests.factories import ApiKeyFactory
from tests.integrations.conftest import S35_TWO_CALLS, month_usage_rates

pytestmark = pytest.mark.django_db(transaction=True)

# Where litellm keeps its callbacks (litellm.callbacks is copied into the others on a
# call): each is put back as it was after a test.
CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
)
# Long enough for any machine; the wait ends as soon as litellm has logged.
LOGGED_WITHIN_SECONDS = 60


@pytest.fixture
def sdk(monkeypatch):
    """litellm, reading its bundled price list (not fetching one), its callbacks as
    they were once the test is over."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger

    saved = {name: list(getattr(litellm, name)) for name in CALLBACK_LISTS}
    yield litellm
    for name, callbacks in saved.items():
        setattr(litellm, name, callbacks)
    left = [cb for name in CALLBACK_LISTS for cb in getattr(litellm, name)]
    assert not any(isinstance(cb, GenericAPILogger) for cb in left)


def mocked(litellm, call_id, model, *, prompt, completion, cached=0, reasoning=0):
    """A provider's answer as litellm's mock returns it, with its usage (OpenAI's
    shape: the cached tokens inside the prompt's, the reasoning inside the
    completion's)."""
    return litellm.ModelResponse(
        id=call_id,
        model=model,
        choices=[
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hello"},
            }
        ],
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    )


class Gateway:
    """litellm's generic_api logger aimed at our endpoint with our key, its batches
    flushed when the test says (no periodic flush within a test), and the answers it
    received."""

    def __init__(self, litellm, url: str, secret: str, log_format: str):
        from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
        from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

        self.answers: list[tuple[int, dict]] = []

        async def keep(response):
            await response.aread()
            self.answers.append((response.status_code, response.json()))

        self.logger = GenericAPILogger(
            endpoint=url,
            headers={"Authorization": f"Bearer {secret}"},
            log_format=log_format,
            async_httpx_client=AsyncHTTPHandler(event_hooks={"response": [keep]}),
            batch_size=1000,
            flush_interval=3600,
        )
        litellm.callbacks = [self.logger]

    async def logged(self, count: int) -> list[dict]:
        """The payloads once litellm has queued `count` of them (its logging runs
        after the call has returned)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + LOGGED_WITHIN_SECONDS
        while len(self.logger.log_queue) < count:
            assert loop.time() < give_up, f"litellm logged {len(self.logger.log_queue)} of {count}"
            await asyncio.sleep(0.02)
        return list(self.logger.log_queue)

    async def flush(self, payloads: list[dict] | None = None) -> tuple[int, dict]:
        """Send the queue (or these payloads again) as one batch; our answer."""
        if payloads is not None:
            self.logger.log_queue.extend(payloads)
        answered = len(self.answers)
        await self.logger.flush_queue()
        assert len(self.answers) == answered + 1, "the batch got no answer"
        return self.answers[-1]


@pytest.mark.parametrize("log_format", ["json_array", "ndjson"])
def test_litellm_logs_calls_priced_by_s35_failures_free_resends_once(
    sdk, live_server, s35, log_format
):
    row = source_row("litellm")
    row.models = {"o3-2025-04-16": "o3"}
    row.save()
    secret = ApiKeyFactory(name="litellm", scopes=["events:write"]).secret
    url = f"{live_server.url}/api/v1/integrations/litellm"
    messages = [{"role": "user", "content": "hi"}]

    async def session():
        gateway = Gateway(sdk, url, secret, log_format)
        gpt4o = await sdk.acompletion(
            model="gpt-4o",
            messages=messages,
            user="acme",
            mock_response=mocked(
                sdk, "chatcmpl-s35", "gpt-4o", prompt=1_200_000, cached=200_000, completion=100_000
            ),
        )
        o3 = await sdk.acompletion(
            model="openai/o3-2025-04-16",
            messages=messages,
            user="acme",
            mock_response=mocked(
                sdk,
                "chatcmpl-o3",
                "o3-2025-04-16",
                prompt=500_000,
                completion=300_000,
                reasoning=250_000,
            ),
        )
        with pytest.raises(Exception, match="provider down"):
            await sdk.acompletion(
                model="gpt-4o",
                messages=messages,
                user="acme",
                mock_response=Exception("provider down"),
            )
        payloads = await gateway.logged(3)
        first = await gateway.flush()
        again = await gateway.flush(payloads)
        return (gpt4o, o3), payloads, first, again

    responses, payloads, first, again = asyncio.run(session())

    # What litellm sent (in the order its logging ran): the SDK's `user` is not its
    # end_user (the proxy's), the model as called without its provider, the failure
    # under its litellm_call_id.
    (failure,) = [p for p in payloads if p["status"] == "failure"]
    assert {(p["id"], p["status"], p["model"]) for p in payloads} == {
        ("chatcmpl-s35", "success", "gpt-4o"),
        ("chatcmpl-o3", "success", "o3-2025-04-16"),
        (failure["litellm_call_id"], "failure", "gpt-4o"),
    }
    assert [p["end_user"] for p in payloads] == [None, None, None]
    assert [p["model_parameters"]["user"] for p in payloads] == ["acme"] * 3
    assert responses[1].usage.completion_tokens_details.reasoning_tokens == 250_000

    assert first == (
        202,
        {
            "accepted": 6,
            "duplicates": 0,
            "calls": 2,
            "skipped": 1,
            "rejected": [],
            "unpriced_models": [],
        },
    )
    assert again == (
        202,
        {
            "accepted": 0,
            "duplicates": 6,
            "calls": 2,
            "skipped": 1,
            "rejected": [],
            "unpriced_models": [],
        },
    )
    events = {
        e.event_id: (e.properties["model"], e.properties["token_type"], e.properties["tokens"])
        for e in UsageEvent.objects.filter(customer__external_id="acme")
    }
    assert events == {
        "chatcmpl-s35:input": ("gpt-4o", "input", 1_000_000),
        "chatcmpl-s35:cached_input": ("gpt-4o", "cached_input", 200_000),
        "chatcmpl-s35:output": ("gpt-4o", "output", 100_000),
        "chatcmpl-o3:input": ("o3", "input", 500_000),
        "chatcmpl-o3:output": ("o3", "output", 50_000),
        "chatcmpl-o3:reasoning": ("o3", "reasoning", 250_000),
    }

    moment = UsageEvent.objects.filter(event_id="chatcmpl-s35:input").get().timestamp
    assert month_usage_rates(moment) == ("7.15", S35_TWO_CALLS)


class AnthropicStub(http.server.BaseHTTPRequestHandler):
    """Anthropic's Messages API answering one call with cache reads and writes, so
    that litellm's own Anthropic translation makes the usage it logs."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        answer = {
            "id": "msg_cached",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 100_000,
                "output_tokens": 20_000,
                "cache_creation_input_tokens": 300_000,
                "cache_read_input_tokens": 600_000,
            },
        }
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def anthropic_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnthropicStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_anthropic_call_bills_its_cache_reads_and_writes_apart(
    sdk, live_server, s35, anthropic_url
):
    """litellm counts Anthropic's cache reads and writes inside prompt_tokens (its
    input_tokens are neither): each is billed once, under its own kind."""
    secret = ApiKeyFactory(name="litellm", scopes=["events:write"]).secret
    url = f"{live_server.url}/api/v1/integrations/litellm"

    async def session():
        gateway = Gateway(sdk, url, secret, "json_array")
        await sdk.acompletion(
            model="anthropic/claude-sonnet-4-5",
            api_base=anthropic_url,
            api_key="not-a-key",
            messages=[{"role": "user", "content": "hi"}],
            user="acme",
        )
        (logged,) = await gateway.logged(1)
        return logged, await gateway.flush()

    logged, answer = asyncio.run(session())

    # litellm names the call by an id of its own, not Anthropic's message id.
    call = logged["id"]
    assert call.startswith("chatcmpl-") and call != logged["litellm_call_id"]
    usage = logged["metadata"]["usage_object"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1_000_000, 20_000)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 600_000
    assert usage["cache_creation_input_tokens"] == 300_000
    assert answer == (
        202,
        {
            "accepted": 4,
            "duplicates": 0,
            "calls": 1,
            "skipped": 0,
            "rejected": [],
            # S35's card has no Claude row: priced at its default.
            "unpriced_models": ["claude-sonnet-4-5"],
        },
    )
    events = {
        e.event_id: (e.properties["token_type"], e.properties["tokens"])
        for e in UsageEvent.objects.all()
    }
    assert events == {
        f"{call}:input": ("input", 100_000),
        f"{call}:cached_input": ("cached_input", 600_000),
        f"{call}:cache_write": ("cache_write", 300_000),
        f"{call}:output": ("output", 20_000),
    }


def test_a_batch_as_large_as_litellm_sends_is_taken(sdk, live_server, s35):
    """300 calls of a one-word prompt: 1.5 MB in LiteLLM's payloads, past the 1 MiB
    of POST /events (a batch answered 413 is dropped by LiteLLM)."""
    secret = ApiKeyFactory(name="litellm", scopes=["events:write"]).secret
    url = f"{live_server.url}/api/v1/integrations/litellm"
    calls = 300

    async def session():
        gateway = Gateway(sdk, url, secret, "json_array")
        for index in range(calls):
            await sdk.acompletion(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                user="acme",
                mock_response=mocked(
                    sdk, f"chatcmpl-{index}", "gpt-4o", prompt=1_000, cached=200, completion=50
                ),
            )
        payloads = await gateway.logged(calls)
        return payloads, await gateway.flush()

    payloads, answer = asyncio.run(session())

    assert len(json.dumps(payloads, default=str)) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert answer == (
        202,
        {
            "accepted": 3 * calls,
            "duplicates": 0,
            "calls": calls,
            "skipped": 0,
            "rejected": [],
            "unpriced_models": [],
        },
    )
    assert UsageEvent.objects.count() == 3 * calls

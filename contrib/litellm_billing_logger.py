"""Bills every LiteLLM call of a synchronous script: a LiteLLM callback that sends each
successful call's logging payload (its StandardLoggingPayload, what LiteLLM's own
`generic_api` callback sends) to the billing service's POST /api/v1/integrations/litellm,
in batches, the last one when the script exits.

LiteLLM's `generic_api` callback is a batch logger that needs a running event loop:
outside one (a script calling `litellm.completion`) it is never created ("no running
event loop") and nothing is sent. This one needs none: LiteLLM hands it each call of
`completion()` from its logging threads, and it sends what it holds when the batch is
full and when the interpreter exits (atexit, which runs after LiteLLM's logging
threads have finished). A process killed outright (SIGKILL, os._exit) loses the calls
of its last batch: `batch_size=1` sends each call as it is logged.

It is not part of the billing service, which never imports it: copy it next to your
script. It needs litellm and httpx (which litellm installs).

    import litellm
    from litellm_billing_logger import BillingLogger

    litellm.callbacks = [BillingLogger()]  # GENERIC_LOGGER_ENDPOINT, GENERIC_LOGGER_HEADERS

It bills the calls of `completion()` (and the SDK's other synchronous calls); an async
script keeps `generic_api` and awaits its flush before it ends (docs/api-tour.md)."""

import atexit
import json
import os
import sys
import threading
import time
import warnings

import httpx
from litellm.integrations.custom_logger import CustomLogger

# Answers worth sending the same batch again for (each call is billed once however many
# times it arrives: its events' ids are its own).
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def _headers_from_environment() -> dict[str, str]:
    """GENERIC_LOGGER_HEADERS as LiteLLM reads it: "Name=value,Name2=value2"."""
    headers = {}
    for item in os.environ.get("GENERIC_LOGGER_HEADERS", "").split(","):
        name, sep, value = item.partition("=")
        if sep:
            headers[name.strip()] = value.strip()
    return headers


class BillingLogger(CustomLogger):
    """Holds the payloads of the script's successful calls and posts them, `batch_size`
        a request (at most 32 MB reach the endpoint: a hundred calls with long prompts
        fit), the rest at exit or when `flush()` is called. A batch that cannot be sent
        after `retries` attempts, and a call the service refuses (an unknown customer), are
    reported on stderr and counted in `unbilled`."""

    def __init__(
        self,
        endpoint: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        batch_size: int = 100,
        timeout: float = 30.0,
        retries: int = 3,
    ):
        super().__init__()
        self.endpoint = endpoint or os.environ.get("GENERIC_LOGGER_ENDPOINT")
        if not self.endpoint:
            raise ValueError("BillingLogger needs an endpoint (or GENERIC_LOGGER_ENDPOINT)")
        self.headers = {"Content-Type": "application/json"}
        self.headers.update(_headers_from_environment() if headers is None else headers)
        self.batch_size = max(1, batch_size)
        self.timeout = timeout
        self.retries = max(1, retries)
        self.unbilled = 0
        self._held: list[str] = []
        self._lock = threading.Lock()
        self._warned_async = False
        atexit.register(self.flush)

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        payload = kwargs.get("standard_logging_object")
        if payload is None:
            return
        # Written now: LiteLLM may reuse the objects it holds once the call is logged.
        text = json.dumps(payload, default=str)
        with self._lock:
            self._held.append(text)
            if len(self._held) < self.batch_size:
                return
            batch, self._held = self._held, []
        self._send(batch)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        # An async call's logging runs after an event loop may be gone: not billed here.
        if not self._warned_async:
            self._warned_async = True
            warnings.warn(
                "BillingLogger bills synchronous calls; an async script uses LiteLLM's "
                "generic_api callback and awaits its flush",
                RuntimeWarning,
                stacklevel=2,
            )

    def flush(self) -> None:
        """Send what is held now (called at exit)."""
        with self._lock:
            batch, self._held = self._held, []
        if batch:
            self._send(batch)

    def _send(self, batch: list[str]) -> None:
        body = ("[" + ",".join(batch) + "]").encode()
        problem = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(2 ** (attempt - 1))
            try:
                response = httpx.post(
                    self.endpoint, content=body, headers=self.headers, timeout=self.timeout
                )
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRIED_STATUSES:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 202:
                problem = f"HTTP {response.status_code}: {response.text[:500]}"
                break
            try:
                rejected = response.json().get("rejected") or []
            except (ValueError, AttributeError):
                rejected = []  # a 202 without our answer (a proxy in front): taken
            if rejected:
                self.unbilled += len(rejected)
                self._report(f"{len(rejected)} of {len(batch)} calls refused: {rejected[:5]}")
            return
        self.unbilled += len(batch)
        self._report(f"{len(batch)} calls not sent ({problem})")

    @staticmethod
    def _report(message: str) -> None:
        print(f"litellm_billing_logger: {message}", file=sys.stderr, flush=True)

"""A fake Stripe API for the tests: an HTTP server on 127.0.0.1 in a thread, which
the real `stripe` library talks to (STRIPE_API_BASE). It records every request
(method, path, headers, the form-encoded body) and answers canned JSON: what a
test queued for that method and path first, else a plausible default (customers,
PaymentIntents that succeed, Checkout Sessions with a URL).

A queued answer can also be "drop" (the connection is closed without an answer,
a network error to the client) or a delay before the answer (a timeout)."""

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

DROP = "drop"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str

    @property
    def form(self) -> dict[str, str]:
        """The form-encoded parameters, as Stripe's library sends them:
        nested ones flattened ("metadata[invoice_id]")."""
        return dict(parse_qsl(self.body, keep_blank_values=True))

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class Answer:
    status: int = 200
    body: dict | None = None
    action: str = ""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def stripe_error(status: int, type_: str, message: str, **details) -> Answer:
    return Answer(status, {"error": {"type": type_, "message": message, **details}})


def card_declined(intent_id: str = "pi_declined", decline_code: str = "insufficient_funds"):
    """Stripe's answer to a declined off-session confirmation: a 402 whose error
    carries the PaymentIntent it created."""
    return stripe_error(
        402,
        "card_error",
        "Your card has insufficient funds.",
        code="card_declined",
        decline_code=decline_code,
        payment_intent={
            "id": intent_id,
            "object": "payment_intent",
            "status": "requires_payment_method",
        },
    )


class FakeStripe:
    def __init__(self):
        self.requests: list[Request] = []
        self.queued: dict[tuple[str, str], list[Answer]] = defaultdict(list)
        # What GET /v1/customers/<id> reports as the default payment method.
        self.default_payment_method: str | None = "pm_card_visa"
        self._lock = threading.Lock()
        self._counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = urlsplit(self.path).path
                if method == "GET" and not body:
                    body = urlsplit(self.path).query
                request = Request(
                    method, path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with fake._lock:
                    fake.requests.append(request)
                    queue = fake.queued.get((method, path))
                    answer = queue.pop(0) if queue else None
                if answer is None:
                    answer = fake.default_answer(request)
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.action == DROP:
                    self.close_connection = True
                    return
                payload = json.dumps(answer.body or {}).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Request-Id", f"req_fake_{len(fake.requests)}")
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeStripe":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, method: str, path: str, *answers: Answer) -> None:
        with self._lock:
            self.queued[(method, path)].extend(answers)

    def to(self, method: str, path: str) -> list[Request]:
        """The requests received for a method and path (a path ending in "/" matches
        every path under it)."""
        if path.endswith("/"):
            return [r for r in self.requests if r.method == method and r.path.startswith(path)]
        return [r for r in self.requests if r.method == method and r.path == path]

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}_fake_{self._counter}"

    def default_answer(self, request: Request) -> Answer:
        form, path = request.form, request.path
        if request.method == "POST" and path == "/v1/customers":
            return Answer(
                body={"id": self._next_id("cus"), "object": "customer", "name": form.get("name")}
            )
        if path.startswith("/v1/customers/"):
            customer_id = path.rsplit("/", 1)[1]
            settings = {"default_payment_method": self.default_payment_method}
            return Answer(
                body={"id": customer_id, "object": "customer", "invoice_settings": settings}
            )
        if request.method == "POST" and path == "/v1/payment_intents":
            amount = int(form["amount"])
            metadata = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
            return Answer(
                body={
                    "id": self._next_id("pi"),
                    "object": "payment_intent",
                    "status": "succeeded",
                    "amount": amount,
                    "amount_received": amount,
                    "currency": form["currency"],
                    "customer": form.get("customer"),
                    "payment_method": form.get("payment_method"),
                    "metadata": metadata,
                }
            )
        if request.method == "GET" and path.startswith("/v1/payment_intents/"):
            intent_id = path.rsplit("/", 1)[1]
            return Answer(
                body={
                    "id": intent_id,
                    "object": "payment_intent",
                    "status": "succeeded",
                    "payment_method": "pm_saved_by_checkout",
                }
            )
        if request.method == "POST" and path == "/v1/refunds":
            return Answer(
                body={
                    "id": self._next_id("re"),
                    "object": "refund",
                    "status": "succeeded",
                    "amount": int(form["amount"]),
                    "payment_intent": form["payment_intent"],
                }
            )
        if request.method == "POST" and path == "/v1/checkout/sessions":
            session_id = self._next_id("cs")
            return Answer(
                body={
                    "id": session_id,
                    "object": "checkout.session",
                    "url": f"https://checkout.stripe.test/c/pay/{session_id}",
                    "status": "open",
                    "payment_status": "unpaid",
                }
            )
        return stripe_error(404, "invalid_request_error", f"Unrecognized request URL ({path})")

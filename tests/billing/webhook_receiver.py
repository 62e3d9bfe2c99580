"""A customer's webhook receiver, for real: an HTTP server on 127.0.0.1 in a
thread (HTTPS when given a certificate). It verifies each request's signature as
a receiver should (with the clock the test sets), answers 400 to a bad one, and
otherwise answers the statuses the test queued (then 200). It counts the
connections made to it, so that a test can see that nothing was."""

import json
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from billing.notifications.webhooks import SIGNATURE_HEADER, webhook_signature_verify
from common.errors import WebhookSignatureError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    # None when the signature verified, else why it did not.
    refused: str | None

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class _CountingServer(ThreadingHTTPServer):
    connections = 0

    def verify_request(self, request, client_address):
        self.connections += 1
        return True


class WebhookReceiver:
    def __init__(self, tls: ssl.SSLContext | None = None):
        self.secret: str | None = None
        self.now: datetime | None = None
        self.statuses: list[int] = []
        # What an answer of 300 or more says, in its reason phrase and body.
        self.error_text = "no"
        self.received: list[Received] = []
        self.scheme = "https" if tls else "http"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                refused = None
                try:
                    webhook_signature_verify(
                        secret=receiver.secret,
                        header=self.headers.get(SIGNATURE_HEADER),
                        body=body,
                        now=receiver.now,
                    )
                except WebhookSignatureError as error:
                    refused = error.message
                status = (
                    400 if refused else (receiver.statuses.pop(0) if receiver.statuses else 200)
                )
                receiver.received.append(Received(dict(self.headers), body, status, refused))
                if status >= 300:
                    answer = receiver.error_text.encode()
                    self.send_response(status, receiver.error_text)
                else:
                    answer = b"ok"
                    self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):
                pass

        self.server = _CountingServer(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hooks"

    @property
    def connections(self) -> int:
        """How many connections were made to the receiver (a TLS one once its
        handshake succeeded)."""
        return self.server.connections

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def events(self) -> list[dict]:
        """The events accepted (signature verified, answered 2xx), in order."""
        return [r.event for r in self.received if 200 <= r.answered < 300]

"""An incoming-webhook receiver as Slack, Teams or Discord runs one, for real: an
HTTP server on 127.0.0.1 in a thread that takes any POST (incoming webhooks are
not signed: their URL is the secret), answers the statuses the test queued (then
200), records what it got and counts the connections made to it."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class _CountingServer(ThreadingHTTPServer):
    connections = 0

    def verify_request(self, request, client_address):
        self.connections += 1
        return True


class ChannelReceiver:
    def __init__(self):
        self.statuses: list[int] = []
        self.received: list[Posted] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.received.append(Posted(self.path, dict(self.headers), body, status))
                answer = b"ok" if status < 300 else b"internal details"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):
                pass

        self.server = _CountingServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def accepted(self) -> list[dict]:
        """The JSON bodies answered 2xx, in order."""
        return [p.json for p in self.received if 200 <= p.answered < 300]

    def start(self) -> "ChannelReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

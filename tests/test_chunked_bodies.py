"""A request body sent chunked (`Transfer-Encoding: chunked`, no Content-Length) is
read, by every server the project runs, for every endpoint: granian as
docs/running.md runs it, the development server as scripts/run.sh runs it, and
gunicorn (scripts/schema_check.sh, the outage drill). Each is started as a real
process on a free port and sent requests with curl. A server that does not end such
a body for the application answers 411, never a 400 that calls the JSON malformed;
and past DATA_UPLOAD_MAX_MEMORY_SIZE a chunked body is a 413 like any other, after
reading at most one byte more than the limit (config.middleware.SizedBodies)."""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection

from billing.models import UsageEvent
from config.devserver import ChunkedBody, MalformedChunks
from config.middleware import SizedBodies
from customers.api_keys import api_key_create
from customers.models import Customer
from plans.services import meter_create
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv" / "bin"
MIB = 1024 * 1024


# The WSGI application's side, without a server


class CountingStream:
    """A body that ends where it ends (as a server de-chunks it), counting what is read;
    each read gives at most `piece` bytes, as a socket may."""

    def __init__(self, size: int, piece: int = 10_000):
        self.left, self.piece, self.read_bytes = size, piece, 0

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size >= 0, "read without a size (granian loses data)"
        count = min(size, self.left, self.piece)
        self.left -= count
        self.read_bytes += count
        return b"x" * count

    def readline(self, size: int = -1) -> bytes:
        raise AssertionError("nothing reads a JSON body by lines")


def wsgi_request(path: str, stream, *, terminated: bool) -> tuple[str, bytes]:
    # Its callers take the `db` fixture: Django's handler looks at the test's
    # connection when a request starts (close_old_connections), whichever test ran
    # before in this process.
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    started = []
    body = b"".join(SizedBodies(WSGIHandler())(environ, lambda s, h: started.append(s)))
    return started[0], body


def test_a_chunked_body_past_the_limit_is_413_after_reading_one_byte_more(db):
    stream = CountingStream(50 * MIB)

    status, body = wsgi_request("/api/v1/events", stream, terminated=True)

    assert status.startswith("413")
    assert json.loads(body)["error"]["type"] == "payload_too_large"
    assert stream.read_bytes == MIB + 1


def test_a_chunked_body_without_the_servers_end_is_411_and_left_unread(db):
    stream = CountingStream(1000)

    status, body = wsgi_request("/api/v1/events", stream, terminated=False)

    assert status.startswith("411")
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request"
    assert "Content-Length" in error["message"]
    assert stream.read_bytes == 0


def test_the_development_servers_chunks_are_read_to_the_last_one():
    framed = b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT"
    connection_stream = io.BytesIO(framed)
    body = io.BufferedReader(ChunkedBody(connection_stream))

    assert body.read(3) + body.read(100) + body.read(5) == b"hello world"
    assert connection_stream.read() == b"NEXT"  # the next request, untouched


@pytest.mark.parametrize(
    "framed",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # a size that is not hexadecimal
        b"\r\nhello\r\n0\r\n\r\n",  # no size
        b"5\r\nhelloEXTRA\r\n0\r\n\r\n",  # data longer than its size
        b"5\nhello\r\n0\r\n\r\n",  # a bare LF
        b"5\r\nhel",  # the connection ends inside a chunk
        b"5\r\nhello\r\n",  # ... before the last chunk
        b"5\r\nhello\r\n0\r\nX-Trailer: 1",  # ... inside the trailer
        b"1" * 5000 + b"\r\n",  # a size line past its limit
    ],
)
def test_the_development_server_refuses_chunks_framed_wrong(framed):
    body = io.BufferedReader(ChunkedBody(io.BytesIO(framed)))

    with pytest.raises(MalformedChunks):
        body.read(100_000)


# Real servers, real processes, on the test database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(kind: str, port: int) -> list[str]:
    """How each server is run: granian as docs/running.md runs it, the development
    server as scripts/run.sh, gunicorn as scripts/schema_check.sh and the drill; and
    Python's own wsgiref server, which leaves a chunked body on the connection."""
    if kind == "granian":
        return [
            *(str(VENV / "granian"), "--interface", "wsgi", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", "1", "--blocking-threads", "1"),
            *("--blocking-threads-idle-timeout", "600", "config.wsgi:application"),
        ]
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", "--noreload", "--insecure", str(port)]
    if kind == "gunicorn":
        return [str(VENV / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    assert kind == "wsgiref"
    return [
        sys.executable,
        "-c",
        "import sys; from wsgiref.simple_server import make_server; "
        "from config.wsgi import application; "
        "make_server('127.0.0.1', int(sys.argv[1]), application).serve_forever()",
        str(port),
    ]


class Server:
    def __init__(self, kind: str, tmp_path: Path):
        database = connection.settings_dict
        self.port = free_port()
        self.log = tmp_path / f"{kind}.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("CELERY_BROKER_URL", "CACHE_URL")  # a Redis of others'
        }
        env |= {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": (
                f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
                f"{database['NAME']}"
            ),
            "BILLING_VAR_DIR": str(tmp_path / "var"),
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "DEBUG": "0",
            "SECRET_KEY": "chunked-bodies-test-only-secret-key",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
        }
        with self.log.open("w") as log:
            self.process = subprocess.Popen(  # noqa: S603 (fixed programs and arguments)
                server_command(kind, self.port), cwd=ROOT, env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while not self._listening():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{kind} did not start: {self.log.read_text()}"
            time.sleep(0.2)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def curl(self, path: str, body: bytes, key: str, *, chunked: bool = True):
        """POST with curl: (status, parsed JSON body)."""
        command = [shutil.which("curl"), "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time"]
        command += ["30", "-H", f"Authorization: Bearer {key}"]
        command += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        if chunked:
            command += ["-H", "Transfer-Encoding: chunked"]
        command.append(f"http://127.0.0.1:{self.port}{path}")
        done = subprocess.run(command, input=body, capture_output=True, check=True)  # noqa: S603
        answer, _, status = done.stdout.rpartition(b"\n")
        return int(status), json.loads(answer)


@pytest.fixture
def served(tmp_path):
    if not shutil.which("curl"):
        pytest.skip("needs curl")
    servers = []

    def start(kind: str) -> Server:
        servers.append(Server(kind, tmp_path))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def batch(*event_ids: str) -> bytes:
    moment = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    events = [
        {
            "id": event_id,
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": moment,
            "properties": {"user": "u1"},
        }
        for event_id in event_ids
    ]
    return json.dumps({"events": events}).encode()


def stored_ids() -> set[str]:
    return set(UsageEvent.objects.values_list("event_id", flat=True))


@pytest.fixture
def catalog(transactional_db):
    CustomerFactory(external_id="acme")
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    _, secret = api_key_create(name="chunked", scopes=["events:write", "read", "admin"])
    return secret


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["granian", "runserver", "gunicorn"])
def test_a_chunked_body_is_read_by_every_server_for_every_endpoint(served, catalog, kind):
    server = served(kind)

    # the events endpoint reads its body itself
    status, answer = server.curl("/api/v1/events", batch("c1", "c2"), catalog)
    assert (status, answer) == (202, {"accepted": 2, "duplicates": 0, "rejected": []})
    assert stored_ids() == {"c1", "c2"}

    # a check, given its fast answer (billing.api.fast_answer), as with a Content-Length
    check = json.dumps({"meter": "prompts", "quantity": "1"}).encode()
    chunked = server.curl("/api/v1/customers/acme/check", check, catalog)
    assert chunked == server.curl("/api/v1/customers/acme/check", check, catalog, chunked=False)
    assert chunked[0] == 200

    # an endpoint read by DRF's parser
    customer = json.dumps({"external_id": "globex", "name": "Globex", "currency": "USD"})
    status, answer = server.curl("/api/v1/customers", customer.encode(), catalog)
    assert (status, answer["external_id"]) == (201, "globex")
    assert Customer.objects.filter(external_id="globex").exists()

    # past the limit: 413, nothing stored
    too_big = batch("c3")[:-2] + b', "pad": "' + b"p" * MIB + b'"}'
    status, answer = server.curl("/api/v1/events", too_big, catalog)
    assert (status, answer["error"]["type"]) == (413, "payload_too_large")
    assert stored_ids() == {"c1", "c2"}

    # and the server goes on serving
    status, _ = server.curl("/api/v1/events", batch("c4"), catalog)
    assert status == 202
    assert stored_ids() == {"c1", "c2", "c4"}


@pytest.mark.postgres
def test_a_server_that_cannot_read_a_chunked_body_answers_411(served, catalog):
    server = served("wsgiref")

    status, answer = server.curl("/api/v1/events", batch("c1"), catalog)

    assert status == 411
    assert answer["error"]["type"] == "invalid_request"
    assert "Content-Length" in answer["error"]["message"]
    assert stored_ids() == set()
    # With a Content-Length, the same server reads it.
    assert server.curl("/api/v1/events", batch("c1"), catalog, chunked=False)[0] == 202
    assert stored_ids() == {"c1"}

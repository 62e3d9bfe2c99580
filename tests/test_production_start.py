"""A production start from a fresh checkout, as docs/running.md gives the steps: the
files git knows (no .mo, which are build output), DEBUG off, a SQLite database and
a var directory of its own, the catalogs compiled, migrate and collectstatic, then
granian serving config.wsgi. A French customer's finalized invoice, fetched through
the API with a key made by create_api_key, is a French PDF. Without the compile
step, the checks, the web server and a Celery worker each refuse with one line that
names the command (config.catalogs), rather than serve English.

The start takes 40 to 70 s (its migrate on SQLite most of all), so the served PDF is
marked `drill` (CI's drill step); the refusals take a few seconds."""

import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The process environment the steps see: nothing of the test run's (its database,
# broker, DEBUG), only what a shell needs.
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
REFUSAL = "Refusing to start with DEBUG off: 4 translation catalog(s) not compiled"
COMPILE = "Run `python scripts/compilemessages.py`."

# A French customer and an invoice of theirs, finalized: what the close does at a
# period's end, through the same services.
FRENCH_INVOICE = """
from datetime import UTC, datetime
from decimal import Decimal

from plans.rating import LineInput
from customers.services import customer_create
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft

customer = customer_create(
    external_id="client-fr",
    name="Client SARL",
    currency="EUR",
    locale="fr",
    address={"line1": "1 rue de Rivoli", "postal_code": "75001", "city": "Paris", "country": "FR"},
)
draft = invoice_write_draft(
    customer=customer,
    subscription=None,
    reason=Invoice.PERIOD,
    period_start=datetime(2026, 10, 1, tzinfo=UTC),
    period_end=datetime(2026, 11, 1, tzinfo=UTC),
    lines=[LineInput("base_fee", "Pro", None, Decimal(1), Decimal(50), Decimal(50))],
    now=datetime(2026, 11, 1, tzinfo=UTC),
)
print(invoice_finalize(invoice=draft, now=datetime(2026, 11, 2, tzinfo=UTC)).pk)
"""


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The files a fresh clone of this tree has (tracked, and new ones not ignored)."""
    tree = tmp_path / "checkout"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # not one deleted from the work tree
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    assert not list(tree.glob("locale/*/LC_MESSAGES/*.mo"))
    return tree


@pytest.fixture
def production(tmp_path) -> dict:
    return {
        **{name: os.environ[name] for name in KEPT if name in os.environ},
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "BILLING_VAR_DIR": str(tmp_path / "var"),
        # Behind a proxy that terminates TLS, as the docs say to set it.
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(tree: Path, env: dict, *command: str) -> subprocess.CompletedProcess:
    """A program of the environment's (python, celery), run in the checkout."""
    return subprocess.run(  # noqa: S603 (the venv's programs, fixed arguments)
        [str(BIN / command[0]), *command[1:]],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def step(tree: Path, env: dict, *command: str) -> str:
    """One documented step, run in the checkout; its output."""
    done = run(tree, env, *command)
    assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return done.stdout


def web_server(tree: Path, env: dict, port: int, log: Path) -> subprocess.Popen:
    """granian as docs/running.md starts it, with one worker."""
    return subprocess.Popen(  # noqa: S603 (the venv's granian, fixed arguments)
        [
            str(BIN / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--blocking-threads",
            "1",
            "config.wsgi:application",
        ],
        cwd=tree,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def get(port: int, path: str, headers: dict) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"X-Forwarded-Proto": "https", **headers})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def wait_until_serving(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"granian exited: {log.read_text()[-3000:]}"
        try:
            if get(port, "/healthz", {})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"granian did not answer /healthz within 60 s: {log.read_text()[-3000:]}")


def pdf_lines(content: bytes) -> list[str]:
    return [
        line
        for page in PdfReader(BytesIO(content)).pages
        for line in page.extract_text().splitlines()
    ]


@pytest.mark.drill
def test_a_production_start_serves_a_french_customer_a_french_pdf(checkout, production, tmp_path):
    # given: the production steps (docs/running.md), the server started
    step(checkout, production, "python", "scripts/compilemessages.py")
    step(checkout, production, "python", "manage.py", "migrate", "--noinput")
    step(checkout, production, "python", "manage.py", "collectstatic", "--noinput")
    shell = ("python", "manage.py", "shell", "-v", "0", "-c", FRENCH_INVOICE)
    invoice_id = int(step(checkout, production, *shell))
    secret = step(checkout, production, "python", "manage.py", "create_api_key", "--name", "t")
    port, log = free_port(), tmp_path / "granian.log"
    server = web_server(checkout, production, port, log)
    try:
        wait_until_serving(server, port, log)

        # when
        status, content_type, body = get(
            port,
            f"/api/v1/invoices/{invoice_id}/pdf",
            {"Host": "127.0.0.1", "Authorization": f"Bearer {secret.strip()}"},
        )
    finally:
        stop(server)

    # then: in French, from its title to its last line
    assert (status, content_type) == (200, "application/pdf"), body[:500]
    lines = pdf_lines(body)
    assert "Facture" in lines
    assert "Invoice" not in lines
    assert any(line.startswith("Date d'émission") for line in lines)


def test_without_the_compile_step_production_refuses_to_start(checkout, production, tmp_path):
    # the checks (every management command: migrate first)
    checked = run(checkout, production, "python", "manage.py", "check", "--deploy")
    assert checked.returncode == 1
    assert checked.stderr.count("(billing.E001) Translation catalog not compiled") == 4
    assert "HINT: Run `python scripts/compilemessages.py`" in checked.stderr

    # the web server: its worker exits with the line, and granian with it
    log = tmp_path / "granian.log"
    server = web_server(checkout, production, free_port(), log)
    try:
        server.wait(timeout=60)
    finally:
        stop(server)
    output = log.read_text()
    assert server.returncode != 0
    [line] = [line for line in output.splitlines() if line.startswith(REFUSAL)]
    assert line.endswith(COMPILE)
    assert "Traceback" not in output

    # a Celery worker
    worker = run(checkout, production, "celery", "-A", "config", "worker", "-Q", "bulk")
    assert worker.returncode == 1
    assert worker.stderr.strip().splitlines() == [line]

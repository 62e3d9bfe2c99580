"""scripts/run.sh points the links in e-mails (settings.BILLING_PUBLIC_URL: the portal's
and the pay links) at the port it serves on: `PORT=8123` gives http://127.0.0.1:8123
unless BILLING_PUBLIC_URL is set. run.sh runs from a copy of itself whose
.venv/bin/python is a fake: at `manage.py migrate` it prints the URL the settings read
in run.sh's environment, then stops the run; every other call does nothing."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

READ_SETTINGS = (
    "from django.conf import settings; print('public url:', settings.BILLING_PUBLIC_URL)"
)


def run_until_migrate(tmp_path: Path, **variables: str) -> list[str]:
    copy = tmp_path / "checkout"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run.sh", copy / "scripts" / "run.sh")
    # Its log format helpers, as they are (LOG_FORMAT unset: plain lines).
    shutil.copy(ROOT / "scripts" / "_log.sh", copy / "scripts" / "_log.sh")
    # What run.sh sources before it starts anything: nothing to install here.
    (copy / "scripts" / "_venv.sh").write_text("venv_setup() { :; }\n")
    (copy / "scripts" / "_fonts.sh").write_text("fonts_setup() { :; }\n")
    python = copy / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "manage.py migrate" ]; then\n'
        f"    PYTHONPATH={shlex.quote(str(ROOT))} DJANGO_SETTINGS_MODULE=config.settings \\\n"
        f"        {shlex.quote(sys.executable)} -c {shlex.quote(READ_SETTINGS)}\n"
        "    exit 3\n"
        "fi\n"
    )
    python.chmod(0o755)
    keep = ("PATH", "HOME", "LANG")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    done = subprocess.run(  # noqa: S603 (bash with the project's run.sh)
        ["bash", str(copy / "scripts" / "run.sh")],  # noqa: S607
        env={**env, "SECRET_KEY": "k" * 50, "BILLING_VAR_DIR": str(tmp_path / "var"), **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith("public url:")]


def test_the_links_lead_to_the_port_run_serves_on(tmp_path):
    assert run_until_migrate(tmp_path, PORT="8123") == ["public url: http://127.0.0.1:8123"]


def test_the_default_port_without_port(tmp_path):
    assert run_until_migrate(tmp_path) == ["public url: http://127.0.0.1:8000"]


def test_a_public_url_set_is_kept(tmp_path):
    found = run_until_migrate(tmp_path, PORT="8123", BILLING_PUBLIC_URL="https://billing.example")

    assert found == ["public url: https://billing.example"]

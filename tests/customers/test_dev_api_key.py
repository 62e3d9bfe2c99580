"""The dev API key scripts/run.sh makes (issue 76: a second run printed
`ModuleNotFoundError: No module named 'customers.selectors'` and made another "dev"
key every time): `ensure_dev_api_key` makes it once, keeps its secret in the key
file, and reuses it on every later run; a new one only when the database does not
know the saved one (a reset, another database, a revoked key)."""

import os
import stat
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from customers.api_keys import api_key_for_secret, api_key_revoke
from customers.models import ApiKey

ROOT = Path(__file__).resolve().parents[2]


def ensure(key_file: Path) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(
        "ensure_dev_api_key", "--name", "dev", "--key-file", str(key_file), stdout=out, stderr=err
    )
    return out.getvalue().strip(), err.getvalue()


def test_a_second_run_reuses_the_dev_key(db, tmp_path):
    key_file = tmp_path / "var" / "dev-api-key.txt"

    first, made = ensure(key_file)
    second, again = ensure(key_file)

    assert ApiKey.objects.filter(name="dev").count() == 1
    assert second == first == key_file.read_text().strip()
    assert api_key_for_secret(first).name == "dev"
    assert "created the API key 'dev'" in made
    assert again == ""
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_key_this_database_does_not_know_is_made_again(db, tmp_path):
    key_file = tmp_path / "dev-api-key.txt"
    key_file.write_text("sk_from_another_database\n")

    made, _ = ensure(key_file)
    api_key_revoke(key=api_key_for_secret(made))
    remade, _ = ensure(key_file)

    assert made != "sk_from_another_database"
    assert remade not in (made, "sk_from_another_database")
    assert api_key_for_secret(remade).name == "dev"
    assert key_file.read_text().strip() == remade


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_run_sh_setup_step_twice_prints_no_traceback_and_makes_one_key(tmp_path):
    """The step as run.sh runs it, a process each time, on this test database."""
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": url, "BILLING_VAR_DIR": str(tmp_path)}
    key_file = tmp_path / "dev-api-key.txt"
    command = [sys.executable, "manage.py", "ensure_dev_api_key", "--name", "dev"]
    command += ["--key-file", str(key_file)]

    runs = [
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        for _ in range(2)
    ]

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
    assert runs[0].stdout == runs[1].stdout == key_file.read_text()
    assert ApiKey.objects.filter(name="dev").count() == 1


def test_run_sh_sets_the_dev_key_up_with_the_command():
    script = (ROOT / "scripts" / "run.sh").read_text()

    assert 'manage.py ensure_dev_api_key --name dev --key-file "$key_file"' in script

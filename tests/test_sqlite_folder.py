"""The folder as scripts/run.sh starts it on the embedded default (SQLite, which writes
the rollups as events are stored): it says it has nothing to fold, stays up (run.sh
stops everything when one of its services exits), and stops on SIGTERM."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_folder_idles_on_sqlite_until_stopped(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DEBUG="1", BILLING_VAR_DIR=str(tmp_path))
    folder = subprocess.Popen(
        [sys.executable, "manage.py", "fold_usage", "--every", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = folder.stdout.readline()
        assert first == (
            "This database (sqlite) writes the rollups as events are stored: "
            "nothing to fold; idling until stopped\n"
        )
        # Still folding (idly) a few turns later.
        with contextlib.suppress(subprocess.TimeoutExpired):
            folder.wait(timeout=3)
        assert folder.returncode is None, folder.stderr.read()

        folder.send_signal(signal.SIGTERM)
        assert folder.wait(timeout=10) == -signal.SIGTERM
    finally:
        if folder.poll() is None:
            folder.kill()
            folder.wait()

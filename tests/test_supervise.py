"""scripts/_supervise.sh, under which scripts/run.sh runs each of its processes: one
that exits is started again after a backoff, with a line in its log and on run.sh's
terminal; SIGTERM stops the process and the supervisor."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUPERVISE = ROOT / "scripts" / "_supervise.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def supervise(tmp_path: Path, name: str, *command: str) -> subprocess.Popen:
    """The supervisor, its output in `log` and its descriptor 3 (run.sh's terminal
    there) on `console`."""
    with (tmp_path / "log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 (a fixed script and test commands)
            [  # noqa: S607
                "bash",
                "-c",
                'exec 3>>"$1"; shift; exec bash "$@"',
                "-",
                str(tmp_path / "console"),
                str(SUPERVISE),
                name,
                *command,
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_process_that_exits_is_started_again_with_a_backoff_and_a_line(tmp_path):
    runs = tmp_path / "runs"
    # given: a process that exits with status 3 at once, each run adding a line
    supervisor = supervise(tmp_path, "worker-urgent", "sh", "-c", f"echo run >> {runs}; exit 3")
    try:
        # when: it has run 3 times (at 0 s, then after waits of 1 and 2 s)
        wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 3, timeout=20)
        # then: the next wait is 4 s, so a second later it has not run again
        time.sleep(1.0)
        assert runs.read_text().splitlines() == ["run"] * 3
        assert supervisor.poll() is None
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=10)
    for output in ("log", "console"):
        lines = (tmp_path / output).read_text().splitlines()
        # (how long each run lasted, 0 s here, can read 1 s on a loaded machine)
        said = [re.sub(r"after \d+ s;", "after N s;", line.split(": ", 1)[1]) for line in lines]
        assert said == [
            "worker-urgent exited (status 3) after N s; starting it again in 1 s (restart 1)",
            "worker-urgent exited (status 3) after N s; starting it again in 2 s (restart 2)",
            "worker-urgent exited (status 3) after N s; starting it again in 4 s (restart 3)",
        ]
    assert supervisor.returncode == 0


def test_sigterm_stops_the_process_and_the_supervisor(tmp_path):
    pid_file = tmp_path / "pid"
    # given: a long-running process under the supervisor
    supervisor = supervise(tmp_path, "beat", "sh", "-c", f"echo $$ > {pid_file}; exec sleep 60")
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10)
    child = int(pid_file.read_text())
    # when: the supervisor is told to stop (as run.sh does at Ctrl-C)
    supervisor.send_signal(signal.SIGTERM)
    # then: it stops its process, is not started again, and exits
    assert supervisor.wait(timeout=10) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert (tmp_path / "log").read_text() == ""

"""scripts/_fonts.sh's fonts_setup, which scripts/run.sh runs first (under set -euo
pipefail) and CI runs as `fonts_setup required`: when another apt-get or dpkg holds the
package lock, run.sh says so and goes on without the fonts; CI still fails. apt-get,
fc-list and id are fakes on PATH: the fonts missing, the user root, the lock held."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

LOCK = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"


def fakes(tmp_path: Path, apt_get: str) -> Path:
    """A folder of fakes: id (root), fc-list (no font), apt-get running `apt_get`
    and noting its arguments in apt.calls."""
    folder = tmp_path / "bin"
    folder.mkdir()
    scripts = {
        "id": "echo 0",
        "fc-list": "exit 0",
        "apt-get": f'echo "$*" >> {tmp_path / "apt.calls"}\n{apt_get}',
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


def fonts_setup(tmp_path: Path, folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    """fonts_setup as run.sh runs it (set -euo pipefail), then a line saying the script
    went on."""
    script = (
        f"set -euo pipefail; . scripts/_fonts.sh; fonts_setup {' '.join(arguments)}; echo went on"
    )
    return subprocess.run(  # noqa: S603 (bash with a fixed script)
        ["bash", "-c", script],  # noqa: S607
        cwd=ROOT,
        env={"PATH": f"{folder}:/usr/bin:/bin", "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_says_another_package_manager_holds_the_lock_and_goes_on(tmp_path):
    folder = fakes(tmp_path, f'echo "{LOCK}" >&2; exit 100')

    done = fonts_setup(tmp_path, folder)

    assert (done.returncode, done.stdout) == (0, "went on\n"), done.stderr
    assert (
        "warning: another package manager holds the lock; going on without the fonts: " + LOCK
    ) in done.stderr
    # No update after a refusal for the lock (it would be refused too), no file left.
    assert (tmp_path / "apt.calls").read_text().splitlines() == [
        "install -y -q --no-install-recommends fonts-dejavu-core fonts-noto-core fonts-noto-cjk"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["apt.calls", "bin"]


def test_ci_fails_when_the_lock_is_held(tmp_path):
    folder = fakes(tmp_path, f'echo "{LOCK}" >&2; exit 100')

    done = fonts_setup(tmp_path, folder, "required")

    assert done.returncode == 1
    assert done.stdout == ""
    assert (
        "error: another package manager holds the lock; the fonts are not installed: " + LOCK
        in (done.stderr)
    )


def test_another_apt_failure_is_tried_again_after_an_update_then_run_goes_on(tmp_path):
    # given: stale package lists, which the update does not mend
    folder = fakes(
        tmp_path,
        '[ "$1" = update ] && exit 0\n'
        'echo "E: Unable to locate package fonts-noto-cjk" >&2\n'
        "exit 100",
    )

    done = fonts_setup(tmp_path, folder)

    assert (done.returncode, done.stdout) == (0, "went on\n"), done.stderr
    assert "lock" not in done.stderr
    assert "warning: the invoice PDFs lack fonts for some scripts" in done.stderr
    calls = (tmp_path / "apt.calls").read_text().splitlines()
    assert [call.split()[0] for call in calls] == ["install", "update", "install"]

#!/usr/bin/env bash
# The README's "test" command: installs requirements.lock into .venv if needed, then
# runs pytest with the arguments given (e.g. `bash scripts/test.sh -q tests/plans`).
# SQLite by default; set DATABASE_URL=postgres://... to run the PostgreSQL tests too.
# On every core (pytest-xdist: one process a core, each with its own test database and,
# on Redis, its own broker database; tests/conftest.py). TEST_WORKERS=0 runs in this
# process (a debugger, `-x` stopping at once); `-n 4` among the arguments overrides it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh
venv_setup
# The fonts run.sh installs (as root on Debian or Ubuntu), so that the PDFs and the
# browser tests' pages are drawn with the fonts they are drawn with in CI.
# shellcheck source=scripts/_fonts.sh
. scripts/_fonts.sh
fonts_setup
# The translation catalogs (.mo) are build output: compiled from the .po files.
.venv/bin/python scripts/compilemessages.py
exec .venv/bin/pytest -n "${TEST_WORKERS:-auto}" "$@"

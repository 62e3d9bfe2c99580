#!/usr/bin/env bash
# The README's "test" command: installs requirements.lock into .venv if needed, then
# runs pytest with the arguments given (e.g. `bash scripts/test.sh -q tests/plans`).
# SQLite by default; set DATABASE_URL=postgres://... to run the PostgreSQL tests too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/_venv.sh
. scripts/_venv.sh
venv_setup
# The translation catalogs (.mo) are build output: compiled from the .po files.
.venv/bin/python scripts/compilemessages.py
exec .venv/bin/pytest "$@"

# Sourced by scripts/run.sh, scripts/test.sh and .ci/run; not run on its own.
#
# venv_setup: make sure .venv exists and holds exactly what requirements.lock pins,
# and the e-invoice rule files of requirements-rules.lock (installed without their
# package's dependencies). The two locks' hash is kept in .venv after a successful
# install, so the (slow) pip steps only run again when a lock changes or the
# virtualenv is new.
# PYTHON chooses the interpreter that creates .venv (default python3, 3.11 or newer).

venv_setup() {
    local root venv python lock rules stamp want
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    venv="$root/.venv"
    python=${PYTHON:-python3}
    lock="$root/requirements.lock"
    rules="$root/requirements-rules.lock"
    stamp="$venv/.requirements.lock.sha256"

    # A virtualenv whose interpreter no longer starts (Python upgraded or removed) is rebuilt.
    if [[ -e "$venv" ]] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        echo "== .venv is broken; recreating it" >&2
        rm -rf -- "$venv"
    fi
    if [[ ! -e "$venv" ]]; then
        if ! command -v "$python" >/dev/null 2>&1; then
            echo "error: $python not found; install Python 3.11 or newer (or set PYTHON)" >&2
            return 1
        fi
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "error: $python is $("$python" -V 2>&1); Python 3.11 or newer is needed" >&2
            return 1
        fi
        echo "== creating .venv with $("$python" -V 2>&1)" >&2
        if ! "$python" -m venv "$venv"; then
            rm -rf -- "$venv"
            echo "error: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
            return 1
        fi
    fi

    want=$("$venv/bin/python" -c \
        'import hashlib, sys; print(hashlib.sha256(b"".join(open(p, "rb").read() for p in sys.argv[1:])).hexdigest())' \
        "$lock" "$rules")
    if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "== installing requirements.lock into .venv" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check -r "$lock" >&2 || return 1
    echo "== installing requirements-rules.lock into .venv (without dependencies)" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-deps --require-hashes \
        -r "$rules" >&2 || return 1
    echo "$want" >"$stamp"
}

"""The project's version, as pyproject.toml says it (CHANGELOG.md has what each release
brought and how to upgrade to it): /healthz answers it, the image carries it as a
label, and the metrics as `billing_build_info`. Read from the checkout's
pyproject.toml, else from the installed distribution's metadata (`pip install .`)."""

import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
DISTRIBUTION = "usage-billing"


def project_version() -> str:
    try:
        with PYPROJECT.open("rb") as file:
            return tomllib.load(file)["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION = project_version()

"""The files the development commands keep a secret in (ensure_dev_admin's password,
ensure_dev_api_key's key): read stripped, written readable by their owner only."""

import os
from pathlib import Path


def read_text(path: Path) -> str:
    """The file's text, stripped; "" when there is no file."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def write_private(path: Path, text: str) -> None:
    """Write `text` (and a newline) to `path`, mode 0600, making its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")

"""The compiled translation catalogs, checked before production serves anything.

The .mo files Django's gettext reads are build output (scripts/compilemessages.py),
so an install that skips the step serves every French, German, Spanish and
Japanese PDF, email and page in English without a word of complaint. A catalog
whose .mo is missing or older than its .po is stale: the system check (`manage.py
check`, `migrate` and every other command that checks) reports it, an error when
DEBUG is off, and the web server (config.wsgi) and the Celery worker
(config.celery) refuse to start with DEBUG off. A stat of each file, nothing read.
"""

import sys
from pathlib import Path

from django.conf import settings
from django.core import checks

COMPILE_COMMAND = "python scripts/compilemessages.py"
# A .po this much newer than its .mo is stale. Not zero: installing a wheel writes
# each file at the time it is extracted, the .mo a moment before the .po beside it.
EDITED_AFTER_NS = 2 * 10**9


def stale_catalogs(locale_dirs=None) -> list[str]:
    """Each catalog of the locale directories (settings.LOCALE_PATHS unless given)
    whose .mo is missing or older than its .po, as "<po path>: <what>"."""
    found = []
    for locale_dir in settings.LOCALE_PATHS if locale_dirs is None else locale_dirs:
        for po_path in sorted(Path(locale_dir).glob("*/LC_MESSAGES/*.po")):
            mo_path = po_path.with_suffix(".mo")
            try:
                compiled_at = mo_path.stat().st_mtime_ns
            except FileNotFoundError:
                found.append(f"{mo_path}: missing")
                continue
            if po_path.stat().st_mtime_ns - compiled_at > EDITED_AFTER_NS:
                found.append(f"{mo_path}: older than its .po")
    return found


def refusal(stale: list[str]) -> str:
    """The one line a production process refuses to start with."""
    return (
        f"Refusing to start with DEBUG off: {len(stale)} translation catalog(s) not "
        f"compiled ({stale[0]}{', ...' if len(stale) > 1 else ''}): their languages' "
        f"documents would come out in English. Run `{COMPILE_COMMAND}`."
    )


def refuse_stale_catalogs() -> None:
    """Exit the process with refusal()'s line when DEBUG is off and a catalog is
    stale; return at once otherwise."""
    if settings.DEBUG:
        return
    stale = stale_catalogs()
    if stale:
        print(refusal(stale), file=sys.stderr, flush=True)
        raise SystemExit(1)


@checks.register(checks.Tags.translation)
def check_catalogs_compiled(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """billing.E001 with DEBUG off (a warning, billing.W001, in development) for
    each stale catalog."""
    level, code = (
        (checks.Warning, "billing.W001") if settings.DEBUG else (checks.Error, "billing.E001")
    )
    return [
        level(
            f"Translation catalog not compiled: {problem}; its language's documents "
            "would come out in English.",
            hint=(
                f"Run `{COMPILE_COMMAND}` after each install or upgrade (before "
                "`pip install .`, which installs the .mo files it finds)."
            ),
            id=code,
        )
        for problem in stale_catalogs()
    ]

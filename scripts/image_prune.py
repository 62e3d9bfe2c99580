"""A build step of the image (Containerfile), run in its build stage: takes out of the
virtual environment what the running services never read, so that the image carries
the project and not its installers:

- pip and setuptools (the image installs nothing at run time);
- the translations and locale data of languages the project does not speak: the
  packages' `locale/<language>/` folders (Django's, its contrib apps', DRF's, ...)
  and Babel's CLDR files, except those of common.customer_text.LANGUAGES (and
  their regional variants, and Babel's root that every locale inherits from).

Then it checks what it kept: each language's CLDR data and Django's formats load.

    DEBUG=1 python scripts/image_prune.py /opt/venv
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"no single site-packages under {venv}: {found}")
    return found[0]


def spoken(name: str, languages: set[str]) -> bool:
    """Whether a locale's name (fr, fr_CA, es-419, zh_Hant_TW) is of a language kept."""
    return re.split(r"[_\-.]", name, maxsplit=1)[0].lower() in languages


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prune(packages: Path, languages: set[str]) -> int:
    """Remove the translations of other languages; the bytes removed."""
    removed = 0
    for locale in packages.rglob("locale"):
        if not locale.is_dir():
            continue
        for child in locale.iterdir():
            # A language's folder holds LC_MESSAGES or formats (Django's conf/locale).
            if not child.is_dir() or child.name == "__pycache__" or spoken(child.name, languages):
                continue
            if not ((child / "LC_MESSAGES").is_dir() or (child / "formats.py").exists()):
                continue
            removed += folder_size(child)
            shutil.rmtree(child)
    cldr = packages / "babel" / "locale-data"
    if cldr.is_dir():
        for data in cldr.glob("*.dat"):
            if data.stem != "root" and not spoken(data.stem, languages):
                removed += data.stat().st_size
                data.unlink()
    return removed


def main(argv: list[str]) -> int:
    venv = Path(argv[1] if len(argv) > 1 else "/opt/venv")
    python = venv / "bin" / "python"
    packages = site_packages(venv)
    before = folder_size(packages)
    subprocess.run(  # noqa: S603
        [str(python), "-m", "pip", "uninstall", "-q", "-y", "pip", "setuptools"], check=True
    )

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from common.customer_text import LANGUAGES

    languages = set(LANGUAGES)
    prune(packages, languages)
    # What was kept still loads, in the image's own Python.
    subprocess.run(  # noqa: S603
        [
            str(python),
            "-c",
            "import sys; from babel import Locale; from django.conf.locale import LANG_INFO; "
            "[Locale.parse(code).territories['FR'] for code in sys.argv[1:]]",
            *sorted(languages),
        ],
        check=True,
    )
    after = folder_size(packages)
    print(
        f"{packages}: {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB "
        f"(pip, setuptools and the languages but {', '.join(sorted(languages))} removed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

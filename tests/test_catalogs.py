"""The compiled translation catalogs (config.catalogs): a .mo missing or older than
its .po is stale, an error of the system check with DEBUG off (a warning in
development), and scripts/compilemessages.py leaves none stale, even when the .po
changed where the .mo does not look."""

import importlib.util
import os
from pathlib import Path

from django.core import checks

from config.catalogs import check_catalogs_compiled, stale_catalogs

ROOT = Path(__file__).resolve().parent.parent
PO = (
    'msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    'msgid "Invoice"\nmsgstr "%s"\n'
)


def _compiler():
    spec = importlib.util.spec_from_file_location(
        "compilemessages", ROOT / "scripts" / "compilemessages.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compilemessages = _compiler()


def catalog(locale_dir: Path, language: str, text: str = "Facture") -> Path:
    po = locale_dir / language / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO % text, encoding="utf-8")
    return po


def age(path: Path, seconds: float) -> None:
    """Date the file this many seconds before its time now."""
    at = path.stat().st_mtime_ns - int(seconds * 10**9)
    os.utime(path, ns=(at, at))


def test_a_catalog_without_its_mo_is_stale(tmp_path):
    po = catalog(tmp_path, "fr")

    assert stale_catalogs([tmp_path]) == [f"{po.with_suffix('.mo')}: missing"]


def test_a_mo_older_than_its_po_is_stale(tmp_path):
    # given: compiled, then the .po edited a minute later
    fr, de = catalog(tmp_path, "fr"), catalog(tmp_path, "de", "Rechnung")
    compilemessages.compile_all([tmp_path])
    age(fr.with_suffix(".mo"), 60)

    assert stale_catalogs([tmp_path]) == [f"{fr.with_suffix('.mo')}: older than its .po"]
    assert de.with_suffix(".mo").exists()


def test_a_mo_written_a_moment_before_its_po_is_compiled(tmp_path):
    # As a wheel's install writes them: django.mo, then django.po, a millisecond apart.
    po = catalog(tmp_path, "fr")
    compilemessages.compile_all([tmp_path])
    age(po.with_suffix(".mo"), 0.001)

    assert stale_catalogs([tmp_path]) == []


def test_compiling_again_dates_an_unchanged_mo_after_its_po(tmp_path):
    # given: the .po changed where the .mo does not look (a comment), after compiling
    po = catalog(tmp_path, "fr")
    compilemessages.compile_all([tmp_path])
    po.write_text("# a translator's note\n" + po.read_text(encoding="utf-8"), encoding="utf-8")
    age(po.with_suffix(".mo"), 60)
    assert stale_catalogs([tmp_path]) != []

    # when
    written = compilemessages.compile_all([tmp_path])

    # then: not rewritten, but current
    assert written == []
    assert stale_catalogs([tmp_path]) == []


def test_the_check_is_an_error_with_debug_off_naming_the_command(settings, tmp_path):
    po = catalog(tmp_path, "fr")
    settings.LOCALE_PATHS = [tmp_path]
    settings.DEBUG = False

    [error] = check_catalogs_compiled()

    assert isinstance(error, checks.Error)
    assert error.id == "billing.E001"
    assert str(po.with_suffix(".mo")) in error.msg
    assert "python scripts/compilemessages.py" in error.hint


def test_the_check_only_warns_in_development(settings, tmp_path):
    catalog(tmp_path, "fr")
    settings.LOCALE_PATHS = [tmp_path]
    settings.DEBUG = True

    [warning] = check_catalogs_compiled()

    assert warning.level == checks.WARNING
    assert warning.id == "billing.W001"


def test_the_check_passes_once_compiled(settings, tmp_path):
    catalog(tmp_path, "fr")
    compilemessages.compile_all([tmp_path])
    settings.LOCALE_PATHS = [tmp_path]
    settings.DEBUG = False

    assert check_catalogs_compiled() == []


def test_the_check_is_registered_with_djangos(settings, tmp_path):
    catalog(tmp_path, "fr")
    settings.LOCALE_PATHS = [tmp_path]
    settings.DEBUG = False

    found = checks.run_checks(tags=[checks.Tags.translation])

    assert [message.id for message in found] == ["billing.E001"]

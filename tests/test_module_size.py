"""No application module over 500 lines (issue 48): a module that grows past it is
split by concern, into modules whose names say what is inside. Migrations are
written by makemigrations and left out."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("billing", "plans", "invoices", "wallets", "customers", "config")
MAX_LINES = 500


def modules_over(root: Path, packages=PACKAGES, limit: int = MAX_LINES) -> dict[str, int]:
    """The application's Python modules longer than `limit` lines, by path from
    `root`, with their line counts."""
    over = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                over[path.relative_to(root).as_posix()] = lines
    return over


def test_the_size_check_finds_a_long_module_and_skips_migrations(tmp_path):
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    (tmp_path / "app" / "short.py").write_text("x = 1\n" * 500)
    (tmp_path / "app" / "long.py").write_text("x = 1\n" * 501)
    (tmp_path / "app" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 900)

    assert modules_over(tmp_path, packages=("app",)) == {"app/long.py": 501}


def test_no_application_module_is_over_500_lines():
    over = modules_over(ROOT)

    assert over == {}, f"split these by concern (at most {MAX_LINES} lines each): {over}"

"""A module is one concern (issue 74): one that grows past 800 lines says in its
docstring why it stays whole, in a sentence with the words "stays whole", or
is split by concern into modules whose names say what is inside. Migrations
are written by makemigrations and left out."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("billing", "plans", "invoices", "wallets", "customers", "config")
LONG = 800
# A sentence ends at a full stop, a question or exclamation mark, or a colon
# or semicolon before the next clause.
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def says_why_it_stays_whole(source: str) -> bool:
    """Whether the module's docstring has a sentence with the words "stays whole"."""
    docstring = ast.get_docstring(ast.parse(source)) or ""
    sentences = SENTENCE_END.split(" ".join(docstring.split()))
    return any(re.search(r"\bstays whole\b", sentence) for sentence in sentences)


def long_modules_unexplained(root: Path, packages=PACKAGES, limit: int = LONG) -> dict[str, int]:
    """The application's Python modules longer than `limit` lines whose docstring
    does not say why they stay whole, by path from `root`, with their line counts."""
    unexplained = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            source = path.read_text(encoding="utf-8")
            lines = len(source.splitlines())
            if lines > limit and not says_why_it_stays_whole(source):
                unexplained[path.relative_to(root).as_posix()] = lines
    return unexplained


def test_the_check_finds_a_long_module_that_does_not_say_why(tmp_path):
    app = tmp_path / "app"
    (app / "migrations").mkdir(parents=True)
    body = "x = 1\n" * 801
    (app / "short.py").write_text('"""Short."""\n' + "x = 1\n" * 799)
    (app / "long.py").write_text('"""The rates, read whole."""\n' + body)
    (app / "whole.py").write_text(
        '"""The rates.\n\nIt stays whole: the grid and its reader are one format."""\n' + body
    )
    (app / "words.py").write_text('"""Nothing stays here; whole is another word."""\n' + body)
    (app / "migrations" / "0001_initial.py").write_text(body)

    assert long_modules_unexplained(tmp_path, packages=("app",)) == {
        "app/long.py": 802,
        "app/words.py": 802,
    }


def test_a_module_over_800_lines_says_why_it_stays_whole():
    unexplained = long_modules_unexplained(ROOT)

    assert unexplained == {}, (
        f"over {LONG} lines without a docstring sentence saying why it stays whole: "
        f"split these by concern, or say why in their docstring: {unexplained}"
    )

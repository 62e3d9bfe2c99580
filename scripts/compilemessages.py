#!/usr/bin/env python3
"""Compile the project's translation catalogs: every locale/<lang>/LC_MESSAGES/*.po
into the .mo file next to it, which Django's gettext reads.

Our own compiler, on the standard library alone, so that neither a developer's
machine nor CI needs GNU gettext (Django's compilemessages runs its msgfmt). The
.mo files are build output (.gitignore'd): scripts/test.sh, scripts/run.sh, .ci/run
and the production steps (docs/running.md) run this first. A .mo is rewritten only
when its content changes; one left as it was is dated after its .po, as the check
that refuses a production start with stale catalogs (config.catalogs) expects.

What it reads is the PO subset that makemessages writes and translators edit:
comments (a "#, fuzzy" flag leaves an entry out, as msgfmt does), msgctxt, msgid,
msgid_plural, msgstr and msgstr[N], each a string possibly continued on the
lines below it. Untranslated entries are left out, so Django falls back to the
English text.

Usage: python scripts/compilemessages.py [LOCALE_DIR ...]  (default: ./locale)
"""

import ast
import struct
import sys
from pathlib import Path

MO_MAGIC = 0x950412DE
CONTEXT_SEPARATOR = "\x04"


class PoError(ValueError):
    pass


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise PoError(f"{where}: expected a quoted string, got {text!r}")
    try:
        # A PO string is a C string: Python's literal syntax reads its escapes.
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError) as error:
        raise PoError(f"{where}: bad string {text!r}") from error
    if not isinstance(value, str):
        raise PoError(f"{where}: bad string {text!r}")
    return value


def parse_po(text: str, name: str = "<po>") -> list[dict]:
    """The entries of a PO file, each {"msgctxt", "msgid", "msgid_plural",
    "msgstr" (a list: one form, or one per plural form), "fuzzy"}."""
    entries: list[dict] = []
    entry: dict = {}
    field: str | None = None
    flags: set[str] = set()

    def finish() -> None:
        nonlocal entry, field, flags
        if "msgid" in entry:
            entry["fuzzy"] = "fuzzy" in flags
            entries.append(entry)
        elif entry:
            raise PoError(f"{name}: an entry without msgid")
        entry, field, flags = {}, None, set()

    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}"
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            # A comment starts the next entry (if the last one is complete).
            if "msgstr" in entry:
                finish()
            if line.startswith("#,"):
                flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith('"'):
            if field is None:
                raise PoError(f"{where}: a string continued with nothing before it")
            value = _unquote(line, where)
            if field.startswith("msgstr["):
                entry["msgstr"][int(field[7:-1])] += value
            else:
                entry[field] += value
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgctxt", "msgid") and "msgstr" in entry:
            finish()
        if keyword in ("msgctxt", "msgid", "msgid_plural"):
            if keyword in entry:
                raise PoError(f"{where}: {keyword} twice in one entry")
            entry[keyword] = _unquote(rest, where)
            field = keyword
        elif keyword == "msgstr":
            entry["msgstr"] = [_unquote(rest, where)]
            field = "msgstr[0]"
        elif keyword.startswith("msgstr[") and keyword.endswith("]"):
            index = int(keyword[7:-1])
            forms = entry.setdefault("msgstr", [])
            if index != len(forms):
                raise PoError(f"{where}: {keyword} out of order")
            forms.append(_unquote(rest, where))
            field = keyword
        else:
            raise PoError(f"{where}: unexpected {keyword!r}")
    finish()
    return entries


def mo_bytes(entries: list[dict]) -> bytes:
    """A GNU .mo catalog of the translated, non-fuzzy entries (the header, msgid
    "", always), keys sorted as gettext expects them; no hash table."""
    messages: dict[bytes, bytes] = {}
    for entry in entries:
        forms = entry.get("msgstr", [""])
        header = entry["msgid"] == "" and "msgctxt" not in entry
        if not header and (entry["fuzzy"] or not all(forms)):
            continue
        if header:
            # As msgfmt does: the catalog's creation time stays out of the .mo.
            forms = [
                "".join(
                    line
                    for line in form.splitlines(keepends=True)
                    if not line.startswith("POT-Creation-Date:")
                )
                for form in forms
            ]
        key = entry["msgid"]
        if "msgid_plural" in entry:
            key += "\0" + entry["msgid_plural"]
        if "msgctxt" in entry:
            key = entry["msgctxt"] + CONTEXT_SEPARATOR + key
        messages[key.encode()] = "\0".join(forms).encode()
    keys = sorted(messages)
    count = len(keys)
    header_size = 7 * 4
    originals_at = header_size
    translations_at = originals_at + count * 8
    data_at = translations_at + count * 8
    tables: list[bytes] = [b"", b""]
    data = bytearray()
    for table, strings in ((0, keys), (1, [messages[key] for key in keys])):
        for string in strings:
            tables[table] += struct.pack("<II", len(string), data_at + len(data))
            data += string + b"\0"
    head = struct.pack("<7I", MO_MAGIC, 0, count, originals_at, translations_at, 0, data_at)
    return head + tables[0] + tables[1] + bytes(data)


def compile_catalog(po_path: Path) -> bool:
    """Write the .mo next to a .po; True when it was (re)written."""
    content = mo_bytes(parse_po(po_path.read_text(encoding="utf-8"), str(po_path)))
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and mo_path.read_bytes() == content:
        # The .po was edited where the .mo does not look (a comment, an entry not yet
        # translated), or checked out after it: compiled all the same.
        if mo_path.stat().st_mtime_ns < po_path.stat().st_mtime_ns:
            mo_path.touch()
        return False
    temporary = mo_path.with_suffix(".mo.tmp")
    temporary.write_bytes(content)
    temporary.replace(mo_path)
    return True


def compile_all(locale_dirs: list[Path]) -> list[Path]:
    """Compile every catalog under the locale directories; the .mo files written."""
    written = []
    for locale_dir in locale_dirs:
        for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
            if compile_catalog(po_path):
                written.append(po_path.with_suffix(".mo"))
    return written


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    locale_dirs = [Path(arg) for arg in argv] or [root / "locale"]
    try:
        written = compile_all(locale_dirs)
    except (PoError, OSError, UnicodeDecodeError) as error:
        print(f"compilemessages: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"compiled {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

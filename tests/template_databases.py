"""Each test process's database copied from one migrated template instead of
migrated on its own: every migration takes about 50 s of CPU on either database,
once per test process and once more for each targeted run, while a copy takes well
under a second.

The template is keyed by what the migrations make the schema and the seeded rows
from: the migration files, every project module they import (models, the usage
folding's views, the seed values' code, however far the imports go), the seller
settings the first billing entity is seeded from, the database's kind, Django's
version and the locked requirements. Any change to one of them makes a new key,
so a template is never older than the code that would migrate it. The first test
process to need a key builds it (every migration, under a lock the others wait on)
and the others copy it; a later run with the same key copies it at once. Templates
of other keys are dropped when a new one is built.

PostgreSQL: a database `<test name>_tpl_<key>`, each test database made from it
(`CREATE DATABASE ... TEMPLATE`, Django's TEST TEMPLATE setting). SQLite: a file
under var/test-templates/, copied into the test process's in-memory database (its
backup API) before Django's migrate, which then finds nothing to do.

`TEST_DB_TEMPLATE=0` turns it off: each test process migrates its own database, as
Django does."""

import ast
import fcntl
import hashlib
import os
import sqlite3
from contextlib import contextmanager, suppress
from pathlib import Path

from django.db import OperationalError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = frozenset({"billing", "common", "config", "customers", "invoices", "plans", "wallets"})
SQLITE_TEMPLATES = ROOT / "var" / "test-templates"
# pg_advisory_lock's key: "billing test template".
LOCK_KEY = 0x62696C6C


def enabled() -> bool:
    return os.environ.get("TEST_DB_TEMPLATE", "1") not in ("0", "false", "no")


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _project_imports(path: Path) -> list[Path]:
    found = []
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c`: c may be a module of its own.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES and (module := _module_file(name)):
                found.append(module)
    return found


def template_key(vendor: str) -> str:
    """The key of the schema and seeded rows the migrations make (the docstring says
    of what)."""
    import django
    from django.conf import settings

    seen: set[Path] = set()
    waiting = sorted(ROOT.glob("*/migrations/0*.py"))
    while waiting:
        path = waiting.pop()
        if path not in seen:
            seen.add(path)
            waiting.extend(_project_imports(path))
    digest = hashlib.sha256()
    for path in sorted(seen):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update((ROOT / "requirements.lock").read_bytes())
    digest.update(f"{vendor} {django.__version__} {settings.BILLING_SELLER!r}".encode())
    return digest.hexdigest()[:12]


def _migrate_into(connection, name) -> None:
    """Every migration into the database `name` through this connection's settings,
    as Django's create_test_db does, the settings given back after."""
    from django.core.management import call_command

    before = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False, database=connection.alias)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = before


def prepare(connection) -> None:
    """Make this process's test database come from the template of today's key,
    building the template first if no process has."""
    if not enabled():
        return
    if connection.vendor == "postgresql":
        _prepare_postgresql(connection)
    elif connection.vendor == "sqlite":
        _prepare_sqlite(connection)


def _prepare_postgresql(connection) -> None:
    test_name = connection.creation._get_test_db_name()
    template = f"{test_name.rsplit('_gw', 1)[0]}_tpl_{template_key('postgresql')}"
    quote = connection.ops.quote_name
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template])
            if cursor.fetchone() is None:
                building = f"{template}_building"
                cursor.execute(f"DROP DATABASE IF EXISTS {quote(building)}")
                cursor.execute(f"CREATE DATABASE {quote(building)}")
                _migrate_into(connection, building)
                cursor.execute(f"ALTER DATABASE {quote(building)} RENAME TO {quote(template)}")
                _drop_other_postgresql_templates(cursor, template, quote)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    # Django makes the test database from it (dropping one left by a run cut short).
    connection.settings_dict.setdefault("TEST", {})["TEMPLATE"] = template


def _drop_other_postgresql_templates(cursor, template: str, quote) -> None:
    prefix = template.rsplit("_tpl_", 1)[0] + "_tpl_"
    cursor.execute(
        "SELECT datname FROM pg_database WHERE left(datname, %s) = %s AND datname <> %s",
        [len(prefix), prefix, template],
    )
    for (name,) in cursor.fetchall():
        # One in use by a run of another checkout is kept.
        with suppress(OperationalError):
            cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")


@contextmanager
def _file_lock(path: Path):
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_sqlite(connection) -> None:
    if connection.settings_dict.get("TEST", {}).get("NAME") not in (None, ":memory:"):
        return
    SQLITE_TEMPLATES.mkdir(parents=True, exist_ok=True)
    template = SQLITE_TEMPLATES / f"{template_key('sqlite')}.sqlite3"
    with _file_lock(SQLITE_TEMPLATES / ".lock"):
        if not template.exists():
            building = template.with_suffix(".building")
            building.unlink(missing_ok=True)
            _migrate_into(connection, str(building))
            building.replace(template)
            for other in SQLITE_TEMPLATES.glob("*.sqlite3"):
                if other != template:
                    other.unlink(missing_ok=True)
    creation = connection.creation
    create = creation._create_test_db

    def create_from_template(verbosity, autoclobber, keepdb=False):
        # The in-memory database Django names, filled from the template before its
        # migrate: Django keeps this connection (and so the memory) open.
        name = create(verbosity, autoclobber, keepdb)
        connection.settings_dict["NAME"] = name
        connection.ensure_connection()
        with sqlite3.connect(template) as source:
            source.backup(connection.connection)
        return name

    creation._create_test_db = create_from_template

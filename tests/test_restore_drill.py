"""The restore drill: a backup (pg_dump of an exported snapshot) taken while 4 clients
post event batches through gunicorn and a close is under way (its periods closed, its
finalization waiting for the invoice sequence the drill holds for that moment), with
a worker rendering PDFs and sending emails; the source goes on (the close numbers its
invoices, more credit purchases are invoiced, PDFs are stored, emails sent); the dump is
restored into a new database, the documents folder copied beside it with PDFs missing,
the restore step run (manage.py after_restore), and the application started on it,
with sending paused until `after_restore --resume`.

It holds when: every table of invoices, wallets, their ledger, the journal and the
usage events is, row for row, what the source held at the snapshot (read in the
snapshot itself, which the drill keeps open), the PDFs' recorded files aside; every
event batch acknowledged before the snapshot is there; each missing PDF is rendered
again byte-identical to the source's file; no email the source sent is sent again
(every email and alert task is sent to the restored copy's worker once more); every
invoice the restored copy numbers (the rest of the close, a new purchase) has a
number above every number the source issued, and no invoice or email it writes takes
an id the source gave after the snapshot (Stripe's idempotency keys are made of them);
its /readyz answers ready. And while sending is paused after the restore step, the
restored copy's worker and close run (the close bills again what the backup lost)
and not one e-mail leaves; `after_restore --status` lists each number the backup
lost beside the one replacing it, by the customer's own id; after
`after_restore --resume`, each new number is e-mailed exactly once, and no number the
source e-mailed. Prints the figures. Takes a few minutes (most of it migrations and
PDF renders).

    bash scripts/test.sh -m drill tests/test_restore_drill.py

Marked `drill`, so the default run leaves it out; CI runs it in its Drill step.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from config.celery import QUEUES
from tests.test_outage_drill import (
    CLIENTS,
    ROOT,
    VENV,
    Tally,
    ThrowawayPostgres,
    answers,
    free_port,
    listening,
    post_batches,
    postgres_bindir,
    processes_stop,
    spawn,
    unavailable,
    wait_until,
)

pytestmark = pytest.mark.drill

CLOSING = 30  # customers whose last month closes during the drill
LATE = 4  # credit purchases invoiced while the worker is stopped, just before the snapshot
AFTER = 4  # and after the snapshot, on the source
LOST_FILES = 8  # PDFs the restored documents folder lacks
LOAD = 3.0  # seconds of ingestion before the snapshot, and after it
SETTLE = 240.0  # at most this long for a worker to render and send what is due
# What is compared, row for row, with the snapshot; a document's recorded PDF aside
# (the restore step gives a document its file stored after the snapshot).
COMPARED = ("invoices_", "wallets_", "billing_journal", "billing_usageevent")
NOT_COMPARED = {"invoices_documentemail", "invoices_invoicesequence", "invoices_pdfrender"}
PDF_COLUMNS = {"pdf_file", "pdf_sha256", "pdf_rendered_at"}
NUMBER = re.compile(r"\b((?:INV|CN)-\d{4})-(\d{6})\b")


def seed() -> None:
    """Run in a subprocess on the drill's database: 8 customers drawing prepaid
    credits (the ingestion's), CLOSING customers subscribed since the first of last
    month (the close's), each invoiced at once (a fee in advance); an API key."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal as D

    from billing.invoicing.close import drafts_finalize
    from billing.subscriptions.lifecycle import subscription_create
    from common.periods import month_start
    from common.vocabulary import ConsumptionModel
    from customers.api_keys import api_key_create
    from customers.services import customer_create
    from plans.models import Plan
    from plans.pricing import PricingSpec
    from plans.services import meter_create, plan_create
    from plans.validation import ChargeSpec, VersionSpec
    from wallets.ledger import credits_grant
    from wallets.models import CreditBlock

    now = datetime.now(UTC)
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    plan_create(
        code="prepaid",
        name="Prepaid",
        version=VersionSpec(
            currency="USD",
            base_fee=D("10.00"),
            charges=(ChargeSpec("prompts", ConsumptionModel.CREDITS, credits_per_unit=D(1)),),
        ),
        publish=True,
    )
    plan_create(
        code="monthly",
        name="Monthly",
        version=VersionSpec(
            currency="USD",
            base_fee=D("20.00"),
            charges=(
                ChargeSpec(
                    "prompts",
                    ConsumptionModel.OVERAGE,
                    D(1000),
                    pricing=PricingSpec("per_unit", unit_price=D("0.01")),
                ),
            ),
        ),
        publish=True,
    )
    prepaid, monthly = Plan.objects.get(code="prepaid"), Plan.objects.get(code="monthly")
    for index in range(8):
        customer = customer_create(
            external_id=f"drill_{index}",
            name=f"Drill customer {index}",
            currency="USD",
            email=f"drill_{index}@example.test",
        )
        subscription_create(customer=customer, plan=prepaid, start=now - timedelta(hours=1))
        credits_grant(
            customer=customer,
            credits=D(10_000_000),
            kind=CreditBlock.PAID,
            price=D("1000.00"),
            now=now,
        )
    for index in range(CLOSING):
        customer = customer_create(
            external_id=f"closing_{index}",
            name=f"Closing customer {index}",
            currency="USD",
            email=f"closing_{index}@example.test",
        )
        subscription_create(customer=customer, plan=monthly, start=month_start(now, months=-1))
    # Their start invoices (and the prepaid customers'), numbered now, as the beat would.
    drafts_finalize(as_of=now)
    _, secret = api_key_create(name="drill", scopes=["events:write"])
    print(json.dumps({"key": secret}))


def buy_credits(first: int, count: int) -> None:
    """Run in a subprocess: drill customers `first` to `first + count - 1` buy
    credits, each purchase invoiced and numbered at once (its PDF and email queued)."""
    from datetime import UTC, datetime
    from decimal import Decimal as D

    from customers.models import Customer
    from wallets.ledger import credits_grant
    from wallets.models import CreditBlock

    for index in range(first, first + count):
        credits_grant(
            customer=Customer.objects.get(external_id=f"drill_{index}"),
            credits=D(1_000_000),
            kind=CreditBlock.PAID,
            price=D("100.00"),
            now=datetime.now(UTC),
        )


def send_everything_again() -> None:
    """Run in a subprocess on the restored copy: every document email's task and
    every alert email's task, queued once more (as a broker replaying its queue, or
    the beat's sweeps, would)."""
    from billing.models import Alert
    from billing.tasks import send_alert_email
    from invoices.models import DocumentEmail
    from invoices.tasks import send_document_email

    for email_id in DocumentEmail.objects.values_list("pk", flat=True):
        send_document_email.delay(email_id)
    for alert_id in Alert.objects.values_list("pk", flat=True):
        send_alert_email.delay(alert_id)


def mailed_numbers(folder: Path) -> list[str]:
    """The document numbers in the subjects of the messages the file backend wrote."""
    numbers = []
    for path in sorted(folder.glob("*.log")):
        for subject in re.findall(r"(?m)^Subject: (.*)$", path.read_text(errors="replace")):
            numbers += ["-".join(m) for m in NUMBER.findall(subject)]
    return numbers


def messages_written(folder: Path) -> int:
    """The messages the file backend wrote in `folder` (a file per connection, each
    message with its Subject header); 0 for no folder."""
    return sum(
        len(re.findall(r"(?m)^Subject: ", path.read_text(errors="replace")))
        for path in sorted(folder.glob("*.log"))
    )


def numbered_by_id(db) -> dict[int, tuple[str, str]]:
    """Each numbered invoice's id -> (number, its customer's external id)."""
    return {
        row[0]: (row[1], row[2])
        for row in db.execute(
            "SELECT i.id, i.number, c.external_id FROM invoices_invoice i "
            "JOIN customers_customer c ON c.id = i.customer_id WHERE i.number IS NOT NULL"
        )
    }


def broker_idle(client) -> bool:
    """No task waits in a queue of this Redis database, nor is held by a worker
    (kombu's lists, and its hash of unacknowledged messages)."""
    waiting = sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")
    return waiting == 0 and client.hlen("unacked") == 0


def position(number: str) -> tuple[str, int]:
    sequence, digits = NUMBER.fullmatch(number).groups()
    return sequence, int(digits)


def compared_tables(db) -> dict[str, list[str]]:
    """The compared tables and their columns (a document's PDF columns left out)."""
    tables: dict[str, list[str]] = {}
    rows = db.execute(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN pg_tables t ON t.tablename = c.table_name AND t.schemaname = 'public' "
        "WHERE c.table_schema = 'public' ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    for table, column in rows:
        kept = table.startswith(COMPARED) and table not in NOT_COMPARED
        if kept and column not in PDF_COLUMNS:
            tables.setdefault(table, []).append(column)
    return tables


def table_digests(db, tables: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Each table's row count and a digest of its rows (the columns given, as text,
    in order)."""
    digests = {}
    for table, columns in tables.items():
        row = ", ".join(f'"{c}"' for c in columns)
        digests[table] = tuple(
            db.execute(
                f"SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) "  # noqa: S608
                f'FROM (SELECT ROW({row})::text AS r FROM "{table}") s'
            ).fetchone()
        )
    return digests


def test_a_backup_taken_mid_close_restores_without_reissuing_or_resending(tmp_path, capsys):
    bindir = postgres_bindir()
    if not shutil.which("redis-server"):
        unavailable("the restore drill needs redis-server (apt-get install redis-server)")
    import psycopg
    import redis

    pg_dir = Path(tempfile.mkdtemp(prefix="billing-restore-drill-pg-"))
    postgres = ThrowawayPostgres(bindir, pg_dir)
    processes: list[subprocess.Popen] = []
    snapshot_db = held = None
    source_media, restored_media = tmp_path / "media", tmp_path / "restored-media"
    source_mail, restored_mail = tmp_path / "mail", tmp_path / "restored-mail"
    dump = tmp_path / "billing.dump"
    try:
        database_url = postgres.start()
        restored_url = database_url.rsplit("/", 1)[0] + "/billing_restored"
        redis_port = free_port()
        processes.append(
            spawn(
                shutil.which("redis-server"),
                *("--port", str(redis_port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                stdout=subprocess.DEVNULL,
            )
        )
        broker = f"redis://127.0.0.1:{redis_port}/0"
        restored_broker = f"redis://127.0.0.1:{redis_port}/1"
        wait_until("Redis", lambda: redis.Redis.from_url(broker).ping())
        source = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DEBUG": "0",
            "SECRET_KEY": "restore-drill-only-secret-key",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            "BILLING_INVOICE_GRACE_HOURS": "0",
            "MEDIA_ROOT": str(source_media),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(source_mail),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        }
        (tmp_path / "metrics").mkdir()
        restored = {
            **source,
            "DATABASE_URL": restored_url,
            "CELERY_BROKER_URL": restored_broker,
            "MEDIA_ROOT": str(restored_media),
            "EMAIL_FILE_PATH": str(restored_mail),
        }

        def run(env: dict, *args: str) -> str:
            command = [str(VENV / "python"), *args]
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S603
            assert done.returncode == 0, done.stderr[-3000:]
            return done.stdout

        def call(env: dict, code: str) -> str:
            return run(env, "-c", f"import django; django.setup(); {code}")

        def worker(env: dict, name: str) -> subprocess.Popen:
            process = spawn(
                *(str(VENV / "celery"), "-A", "config", "worker", "--concurrency", "2"),
                *("-Q", ",".join(QUEUES), "-n", f"{name}@%h"),
                *("--loglevel", "info", "--logfile", str(tmp_path / f"{name}.log")),
                *("--without-heartbeat", "--without-mingle", "--without-gossip"),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            log = tmp_path / f"{name}.log"
            wait_until(name, lambda: "ready." in log.read_text(), timeout=60)
            return process

        def stop(process: subprocess.Popen) -> None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            processes.remove(process)

        def settle(url: str, what: str) -> float:
            """Wait until every numbered document has its PDF and every email is sent."""
            began = time.monotonic()

            def done():
                with psycopg.connect(url, autocommit=True) as db:
                    return (
                        db.execute(
                            "SELECT (SELECT count(*) FROM invoices_invoice WHERE status <> 'draft' "
                            "AND pdf_sha256 = '') + (SELECT count(*) FROM invoices_documentemail "
                            "WHERE status = 'pending')"
                        ).fetchone()[0]
                        == 0
                    )

            wait_until(what, done, timeout=SETTLE)
            return time.monotonic() - began

        run(source, "manage.py", "migrate", "--verbosity", "0")
        key = json.loads(
            call(source, "from tests.test_restore_drill import seed; seed()").splitlines()[-1]
        )["key"]
        source_worker = worker(source, "source")
        port = free_port()
        processes.append(
            spawn(
                *(str(VENV / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "2", "--log-level", "warning"),
                *("--error-logfile", str(tmp_path / "gunicorn.log")),
                cwd=ROOT,
                env=source,
            )
        )
        wait_until("gunicorn", lambda: listening(port))
        seeded_in = settle(database_url, "the source's first PDFs and emails")

        # when: ingestion runs; documents are issued while the worker is stopped (their
        # PDFs and emails left to do); a close runs, held before its finalization
        stop_clients, tally = threading.Event(), Tally()
        clients = [
            threading.Thread(
                target=post_batches, args=(i, port, key, stop_clients, tally), daemon=True
            )
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        stop(source_worker)
        call(source, f"from tests.test_restore_drill import buy_credits; buy_credits(0, {LATE})")
        held = psycopg.connect(database_url)
        held.execute("SELECT * FROM invoices_invoicesequence WHERE name LIKE 'INV-%' FOR UPDATE")
        close = spawn(
            str(VENV / "python"),
            *("manage.py", "close_periods"),
            cwd=ROOT,
            env=source,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def closed_and_waiting():
            with psycopg.connect(database_url, autocommit=True) as db:
                drafts = db.execute(
                    "SELECT count(*) FROM invoices_invoice WHERE status = 'draft' "
                    "AND reason = 'period'"
                ).fetchone()[0]
                waiting = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%invoicesequence%'"
                ).fetchone()[0]
            return drafts >= CLOSING and waiting > 0

        time.sleep(LOAD)
        wait_until("the close's periods", closed_and_waiting, timeout=120)

        # the snapshot: exported, dumped, and kept open to read the source as it was
        with tally.lock:
            acked_before = set(tally.acked_ids)
        snapshot_db = psycopg.connect(database_url)
        snapshot_db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = snapshot_db.execute("SELECT pg_export_snapshot()").fetchone()[0]
        began = time.monotonic()
        subprocess.run(  # noqa: S603
            [
                *(str(bindir / "pg_dump"), "--snapshot", snapshot),
                *("-Fc", "-f", str(dump), "--dbname", database_url),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        dump_seconds = time.monotonic() - began
        tables = compared_tables(snapshot_db)
        at_snapshot = table_digests(snapshot_db, tables)
        snapshot_numbers = {
            row[0]
            for row in snapshot_db.execute(
                "SELECT number FROM invoices_invoice WHERE number IS NOT NULL "
                "UNION SELECT number FROM invoices_creditnote"
            )
        }
        snapshot_files = dict(
            snapshot_db.execute(
                "SELECT number, pdf_file FROM invoices_invoice WHERE pdf_file <> '' ORDER BY id"
            ).fetchall()
        )
        pending_at_snapshot = {
            row[0]
            for row in snapshot_db.execute(
                "SELECT coalesce(i.number, c.number) FROM invoices_documentemail e "
                "LEFT JOIN invoices_invoice i ON i.id = e.invoice_id "
                "LEFT JOIN invoices_creditnote c ON c.id = e.credit_note_id "
                "WHERE e.status = 'pending'"
            )
        }
        max_snapshot_ids = snapshot_db.execute(
            "SELECT (SELECT max(id) FROM invoices_invoice), "
            "(SELECT max(id) FROM invoices_documentemail)"
        ).fetchone()
        snapshot_events = snapshot_db.execute("SELECT count(*) FROM billing_usageevent").fetchone()[
            0
        ]

        # the source goes on: the close numbers its invoices, more are issued, the
        # worker stores their PDFs and sends their emails
        held.rollback()
        held.close()
        held = None
        source_worker = worker(source, "source-again")
        call(source, f"from tests.test_restore_drill import buy_credits; buy_credits(4, {AFTER})")
        time.sleep(LOAD)
        stop_clients.set()
        for client in clients:
            client.join(timeout=120)
        _, close_err = close.communicate(timeout=300)
        assert close.returncode == 0, close_err[-3000:]
        settle(database_url, "the source's PDFs and emails")
        stop(source_worker)
        with psycopg.connect(database_url, autocommit=True) as db:
            source_invoices = numbered_by_id(db)
            source_ids = db.execute(
                "SELECT (SELECT max(id) FROM invoices_invoice), "
                "(SELECT max(id) FROM invoices_documentemail)"
            ).fetchone()
            source_numbers = {
                row[0]
                for row in db.execute(
                    "SELECT number FROM invoices_invoice WHERE number IS NOT NULL "
                    "UNION SELECT number FROM invoices_creditnote"
                )
            }
        source_mailed = mailed_numbers(source_mail)
        highest = {}
        for number in source_numbers:
            sequence, at = position(number)
            highest[sequence] = max(highest.get(sequence, 0), at)

        # then: restored into a new database, the documents folder beside it with some
        # PDFs missing; the restore step; the application started on it
        subprocess.run(  # noqa: S603
            [
                str(bindir / "psql"),
                "--dbname",
                database_url,
                "-qc",
                "CREATE DATABASE billing_restored",
            ],
            check=True,
            capture_output=True,
        )
        began = time.monotonic()
        subprocess.run(  # noqa: S603
            [str(bindir / "pg_restore"), "--exit-on-error", "--dbname", restored_url, str(dump)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        restore_seconds = time.monotonic() - began
        shutil.copytree(source_media, restored_media)
        lost = list(snapshot_files.items())[:: max(1, len(snapshot_files) // LOST_FILES)][
            :LOST_FILES
        ]
        originals = {}
        for number, name in lost:
            originals[number] = (restored_media / name).read_bytes()
            (restored_media / name).unlink()
        began = time.monotonic()
        step = run(restored, "manage.py", "after_restore")
        step_seconds = time.monotonic() - began
        step_again = run(restored, "manage.py", "after_restore")

        with psycopg.connect(restored_url, autocommit=True) as db:
            after_step = table_digests(db, tables)
            restored_events = {
                row[0] for row in db.execute("SELECT event_id FROM billing_usageevent")
            }
        rendered_again = {
            number: (restored_media / name).read_bytes()
            for number, name in lost
            if (restored_media / name).exists()
        }

        restored_port = free_port()
        processes.append(
            spawn(
                *(str(VENV / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{restored_port}"),
                *("--workers", "1", "--log-level", "warning"),
                *("--error-logfile", str(tmp_path / "restored-gunicorn.log")),
                cwd=ROOT,
                env=restored,
            )
        )
        wait_until("gunicorn on the restored copy", lambda: listening(restored_port))
        restored_ready = answers(restored_port, 200)
        restored_worker = worker(restored, "restored")
        call(restored, "from tests.test_restore_drill import send_everything_again as s; s()")
        restored_close = run(restored, "manage.py", "close_periods")
        call(restored, "from tests.test_restore_drill import buy_credits; buy_credits(0, 1)")

        # sending paused: the worker renders, and takes every task, e-mails included
        restored_redis = redis.Redis.from_url(restored_broker)

        def rendered_and_idle():
            with psycopg.connect(restored_url, autocommit=True) as db:
                unrendered = db.execute(
                    "SELECT count(*) FROM invoices_invoice WHERE status <> 'draft' "
                    "AND pdf_sha256 = ''"
                ).fetchone()[0]
            return unrendered == 0 and broker_idle(restored_redis)

        wait_until("the restored copy's PDFs, sending paused", rendered_and_idle, timeout=SETTLE)
        stop(restored_worker)
        mailed_while_paused = messages_written(restored_mail)
        email_tasks_while_paused = len(
            re.findall(
                r"Task invoices\.tasks\.send_document_email\[[^]]+\] succeeded",
                (tmp_path / "restored.log").read_text(),
            )
        )
        with psycopg.connect(restored_url, autocommit=True) as db:
            held_emails = db.execute(
                "SELECT count(*) FROM invoices_documentemail WHERE status = 'pending'"
            ).fetchone()[0]
        status = run(restored, "manage.py", "after_restore", "--status")
        resume = run(restored, "manage.py", "after_restore", "--resume")
        restored_after_resume = answers(restored_port, 200)
        restored_worker = worker(restored, "restored-resumed")
        settle(restored_url, "the restored copy's PDFs and emails")
        stop(restored_worker)
        with psycopg.connect(restored_url, autocommit=True) as db:
            restored_invoices = numbered_by_id(db)
            # Rows written on the copy: none with an id the source gave after the snapshot.
            reused_ids, new_rows = db.execute(
                "SELECT (SELECT count(*) FROM invoices_invoice WHERE id > %s AND id <= %s) "
                "+ (SELECT count(*) FROM invoices_documentemail WHERE id > %s AND id <= %s), "
                "(SELECT count(*) FROM invoices_invoice WHERE id > %s) "
                "+ (SELECT count(*) FROM invoices_documentemail WHERE id > %s)",
                [
                    max_snapshot_ids[0],
                    source_ids[0],
                    max_snapshot_ids[1],
                    source_ids[1],
                    source_ids[0],
                    source_ids[1],
                ],
            ).fetchone()
            restored_numbers = {
                row[0]
                for row in db.execute(
                    "SELECT number FROM invoices_invoice WHERE number IS NOT NULL "
                    "UNION SELECT number FROM invoices_creditnote"
                )
            }
        restored_mailed = mailed_numbers(restored_mail)
    finally:
        for connection in (held, snapshot_db):
            if connection is not None:
                connection.close()
        processes_stop(processes)
        postgres.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)

    issued_after_snapshot = source_numbers - snapshot_numbers
    new_on_restored = restored_numbers - snapshot_numbers
    reissued = new_on_restored & source_numbers
    below = sorted(n for n in new_on_restored if position(n)[1] <= highest[position(n)[0]])
    would_resend = pending_at_snapshot & set(source_mailed)
    sent_again = set(restored_mailed) & set(source_mailed)
    identical = [n for n, content in rendered_again.items() if content == originals[n]]
    differing = {t for t in tables if at_snapshot[t] != after_step[t]}
    lost_events = acked_before - restored_events
    # Each number the source issued after the snapshot, as the list must say it: the
    # number the restored copy gave the same invoice (its draft was in the backup), or
    # not billed again (a purchase made after the backup).
    lost_lines = {
        old: f"  {old} -> {restored_invoices[i][0]}: {customer} ("
        if i in restored_invoices
        else f"  {old} -> not billed again yet: {customer} ("
        for i, (old, customer) in source_invoices.items()
        if old in issued_after_snapshot
    }
    billed_again = {old for old, line in lost_lines.items() if "not billed again" not in line}
    unlisted = sorted(old for old, line in lost_lines.items() if line not in status)
    mailed_after_resume = Counter(restored_mailed)
    with capsys.disabled():
        print(
            f"\n\nRestore drill: pg_dump of an exported snapshot in {dump_seconds:.1f} s, "
            f"pg_restore in {restore_seconds:.1f} s, after_restore in {step_seconds:.1f} s "
            f"(source seeded and settled in {seeded_in:.1f} s)\n"
            f"  at the snapshot: {len(snapshot_numbers)} documents numbered, "
            f"{len(pending_at_snapshot)} emails pending, {snapshot_events} events; "
            f"the close had written its {CLOSING} drafts and waited to number them\n"
            f"  after it, the source numbered {len(issued_after_snapshot)} more "
            f"({', '.join(sorted(issued_after_snapshot)[:3])} ...), "
            f"sent {len(source_mailed)} emails in all; highest number {highest}\n"
            f"  tables compared with the snapshot, row for row: {len(tables)} "
            f"({sum(c for c, _ in after_step.values())} rows), differing: {sorted(differing)}\n"
            f"  events acknowledged before the snapshot: {len(acked_before)}, missing on the "
            f"restored copy: {len(lost_events)}; acknowledged in all {len(tally.acked_ids)}\n"
            f"  PDFs missing from the restored folder: {len(lost)}, rendered again "
            f"byte-identical: {len(identical)}\n"
            f"  emails pending in the dump that the source had sent (re-sent without the "
            f"step): {len(would_resend)}; sent again by the restored copy: {len(sent_again)}; "
            f"the restored copy's own emails: {len(restored_mailed)}\n"
            f"  numbered on the restored copy: {len(new_on_restored)} "
            f"({', '.join(sorted(new_on_restored)[:3])} ...), reissued: {len(reissued)}, "
            f"at or below the source's highest: {len(below)}\n"
            f"  ids: invoices and emails written on the restored copy {new_rows}, with an id "
            f"the source gave after the snapshot {reused_ids}\n"
            f"  restored copy: /readyz {restored_ready['status']} (sending "
            f"{restored_ready['checks']['outbound']}, after the resume "
            f"{restored_after_resume['checks']['outbound']}); its close: "
            f"{restored_close.strip()}\n"
            f"  sending paused: {email_tasks_while_paused} email tasks run, "
            f"{mailed_while_paused} messages written, {held_emails} emails held; the list "
            f"names {len(billed_again)} of the {len(lost_lines)} lost numbers billed again, "
            f"{len(unlisted)} missing from it; after the resume {len(restored_mailed)} "
            f"messages, {len(mailed_after_resume)} numbers, each "
            f"{sorted(set(mailed_after_resume.values()))} time(s)\n"
            "  after_restore said:\n    " + step.strip().replace("\n", "\n    ") + "\n"
            "  and run again:\n    " + step_again.strip().replace("\n", "\n    ") + "\n"
            "  after_restore --resume said:\n    " + resume.strip().replace("\n", "\n    ") + "\n"
        )

    # the drill proved something: the snapshot fell mid-close, things left after it
    assert issued_after_snapshot, "nothing was numbered after the snapshot"
    assert would_resend, "no email was pending at the snapshot and sent after it"
    assert len(lost) == LOST_FILES
    # identical to the source at the snapshot; nothing acknowledged lost
    assert differing == set()
    assert lost_events == set()
    assert len(restored_events) == snapshot_events
    # the three guarantees
    assert identical == [n for n, _ in lost]
    assert sent_again == set()
    assert reissued == set()
    assert below == []
    assert new_on_restored, "the restored copy numbered nothing"
    # the rows it wrote since take ids the source never gave (Stripe keys, the record)
    assert new_rows > 0
    assert reused_ids == 0
    assert restored_ready["status"] == "ready"
    assert "every sequence is already past" in step_again
    assert "0 missing" in step_again
    # sending paused after the restore: the worker ran the email tasks, none left
    assert restored_ready["checks"]["outbound"] == "paused"
    assert email_tasks_while_paused > 0
    assert mailed_while_paused == 0
    assert held_emails == len(new_on_restored)
    # the list: each lost number with the customer's own id, and the number replacing
    # it where the close billed its period again
    assert billed_again, "the restored close billed nothing again"
    assert unlisted == []
    assert all(line in resume for line in lost_lines.values())
    assert "sending: RESUMED at " in resume
    assert restored_after_resume["checks"]["outbound"] == "ok"
    # after the resume: each new number e-mailed once, nothing the source had mailed
    assert mailed_after_resume == Counter(new_on_restored)
    assert billed_again <= set(source_mailed)

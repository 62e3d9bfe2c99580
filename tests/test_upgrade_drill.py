"""The upgrade drill: the previous release (RELEASE, in .ci/previous-release) installed
as its README says, its database made and filled through its own API and commands,
then migrated to this checkout while the release's web process keeps ingesting, as
an operator upgrades (docs/running.md, "Upgrades").

The release, from a throwaway PostgreSQL of the drill's own: a catalog with a hybrid
plan (base fee, seats, allowance, graduated overage, minimum commitment) holding one
charge of each consumption model (overage, hard cap, credits, balance), a rate-card
plan with progressive billing, a tax rate; customers in English, French and German on
them, with seats, spend limits and alert thresholds, credits granted and bought (an
invoice), an auto top-up, money put on a balance, a prepaid commit (an invoice), usage
last month and this month, last month closed (invoices finalized, PDFs rendered,
emails sent), an invoice paid and another credited, portal links. Its answers are
read: each customer's `check` on every meter, `/usage`, wallets, invoices with the
SHA-256 of each PDF, commit, portal page; then a copy of its database is taken.

The upgrade: this checkout's `manage.py migrate` runs on the release's database while
4 clients post event batches to the release's web process; then this checkout's web
process is started on it. It holds when: every event batch the release acknowledged
is stored; every old customer's `check`, `/usage`, wallets, invoices, PDFs (the same
bytes), commit and portal page answer as before; its limits answer (no limits) and
can be set; the alerts it had are not raised again and the next threshold raises one,
with its email; the next close (run at the start of next month) bills what the
release's own close bills on the copy, to the cent, under numbers that follow the
release's. And every migration the upgrade applies that adds a column to a table
holding rows finds rows there (the data covers it), and each such row reads through
the models as its field's type.

    bash scripts/test.sh -n 0 -m drill tests/test_upgrade_drill.py

Marked `drill`, so the default run leaves it out; CI runs it in its Drill step.
Takes a few minutes (the release's install, two sets of migrations, two closes).
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_outage_drill import (
    CLIENTS,
    CUSTOMERS,
    ROOT,
    VENV,
    Tally,
    ThrowawayPostgres,
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

RELEASE_FILE = ROOT / ".ci" / "previous-release"
LOAD_AFTER = 2.0  # seconds the clients go on posting to the release after the migrations
SECRET_KEY = "upgrade-drill-only-secret-key"
METERS = ("prompts", "sms", "agent_runs", "gpu_seconds", "llm_tokens")
# What the drill compares of an invoice: what it bills, not how it words it.
INVOICE_FIELDS = ("number", "status", "reason", "currency", "subtotal", "tax", "total")
LINE_FIELDS = ("kind", "meter", "quantity", "amount")


def previous_release() -> tuple[str, str]:
    """(version, commit) of the release the drill upgrades from."""
    version, commit = RELEASE_FILE.read_text().split()[:2]
    return version, commit


def month_start(moment: datetime, months: int = 0) -> datetime:
    month = moment.year * 12 + moment.month - 1 + months
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Api:
    """JSON over HTTP to one web process, with one API key."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key

    def call(self, method: str, path: str, body=None, *, raw: bool = False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path if path.startswith("/") else "/api/v1/" + path, data, headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if raw:
            return response.status, payload
        return response.status, json.loads(payload) if payload else None

    def ok(self, method: str, path: str, body=None):
        status, answer = self.call(method, path, body)
        assert 200 <= status < 300, f"{method} {path} answered {status}: {answer}"
        return answer


def per_unit(price: str, per: str = "1") -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": per}


def seed(api: Api, now: datetime) -> dict:
    """The release's data, through its API: the catalog, the customers, their
    wallets, a commit and last month's and this month's usage. Returns the
    customers the drill compares, with their meters."""
    last, this = month_start(now, -1), month_start(now)
    api.ok(
        "POST",
        "meters",
        {"code": "prompts", "name": "Prompts", "event_name": "prompt", "aggregation": "count"},
    )
    api.ok(
        "POST",
        "meters",
        {"code": "sms", "name": "SMS", "event_name": "sms", "aggregation": "count"},
    )
    api.ok(
        "POST",
        "meters",
        {
            "code": "agent_runs",
            "name": "Agent runs",
            "event_name": "agent_run",
            "aggregation": "count",
        },
    )
    api.ok(
        "POST",
        "meters",
        {
            "code": "gpu_seconds",
            "name": "GPU seconds",
            "event_name": "gpu",
            "aggregation": "sum",
            "value_property": "seconds",
        },
    )
    api.ok(
        "POST",
        "meters",
        {
            "code": "llm_tokens",
            "name": "LLM tokens",
            "event_name": "llm.tokens",
            "aggregation": "sum",
            "value_property": "tokens",
            "group_by": ["model"],
        },
    )
    api.ok(
        "POST",
        "plans",
        {
            "code": "hybrid",
            "name": "Hybrid",
            "currency": "USD",
            "interval": "month",
            "base_fee": "49.00",
            "seat_price": "10.00",
            "minimum_commitment": "150.00",
            "publish": True,
            "charges": [
                {
                    "meter": "prompts",
                    "model": "overage",
                    "included_units": "100",
                    "pricing": {
                        "scheme": "graduated",
                        "tiers": [
                            {"up_to": "400", "unit_price": "0.05", "flat_fee": "1.00"},
                            {"up_to": None, "unit_price": "0.04"},
                        ],
                    },
                },
                {"meter": "sms", "model": "hard_cap", "included_units": "50"},
                {"meter": "agent_runs", "model": "credits", "credits_per_unit": "2"},
                {"meter": "gpu_seconds", "model": "balance", "pricing": per_unit("0.0025")},
            ],
        },
    )
    api.ok(
        "POST",
        "plans",
        {
            "code": "tokens",
            "name": "Tokens",
            "currency": "USD",
            "interval": "month",
            "base_fee": "20.00",
            "progressive_billing_threshold": "40.00",
            "publish": True,
            "charges": [
                {
                    "meter": "llm_tokens",
                    "model": "overage",
                    "included_units": "0",
                    "price_by": ["model"],
                    "rates": [
                        {"when": {"model": "gpt-4o"}, "pricing": per_unit("5.00", "1000000")},
                        {"when": {"model": "o3"}, "pricing": per_unit("20.00", "1000000")},
                        {"when": {}, "pricing": per_unit("4.00", "1000000")},
                    ],
                },
            ],
        },
    )
    api.ok(
        "POST",
        "plans",
        {
            "code": "load",
            "name": "Load",
            "currency": "USD",
            "interval": "month",
            "base_fee": "0",
            "publish": True,
            "charges": [
                {
                    "meter": "prompts",
                    "model": "overage",
                    "included_units": "0",
                    "pricing": per_unit("0.001"),
                }
            ],
        },
    )
    api.ok(
        "POST",
        "credit-packs",
        {"code": "runs_100", "credits": "100", "price": "9.00", "currency": "USD"},
    )
    api.ok(
        "POST", "tax-rates", {"code": "fr_vat", "name": "TVA", "percentage": "20", "country": "FR"}
    )
    # What the tokens cost the seller, cut this month; the month before last locked in
    # the books.
    for when, cost, since in (
        ({}, "1.50", last),
        ({"model": "gpt-4o"}, "2.50", last),
        ({"model": "gpt-4o"}, "2.00", this),
    ):
        api.ok(
            "POST",
            "cost-rates",
            {
                "meter": "llm_tokens",
                "when": when,
                "unit_cost": cost,
                "per": "1000000",
                "currency": "USD",
                "effective_from": stamp(since),
            },
        )
    api.ok("POST", f"journal/periods/{month_start(now, -2):%Y-%m}/lock")

    customers = {
        "acme": {
            "name": "Acme Inc",
            "locale": "en",
            "plan": "hybrid",
            "seats": 3,
            "spend_limit": "400.00",
            "alert_thresholds": ["50", "100"],
        },
        "lumiere": {
            "name": "Lumière SARL",
            "locale": "fr",
            "plan": "hybrid",
            "seats": 1,
            "tax_rates": ["fr_vat"],
            "address": {
                "line1": "3 rue de la Paix",
                "city": "Paris",
                "postal_code": "75002",
                "country": "FR",
            },
        },
        "hooli": {
            "name": "Hooli",
            "locale": "en",
            "plan": "hybrid",
            "seats": 2,
            "alert_thresholds": ["50", "100"],
        },
        "globex": {"name": "Globex GmbH", "locale": "de", "plan": "tokens"},
        "initech": {"name": "Initech LLC", "locale": "en", "plan": "tokens"},
    }
    for external_id, terms in customers.items():
        body = {
            "external_id": external_id,
            "name": terms["name"],
            "currency": "USD",
            "email": f"billing@{external_id}.test",
            "locale": terms["locale"],
            "timezone": "UTC",
        }
        for optional in ("spend_limit", "alert_thresholds", "tax_rates", "address"):
            if optional in terms:
                body[optional] = terms[optional]
        api.ok("POST", "customers", body)
        subscription = api.ok(
            "POST",
            "subscriptions",
            {
                "customer": external_id,
                "plan": terms["plan"],
                "start": stamp(last),
                "seats": terms.get("seats", 1),
            },
        )
        terms["subscription"] = subscription["id"]
    for index in range(CUSTOMERS):  # the ingestion's customers (post_batches)
        api.ok(
            "POST",
            "customers",
            {"external_id": f"drill_{index}", "currency": "USD", "name": f"Drill customer {index}"},
        )
        api.ok(
            "POST",
            "subscriptions",
            {"customer": f"drill_{index}", "plan": "load", "start": stamp(last)},
        )

    for external_id in ("acme", "lumiere"):
        api.ok(
            "POST",
            f"customers/{external_id}/wallets/credits",
            {"credits": "150", "kind": "promotional", "priority": 10},
        )
        api.ok("POST", f"customers/{external_id}/wallets/credits", {"pack": "runs_100"})
        api.ok(
            "POST",
            f"customers/{external_id}/wallets/money",
            {"amount": "100.00", "currency": "USD"},
        )
    api.ok(
        "PUT",
        "customers/acme/wallets/credits/auto-top-up",
        {"enabled": True, "threshold": "20", "pack": "runs_100"},
    )
    api.ok(
        "POST",
        "customers/initech/commits",
        {
            "amount": "300.00",
            "currency": "USD",
            "starts_at": stamp(last),
            "ends_at": stamp(month_start(now, 2)),
            "billing": "prepaid",
            "access": "per_period",
            "applies_to": ["llm_tokens"],
            "overage_multiplier": "1.10",
            "rollover": {"percent": "50", "expires_after_periods": 1},
        },
    )

    # Last month's usage, spread over it.
    usage_events(api, "last", last, this, LAST_MONTH)
    return customers


# Usage by customer: (event name, events, properties). Last month's is spread over
# the month; this month's up to now. Acme and Hooli cross 50 % of their 100 included
# prompts this month (an alert each: their thresholds are 50 and 100), not 100 %.
HYBRID = (
    ("prompt", 120, {}),
    ("sms", 12, {}),
    ("agent_run", 20, {}),
    ("gpu", 6, {"seconds": 1500}),
)
TOKENS = (
    ("llm.tokens", 4, {"model": "gpt-4o", "tokens": 900_000}),
    ("llm.tokens", 2, {"model": "o3", "tokens": 350_000}),
    ("llm.tokens", 2, {"model": "mistral", "tokens": 500_000}),
)
LAST_MONTH = {
    "acme": HYBRID * 2,
    "lumiere": HYBRID,
    "hooli": HYBRID,
    "globex": TOKENS * 3,
    "initech": TOKENS * 2,
}
THIS_MONTH = {
    "acme": (
        ("prompt", 60, {}),
        ("sms", 30, {}),
        ("agent_run", 15, {}),
        ("gpu", 6, {"seconds": 1500}),
    ),
    "hooli": (("prompt", 70, {}),),
    "lumiere": (
        ("prompt", 30, {}),
        ("sms", 5, {}),
        ("agent_run", 5, {}),
        ("gpu", 2, {"seconds": 800}),
    ),
    "globex": TOKENS,
    "initech": TOKENS * 4,
}


def usage_events(api: Api, tag: str, start: datetime, end: datetime, usage: dict) -> int:
    """Post `usage` (above) as events spread over [start, end), in batches; returns
    how many."""
    events = []
    for customer, kinds in usage.items():
        for name, count, properties in kinds:
            for _ in range(count):
                at = start + (end - start) * ((len(events) * 7919) % 1000) / 1000
                events.append(
                    {
                        "id": f"{tag}-{len(events)}",
                        "customer": customer,
                        "event_name": name,
                        "timestamp": stamp(at),
                        "properties": properties,
                    }
                )
    for first in range(0, len(events), 500):
        answer = api.ok("POST", "events", {"events": events[first : first + 500]})
        assert answer["rejected"] == [], answer["rejected"][:3]
    return len(events)


def this_month(api: Api, now: datetime, customers: dict) -> dict:
    """After last month's close, on the release: this month's usage, an invoice paid,
    another credited, a portal link each. Returns each customer's portal path."""
    usage_events(api, "this", month_start(now), now, THIS_MONTH)
    invoices = {
        invoice["customer"]: invoice
        for invoice in api.ok("GET", "invoices?page_size=100")["results"]
        if invoice["reason"] == "period"
    }
    api.ok("POST", f"invoices/{invoices['acme']['id']}/pay", {"reference": "wire 2026-118"})
    credited = api.ok("GET", f"invoices/{invoices['lumiere']['id']}")["lines"][0]
    api.ok(
        "POST",
        f"invoices/{invoices['lumiere']['id']}/credit-notes",
        {
            "reason": "other",
            "memo": "goodwill",
            "lines": [{"invoice_line": credited["id"], "amount": "1.00"}],
        },
    )
    return {
        external_id: "/"
        + api.ok("POST", f"customers/{external_id}/portal-session", {})["url"].split("/", 3)[3]
        for external_id in customers
    }


def plan_meters(customers: dict) -> dict[str, tuple[str, ...]]:
    by_plan = {"hybrid": ("prompts", "sms", "agent_runs", "gpu_seconds"), "tokens": ("llm_tokens",)}
    return {external_id: by_plan[terms["plan"]] for external_id, terms in customers.items()}


def observe(api: Api, customers: dict, portals: dict) -> dict:
    """What each customer's API answers and portal page show: `check` of one unit on
    each of its meters, /usage (its projection aside: a function of the clock),
    wallets, its record, commits, invoices with each PDF's digest, the portal page's
    status and the invoice numbers it lists."""
    seen = {}
    for external_id, meters in plan_meters(customers).items():
        checks = {}
        for meter in meters:
            answer = api.ok(
                "POST", f"customers/{external_id}/check", {"meter": meter, "quantity": "1"}
            )
            checks[meter] = {
                name: answer.get(name)
                for name in (
                    "allowed",
                    "model",
                    "reason",
                    "used",
                    "included",
                    "remaining",
                    "balance",
                )
            }
        usage = api.ok("GET", f"customers/{external_id}/usage")
        usage_seen = {
            "period": (usage["period_start"], usage["period_end"]),
            "lines": sorted(
                (
                    line["meter"],
                    line["model"],
                    line["quantity"],
                    line.get("billable"),
                    line["amount"],
                )
                for line in usage["lines"]
            ),
            "base_fee": usage.get("base_fee"),
            "subtotal": usage["subtotal"],
        }
        wallets = sorted(
            (wallet["kind"], wallet["currency"], wallet["balance"])
            for wallet in api.ok("GET", f"customers/{external_id}/wallets")["results"]
        )
        record = api.ok("GET", f"customers/{external_id}")
        commits = [
            {
                name: commit.get(name)
                for name in ("amount", "currency", "billing", "starts_at", "ends_at")
            }
            for commit in api.ok("GET", f"customers/{external_id}/commits")["results"]
        ]
        invoices = {}
        for listed in api.ok("GET", f"invoices?customer={external_id}&page_size=100")["results"]:
            invoice = api.ok("GET", f"invoices/{listed['id']}")
            status, pdf = api.call("GET", f"invoices/{listed['id']}/pdf", raw=True)
            assert status == 200, f"invoice {listed['id']}'s PDF answered {status}"
            invoices[invoice["id"]] = {
                **{name: invoice[name] for name in INVOICE_FIELDS},
                "lines": sorted(
                    tuple(line[name] for name in LINE_FIELDS) for line in invoice["lines"]
                ),
                "pdf": hashlib.sha256(pdf).hexdigest(),
            }
        status, page = api.call("GET", portals[external_id], raw=True)
        text = page.decode(errors="replace")
        seen[external_id] = {
            "check": checks,
            "usage": usage_seen,
            "wallets": wallets,
            "record": {
                name: record.get(name)
                for name in (
                    "name",
                    "currency",
                    "locale",
                    "spend_limit",
                    "alert_thresholds",
                    "credit_balance",
                    "standing",
                )
            },
            "commits": commits,
            "invoices": invoices,
            "portal": (status, sorted(set(re.findall(r"INV-\d{4}-\d{6}", text)))),
        }
    return seen


def differences(before, after, path="") -> list[str]:
    """Where `after` differs from `before`, as paths (a key `after` lacks is one)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in before:
            if key not in after:
                found.append(f"{path}/{key}: gone")
            else:
                found += differences(before[key], after[key], f"{path}/{key}")
        return found
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def following(issued: list[str], count: int) -> list[str]:
    """The `count` numbers a gap-free sequence issues after `issued` (INV-2026-000012
    is followed by INV-2026-000013; a sequence not used yet starts at 000001): those
    of the sequence of the highest number issued, the newest year's."""
    sequence, _, last = max(issued, key=lambda number: (number[:-7], number[-6:])).rpartition("-")
    return [f"{sequence}-{int(last) + step:06d}" for step in range(1, count + 1)]


# Run by this checkout's Python on the drill's database (a subprocess), before and
# after its migrations.


def added_columns() -> None:
    """Before migrating: each column the migrations still to apply add, the table it
    goes to, whether that table exists now, its rows and highest id. Prints JSON."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.operations import AddField

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    tables = set(connection.introspection.table_names())
    found = []
    for migration, _backwards in plan:
        for operation in migration.operations:
            if not isinstance(operation, AddField):
                continue
            state = executor.loader.project_state((migration.app_label, migration.name))
            model = state.apps.get_model(migration.app_label, operation.model_name)
            field = model._meta.get_field(operation.name)
            table = model._meta.db_table
            rows = highest = 0
            if table in tables:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f'SELECT count(*), max("{model._meta.pk.column}") FROM "{table}"'  # noqa: S608
                    )
                    rows, highest = cursor.fetchone()
            found.append(
                {
                    "migration": f"{migration.app_label}.{migration.name}",
                    "model": f"{migration.app_label}.{operation.model_name}",
                    "field": operation.name,
                    "table": table,
                    "column": field.column,
                    "existed": table in tables,
                    "rows": rows,
                    "highest": highest if isinstance(highest, int) else None,
                }
            )
    print(json.dumps(found))


def same_kind(value, default) -> bool:
    numbers = (int, float, Decimal)
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, numbers):
        return isinstance(value, numbers)
    return isinstance(value, type(default))


def old_rows_read(columns_json: str) -> None:
    """After migrating: each added column of a table that had rows, read through this
    checkout's models on those rows; a value of another type than its field's default
    (the JSON string "{}" where the default is an object) is a finding. Prints JSON."""
    from django.apps import apps
    from django.db.models import NOT_PROVIDED, Value

    findings, read = [], 0
    for column in json.loads(columns_json):
        if not column["rows"] or column["highest"] is None:
            continue
        app_label, model_name = column["model"].split(".")
        try:
            model = apps.get_model(app_label, model_name)
            field = model._meta.get_field(column["field"])
        except LookupError:
            continue  # a model or field a later migration removed
        default = field.get_default() if field.has_default() else None
        if default is None and field.db_default is not NOT_PROVIDED:
            db_default = field.db_default
            default = db_default.value if isinstance(db_default, Value) else None
        values = model._base_manager.filter(pk__lte=column["highest"]).values_list(
            field.attname, flat=True
        )
        for value in values.iterator():
            read += 1
            if value is None and field.null:
                continue
            if default is not None and not same_kind(value, default):
                findings.append(
                    f"{column['model']}.{column['field']}: {value!r} (its default is {default!r})"
                )
                break
    print(json.dumps({"read": read, "findings": findings}))


# Run by each version's own Python: every customer's usage alerts and threshold
# invoices checked, as the worker does after an ingest.
ALERTS_CHECKED = (
    "import django; django.setup(); "
    "from billing.tasks import check_usage_alerts; from customers.models import Customer; "
    "check_usage_alerts(list(Customer.objects.values_list('pk', flat=True)))"
)


# Run by each version's own Python (the release's on the copy, this checkout's on the
# upgraded database): its close, as the beat runs it, at the start of next month.
CLOSE_AT = (
    "import sys, datetime, time_machine; "
    "time_machine.travel(datetime.datetime.fromisoformat(sys.argv[1]), tick=True).start(); "
    "import django; django.setup(); "
    "from django.core.management import call_command; call_command('close_periods')"
)


def closed_after(url: str, first_id: int, compared: set[str]) -> dict:
    """The invoices with an id from `first_id` of the compared customers: what each
    bills (lines by kind, meter, group, quantity and amount), by customer and reason."""
    with psycopg_connect(url) as db:
        invoices = db.execute(
            "SELECT i.id, c.external_id, i.reason, i.status, i.number, i.period_start, "
            "i.period_end, i.subtotal, i.tax, i.total FROM invoices_invoice i "
            "JOIN customers_customer c ON c.id = i.customer_id WHERE i.id >= %s ORDER BY i.id",
            [first_id],
        ).fetchall()
        lines = db.execute(
            "SELECT invoice_id, kind, meter, coalesce(\"group\", '{}')::text, quantity, amount "
            "FROM invoices_invoiceline WHERE invoice_id >= %s",
            [first_id],
        ).fetchall()
    by_invoice: dict[int, list] = {}
    for invoice_id, *line in lines:
        by_invoice.setdefault(invoice_id, []).append(tuple(str(value) for value in line))
    closed: dict[str, list] = {}
    for invoice_id, customer, reason, status, number, start, end, subtotal, tax, total in invoices:
        if customer not in compared:
            continue
        closed.setdefault(customer, []).append(
            {
                "reason": reason,
                "status": status,
                "numbered": number is not None,
                "period": (start.isoformat(), end.isoformat()),
                "subtotal": str(subtotal),
                "tax": str(tax),
                "total": str(total),
                "lines": sorted(by_invoice.get(invoice_id, [])),
            }
        )
    return closed


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def numbers(url: str) -> list[str]:
    with psycopg_connect(url) as db:
        return [
            row[0]
            for row in db.execute(
                "SELECT number FROM invoices_invoice WHERE number IS NOT NULL "
                "UNION SELECT number FROM invoices_creditnote ORDER BY 1"
            )
        ]


def test_the_previous_release_upgrades_with_its_data(tmp_path, capsys):
    version, commit = previous_release()
    bindir = postgres_bindir()

    def known() -> bool:
        found = subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],  # noqa: S607
            capture_output=True,
        )
        return found.returncode == 0

    if not known():
        # A shallow clone: fetch the one commit from where it was cloned from.
        subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "fetch", "--quiet", "--depth", "1", "origin", commit],  # noqa: S607
            capture_output=True,
        )
    if not known():
        unavailable(
            f"the upgrade drill needs the previous release's commit {commit} in this "
            "clone (a shallow clone lacks it: git fetch --unshallow)"
        )
    began = time.monotonic()
    timings: dict[str, float] = {}

    def timed(what: str, since: float) -> None:
        timings[what] = time.monotonic() - since

    # given: the release, installed as its README says (its own scripts/_venv.sh)
    release = tmp_path / "release"
    release.mkdir()
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "archive", commit],  # noqa: S607
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(release)], input=archive.stdout, check=True)  # noqa: S603, S607
    since = time.monotonic()
    subprocess.run(
        ["bash", "-c", ". scripts/_venv.sh && venv_setup"],  # noqa: S607
        cwd=release,
        check=True,
        capture_output=True,
    )
    release_python = release / ".venv" / "bin" / "python"
    subprocess.run(  # noqa: S603
        [str(release_python), "scripts/compilemessages.py"],
        cwd=release,
        check=True,
        capture_output=True,
    )
    timed("install", since)

    pg_dir = Path(tempfile.mkdtemp(prefix="billing-upgrade-drill-pg-"))
    postgres = ThrowawayPostgres(bindir, pg_dir)
    processes: list[subprocess.Popen] = []
    try:
        url = postgres.start()
        copy_url = url.rsplit("/", 1)[0] + "/billing_release_copy"
        (tmp_path / "metrics").mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url,
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "CELERY_BROKER_URL": "",
            "BILLING_VAR_DIR": str(tmp_path / "var"),
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "LOG_LEVEL": "WARNING",
            "BILLING_INVOICE_GRACE_HOURS": "0",
            # Last month's usage is posted now, up to 62 days old.
            "BILLING_LATE_EVENT_DAYS": "70",
            "API_THROTTLE_RATE": "off",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        }
        env.pop("CELERY_BROKER_URL")
        copy_env = {
            **env,
            "DATABASE_URL": copy_url,
            "MEDIA_ROOT": str(tmp_path / "copy-media"),
            "EMAIL_FILE_PATH": str(tmp_path / "copy-mail"),
        }

        def run(where: Path, python: Path, environment: dict, *args: str) -> str:
            done = subprocess.run(  # noqa: S603
                [str(python), *args], cwd=where, env=environment, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
            return done.stdout

        def head(code: str) -> str:
            return run(ROOT, VENV / "python", env, "-c", f"import django; django.setup(); {code}")

        def web(
            where: Path, bin_dir: Path, environment: dict, name: str
        ) -> tuple[subprocess.Popen, int]:
            port = free_port()
            process = spawn(
                *(str(bin_dir / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"),
                *("--workers", "2", "--log-level", "warning", "--timeout", "120"),
                *("--error-logfile", str(tmp_path / f"{name}.log")),
                cwd=where,
                env=environment,
            )
            processes.append(process)
            wait_until(name, lambda: listening(port), timeout=60)
            return process, port

        def stop(process: subprocess.Popen) -> None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            processes.remove(process)

        since = time.monotonic()
        run(release, release_python, env, "manage.py", "migrate", "--verbosity", "0")
        timed("the release's migrations", since)
        key = run(release, release_python, env, "manage.py", "create_api_key", "--name", "drill")
        key = key.strip().splitlines()[-1]
        release_web, port = web(release, release / ".venv" / "bin", env, "release-web")
        api = Api(port, key)
        now = datetime.now(UTC)
        since = time.monotonic()
        customers = seed(api, now)
        closed_last_month = run(release, release_python, env, "manage.py", "close_periods")
        portals = this_month(api, now, customers)
        # what its worker does after an ingest (the drill's processes run tasks in the
        # request, and the release defers this one): alerts and threshold invoices
        run(release, release_python, env, "-c", ALERTS_CHECKED)
        timed("the release's data", since)
        before = observe(api, customers, portals)
        release_numbers = numbers(url)
        with psycopg_connect(url) as db:
            alerts_before = db.execute(
                "SELECT c.external_id, a.kind, a.key FROM billing_alert a "
                "JOIN customers_customer c ON c.id = a.customer_id ORDER BY 1, 2, 3"
            ).fetchall()
            next_invoice_id = db.execute("SELECT max(id) + 1 FROM invoices_invoice").fetchone()[0]

        # a copy of the release's database, for the release's own next close
        stop(release_web)
        subprocess.run(  # noqa: S603
            [
                str(bindir / "psql"),
                "--dbname",
                url,
                "-qc",
                "CREATE DATABASE billing_release_copy TEMPLATE billing_drill",
            ],
            check=True,
            capture_output=True,
        )
        shutil.copytree(tmp_path / "media", tmp_path / "copy-media")
        release_web, port = web(release, release / ".venv" / "bin", env, "release-web-again")
        columns = json.loads(
            head(
                "from tests.test_upgrade_drill import added_columns; added_columns()"
            ).splitlines()[-1]
        )

        # when: this checkout's migrations run while 4 clients post events to the release
        stop_clients, tally = threading.Event(), Tally()
        clients = [
            threading.Thread(
                target=post_batches, args=(i, port, key, stop_clients, tally), daemon=True
            )
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(LOAD_AFTER)
        since = time.monotonic()
        migrated = run(ROOT, VENV / "python", env, "manage.py", "migrate", "--noinput")
        timed("this checkout's migrations, under ingestion", since)
        time.sleep(LOAD_AFTER)
        stop_clients.set()
        for client in clients:
            client.join(timeout=120)
        stop(release_web)

        # then: this checkout serves the upgraded database
        _, port = web(ROOT, VENV, env, "head-web")
        api = Api(port, key)
        after = observe(api, customers, portals)
        read = json.loads(
            head(
                "from tests.test_upgrade_drill import old_rows_read; "
                f"old_rows_read({json.dumps(json.dumps(columns))})"
            ).splitlines()[-1]
        )
        with psycopg_connect(url) as db:
            stored = {
                row[0]
                for row in db.execute(
                    "SELECT event_id FROM billing_usageevent WHERE event_id LIKE 'c%%'"
                )
            }
        limits = {
            external_id: api.call("GET", f"customers/{external_id}/limits")
            for external_id in customers
        }
        set_limits = api.call(
            "PUT", "customers/acme/limits", {"budget": {"amount": "350.00", "action": "stop"}}
        )
        limits_set = api.ok("GET", "customers/acme/limits")
        run(ROOT, VENV / "python", env, "-c", ALERTS_CHECKED)
        usage_events(
            api,
            "after",
            datetime.now(UTC) - timedelta(minutes=1),
            datetime.now(UTC),
            {"hooli": (("prompt", 40, {}),)},
        )
        with psycopg_connect(url) as db:
            alerts_after = db.execute(
                "SELECT c.external_id, a.kind, a.key FROM billing_alert a "
                "JOIN customers_customer c ON c.id = a.customer_id ORDER BY 1, 2, 3"
            ).fetchall()
            unemailed = db.execute(
                "SELECT count(*) FROM billing_alert WHERE emailed_at IS NULL"
            ).fetchone()[0]

        # and the next close, at the start of next month: the release's on the copy,
        # this checkout's on the upgraded database
        next_close = (month_start(now, 1) + timedelta(hours=1)).isoformat()
        since = time.monotonic()
        release_said = run(release, release_python, copy_env, "-c", CLOSE_AT, next_close)
        head_said = run(ROOT, VENV / "python", env, "-c", CLOSE_AT, next_close)
        timed("the next close, twice", since)
        compared = set(customers) - {"hooli"}
        by_release = closed_after(copy_url, next_invoice_id, compared)
        by_head = closed_after(url, next_invoice_id, compared)
        head_numbers = numbers(url)
    finally:
        processes_stop(processes)
        postgres.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)

    changed = differences(before, after)
    uncovered = [c for c in columns if c["existed"] and not c["rows"]]
    covered = [c for c in columns if c["existed"] and c["rows"]]
    lost = tally.acked_ids - stored
    new_alerts = sorted(set(alerts_after) - set(alerts_before))
    new_numbers = sorted(set(head_numbers) - set(release_numbers))
    with capsys.disabled():
        print(
            f"\n\nUpgrade drill: {version} ({commit[:10]}) -> this checkout, in "
            f"{time.monotonic() - began:.0f} s: "
            + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in timings.items())
            + f"\n  the release closed last month: {closed_last_month.strip()}"
            f"\n  this checkout's migrations: {migrated.count('Applying')} applied; "
            f"added columns: {len(columns)}, to tables with rows {len(covered)}, to existing "
            f"empty tables {len(uncovered)}, to new tables "
            f"{sum(1 for c in columns if not c['existed'])}; old rows read back {read['read']}"
            f"\n  ingestion into the release during them: statuses {tally.statuses}, events "
            f"acknowledged {len(tally.acked_ids)}, stored {len(tally.acked_ids & stored)}"
            f"\n  answers compared before and after, per customer: "
            + ", ".join(f"{c} {len(before[c]['invoices'])} invoices" for c in before)
            + f"; differing: {len(changed)}"
            f"\n  alerts: before {alerts_before}, new {new_alerts}, not emailed {unemailed}"
            f"\n  the next close: release '{release_said.strip()}', this checkout "
            f"'{head_said.strip()}'; numbers after the release's {new_numbers[:3]} ... "
            f"({len(new_numbers)})\n"
        )
        for line in changed[:40]:
            print("  differs:", line)
        for finding in read["findings"]:
            print("  old row:", finding)
        for column in uncovered:
            print("  not covered:", column)

    # every batch the release acknowledged is stored
    assert tally.acked_ids and lost == set()
    # the data covers every column added to a table that existed; old rows read right
    assert uncovered == []
    assert read["findings"] == []
    # every old customer answers as before
    assert changed == []
    assert all(status == 200 for status, _ in limits.values()), limits
    assert all(body["budget"] is None and body["caps"] == [] for _, body in limits.values())
    assert set_limits[0] == 200, set_limits
    assert limits_set["budget"]["amount"] == "350.00"
    # the alerts it had are not raised again; Hooli's next threshold raises one
    assert set(alerts_before) <= set(alerts_after)
    assert [(customer, key) for customer, _, key in new_alerts] == [("hooli", "prompts:100")]
    assert unemailed == 0
    # the next close bills what the release's bills, under the numbers that follow
    assert by_head == by_release
    assert sum(len(invoices) for invoices in by_head.values()) >= len(compared)
    assert new_numbers == following(release_numbers, len(new_numbers))

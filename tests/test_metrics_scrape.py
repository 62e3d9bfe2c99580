"""The metrics endpoint scraped as Prometheus does: granian with two worker
processes serving event batches, the folder service, and `manage.py
serve_metrics`, all real processes on the test database, counting into one
directory of this test's. The counts are the sums of the workers'; the fold's lag
is 0 while the folder folds, rises while it is stopped (no batch folds either:
BILLING_FOLD_MS of ten minutes, as when the folds fail), and is 0 again once it
runs; the queue's depth is the broker's (the filesystem transport's files)."""

import http.client
import json
import signal
import subprocess
import sys
import time

import pytest

from billing.usage.folding import fold_lag_seconds
from customers.services import customer_create
from plans.services import meter_create
from tests.billing.test_folding import ROOT, folder_env
from tests.factories import ApiKeyFactory
from tests.test_metrics import send
from tests.test_outage_drill import free_port, listening, sample, scrape, wait_until

VENV = ROOT / ".venv" / "bin"
LAG = "billing_usage_fold_lag_seconds"
REQUESTS = "billing_http_request_duration_seconds_count"
EVENTS = {"route": "api/v1/events", "method": "POST", "status": "202"}


def start(*command: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603 (fixed programs)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def post_events(port: int, key: str, ids: list[str], customer: str = "acme") -> dict:
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = {
        "events": [
            {"id": i, "customer": customer, "event_name": "prompt", "timestamp": moment}
            for i in ids
        ]
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/events", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    assert response.status == 202, answer
    return answer


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_scrape_adds_up_the_workers_and_the_fold_lag_rises_while_the_folder_is_stopped(
    tmp_path,
):
    # given: a meter, a customer and a key on the test database; the processes'
    # broker is the filesystem transport under this test's directory
    meter_create(code="prompts", name="Prompts", event_name="prompt", aggregation="count")
    customer_create(external_id="acme", name="Acme", currency="USD")
    key = ApiKeyFactory(name="scrape", scopes=["events:write"]).secret
    env = {
        **folder_env(),
        "BILLING_VAR_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "BILLING_FOLD_MS": "600000",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_LEVEL": "WARNING",
    }
    for variable in ("CELERY_BROKER_URL", "CACHE_URL"):
        env.pop(variable, None)
    web, metrics = free_port(), free_port()
    processes = {
        "web": start(
            *(str(VENV / "granian"), "--interface", "wsgi", "--host", "127.0.0.1"),
            *("--port", str(web), "--workers", "2", "--blocking-threads", "1"),
            *("--log-level", "warning", "config.wsgi:application"),
            env=env,
        ),
        "metrics": start(
            *(sys.executable, "manage.py", "serve_metrics", "--port", str(metrics)), env=env
        ),
        "folder": start(sys.executable, "manage.py", "fold_usage", "--every", "0.2", env=env),
    }
    try:
        wait_until("granian", lambda: listening(web), timeout=60)
        wait_until("serve_metrics", lambda: listening(metrics), timeout=60)

        # when: a batch while the folder runs
        post_events(web, key, ["a", "b", "c"])
        wait_until("the fold", lambda: sample(scrape(metrics), LAG) == 0)
        assert fold_lag_seconds() == 0

        # the folder stops; batches arrive a second apart, one with a duplicate and
        # an unknown customer's event
        stop(processes.pop("folder"))
        answer = post_events(web, key, ["d", "e", "a"])
        assert (answer["accepted"], answer["duplicates"]) == (2, 1)
        time.sleep(1.1)
        post_events(web, key, ["f"])
        first = scrape(metrics)
        time.sleep(1.1)
        rejected = post_events(web, key, ["g", "h"], customer="nobody")
        assert len(rejected["rejected"]) == 2
        post_events(web, key, ["i"])
        second = scrape(metrics)

        # then: the lag is the database's, and rises
        first_lag = sample(first, LAG)
        second_lag = sample(second, LAG)
        assert second_lag == fold_lag_seconds()
        assert 1.1 <= first_lag < second_lag
        assert second_lag >= first_lag + 1.1

        # the counts are the workers' together
        assert sample(second, "billing_usage_events_total", outcome="accepted") == 7
        assert sample(second, "billing_usage_events_total", outcome="duplicate") == 1
        assert sample(second, "billing_usage_events_total", outcome="rejected") == 2
        assert sample(second, REQUESTS, **EVENTS) == 5
        assert sample(first, REQUESTS, **EVENTS) == 3
        assert sample(second, "billing_metrics_source_up", source="database") == 1
        assert sample(second, "billing_metrics_source_up", source="broker") == 1

        # the queue's depth is the broker's: the alert checks ingestion enqueued on
        # the urgent queue (no worker runs) and three messages more
        folders = {"data_folder_in": str(tmp_path / "broker" / "queue")}
        folders |= {"data_folder_out": folders["data_folder_in"]}
        folders |= {"control_folder": str(tmp_path / "broker" / "control")}
        send("filesystem://", "urgent", 3, **folders)
        waiting = len(list((tmp_path / "broker" / "queue").glob("*.urgent.msg")))
        assert waiting > 3
        assert sample(scrape(metrics), "billing_queue_messages", queue="urgent") == waiting

        # and once the folder runs again, nothing is behind
        processes["folder"] = start(
            sys.executable, "manage.py", "fold_usage", "--every", "0.2", env=env
        )
        wait_until("the fold", lambda: sample(scrape(metrics), LAG) == 0)
        assert fold_lag_seconds() == 0
    finally:
        for process in processes.values():
            stop(process)

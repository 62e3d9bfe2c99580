"""The metrics server adds up the files of every container's folder: in the compose
stack each container counts under a folder of its own on the shared metrics volume
(its processes' numbers repeat those of the other containers), and the scrape must
sum them all, as it sums one host's processes."""

import os
import subprocess
import sys

from prometheus_client import CollectorRegistry

from config.metrics_export import FoldersCollector

COUNT = """
from prometheus_client import Counter
Counter("billing_probe", "a probe", ["source"]).labels(source="test").inc({amount})
"""


def count_in(folder, amount: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run(  # noqa: S603 (this interpreter, a fixed program)
        [sys.executable, "-c", COUNT.format(amount=amount)], env=env, check=True
    )


def test_the_scrape_adds_up_the_root_and_each_containers_folder(tmp_path):
    # given: counts in the metrics server's own folder and in two containers' folders
    count_in(tmp_path, 1)
    count_in(tmp_path / "web-1", 2)
    count_in(tmp_path / "worker-default-1", 4)

    # when: a scrape collects the root
    registry = CollectorRegistry()
    FoldersCollector(registry, path=str(tmp_path))
    total = registry.get_sample_value("billing_probe_total", {"source": "test"})

    # then: every folder's count is in the sum
    assert total == 7

"""The test run's settings: config.settings as on a developer's machine, DEBUG on
unless the environment says otherwise (the settings default it off, which requires a
SECRET_KEY and ALLOWED_HOSTS). Set in os.environ, so the servers and workers that
tests start read the same."""

import os

os.environ.setdefault("DEBUG", "1")

from config.settings import *  # noqa: F403

# Every test reads and writes the primary, whatever DATABASE_REPLICA_URLS says. The
# replica router's tests (tests/test_replica_reads.py) turn it on with this alias, the
# test database itself (a test mirror: nothing is created or migrated for it).
DATABASES = {
    "default": DATABASES["default"],  # noqa: F405
    "replica_0": {**DATABASES["default"], "TEST": {"MIRROR": "default"}},  # noqa: F405
}
DATABASE_REPLICAS = []
DATABASE_ROUTERS = []
MIDDLEWARE = [m for m in MIDDLEWARE if m != "config.replica_reads.ReplicaReadsMiddleware"]  # noqa: F405

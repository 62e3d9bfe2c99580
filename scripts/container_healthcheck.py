"""The image's health check (Containerfile HEALTHCHECK): the web role is healthy when
/readyz answers 200 (the database, the broker and the migrations: config/health.py),
the metrics role when /metrics answers; the other roles while their process runs.
The role is the one scripts/container_entrypoint.sh wrote as the container started."""

import http.client
import os
import sys
from pathlib import Path

ROLE_FILE = Path(os.environ.get("BILLING_VAR_DIR", "/var/lib/billing")) / "role"
PATHS = {
    "web": (int(os.environ.get("PORT", "8000")), "/readyz"),
    "metrics": (int(os.environ.get("METRICS_PORT", "9464")), "/metrics"),
}

role = ROLE_FILE.read_text().strip() if ROLE_FILE.exists() else ""
if role in PATHS:
    port, path = PATHS[role]
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
        connection.request("GET", path)
        status = connection.getresponse().status
    except OSError as exc:
        print(f"{path} on port {port}: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if status == 200 else 1)

"""The image's health check (Containerfile HEALTHCHECK): the web role is healthy when
/readyz answers 200 (the database, the broker and the migrations: config/health.py),
the metrics role when /metrics answers; the other roles while their process runs."""

import os
import sys
import urllib.request
from pathlib import Path

role = Path("/tmp/billing-role").read_text().strip() if Path("/tmp/billing-role").exists() else ""
urls = {
    "web": f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/readyz",
    "metrics": f"http://127.0.0.1:{os.environ.get('METRICS_PORT', '9464')}/metrics",
}
if role in urls:
    try:
        with urllib.request.urlopen(urls[role], timeout=4) as answer:
            sys.exit(0 if answer.status == 200 else 1)
    except Exception as exc:  # any failure to answer is "unhealthy"
        print(f"{urls[role]}: {exc}", file=sys.stderr)
        sys.exit(1)

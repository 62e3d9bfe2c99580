"""Settings, read from the environment.

With nothing set, the project runs embedded: SQLite under var/ and a Celery
broker on the filesystem, so one command brings it up on a bare machine. Set
DATABASE_URL and CELERY_BROKER_URL for PostgreSQL and Redis.
"""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from common.logs import log_format_from
from config.environment import (
    env_bool,
    env_count_or_off,
    env_decimal,
    env_decimal_list,
    env_int,
    env_int_at_least,
    env_list,
    env_minutes_list,
    env_rate,
    env_task_limits,
)
from config.log_setup import logging_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BILLING_VAR_DIR", BASE_DIR / "var"))

# Off unless asked for: a deployment that forgets the variable never shows Django's
# debug pages. scripts/run.sh sets what DEBUG off needs; DEBUG=1 for development.
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
# Both named at once: who sets the first is not sent back for the second.
_unset = [
    name
    for name, unset in (
        ("SECRET_KEY", not SECRET_KEY),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS" not in os.environ),
    )
    if unset
]
if not DEBUG and _unset:
    raise ImproperlyConfigured(
        f"{' and '.join(_unset)} must be set when DEBUG is off (DEBUG=1 for development)"
    )
if not SECRET_KEY:
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# HTTPS only when DEBUG is off (`check --deploy` passes), each overridable. Behind a
# proxy that terminates TLS, name the header it sets to "https" in SECURE_PROXY_SSL_HEADER
# (e.g. X-Forwarded-Proto; only if the proxy always sets it), or the redirect loops.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    _proxy_header = os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_proxy_header}", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# Browsers then refuse plain http for this host (and its subdomains) for a year.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)

INSTALLED_APPS = [
    # Its runserver (config.devserver: reads a body sent chunked) ahead of staticfiles'.
    "config",
    # django.contrib.admin, its site with sections (config.admin_site: Accounting).
    "config.admin_site.BillingAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and ReDoc as static files of the project: /api/docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "djmoney",
    "nested_admin",
    "django_celery_beat",
    "simple_history",
    "axes",
    "customers",
    "plans",
    "billing",
    "wallets",
    "invoices",
]

MIDDLEWARE = [
    # First: each request's id (X-Request-ID) and customer on the records it writes,
    # and in JSON its line (config.request_log).
    "config.request_log.RequestLogMiddleware",
    # Then every request counted and timed by route and status, whatever answers it.
    "config.request_metrics.RequestMetricsMiddleware",
    # /healthz and /readyz, before anything redirects to https or reads the Host
    # header (a load balancer's check may name the instance's IP): config.health.
    "config.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the request: a body over the limit (413), text no column
    # can store in a query parameter (400) or in a path segment (404).
    "config.middleware.InputGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Does nothing for the API, whose views are csrf_exempt; `check --deploy` looks
    # for it by name.
    "django.middleware.csrf.CsrfViewMiddleware",
    # The session, the user, messages, the audit history's request, the outage page
    # and the admin user's language, in one entry passing /api/v1/ straight on
    # (config.site_middleware).
    "config.site_middleware.SiteMiddleware",
    # Last, as django-axes asks: turns a locked-out admin login into its lockout page.
    "axes.middleware.AxesMiddleware",
]
# History pages show what changed; they never write: a "revert" would bypass the
# services' validation (a published version, an invoice, a balance).
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # Django's default loaders (cached), the apps' templates read by our
            # own loader: nested_admin's inline "Remove" in the user's language.
            "loaders": [
                (
                    "django.template.loaders.cached.Loader",
                    ["django.template.loaders.filesystem.Loader", "config.template_loaders.Loader"],
                )
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL in production and CI, SQLite when nothing is set.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # Connections live a minute; each request first checks that its connection still
    # works (a restart drops them all), so it reconnects instead of failing.
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend with a check that sends nothing, and prepared statements for
        # the written-out SQL of the hot paths and the close (config.postgresql,
        # common.rawsql), each prepared once it ran 5 times on a connection.
        # Behind a pooler in transaction mode that does not keep prepared statements
        # (PgBouncer before 1.21), set this off.
        DATABASES["default"]["ENGINE"] = "config.postgresql"
        # No JIT compilation: every statement here is short, and the planner's
        # guess of a set-returning function's rows (100 each) made it compile the
        # fold's statements (billing.usage.folding), 50 ms to a second each time.
        # And a prepared statement is planned once, generically: with the default
        # (auto), PostgreSQL kept planning the usage reads on every run (0.85 ms,
        # ten times their execution) because its generic estimate of the events not
        # folded yet is a third of the table. It applies to the statements bound on
        # the server: the written-out SQL of common.rawsql (each bounded by a
        # customer's or a row's keys) and ingestion's statements, whose plans do not
        # depend on their parameters (one JSON document each); not to the ORM's.
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
            "options", "-c jit=off -c plan_cache_mode=force_generic_plan"
        )
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"]["ENGINE"] = "config.sqlite3"
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            # Django's backend reading whole decimals back exactly (config.sqlite3).
            "ENGINE": "config.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # Wait for a lock instead of failing at once when the worker writes too.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
if DATABASES["default"]["ENGINE"] == "config.sqlite3":
    # Tests on SQLite run in memory, as Django's own backend does; named, so that
    # pytest-xdist's test processes, each in its own memory, do not take the file's
    # name for theirs (pytest-django suffixes any other name per process).
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", ":memory:")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Read replicas (docs/scaling.md, step 3): PostgreSQL hot standbys, comma-separated
# URLs, aliases replica_0, replica_1, ... The reports, the portal page and the admin's
# lists read from one (config.replica_reads); everything else, and every write, uses
# the primary. Unset: no router, every read on the primary.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
DATABASE_REPLICAS = []
for _index, _url in enumerate(DATABASE_REPLICA_URLS):
    _replica = dj_database_url.parse(_url, conn_max_age=60, conn_health_checks=True)
    if _replica["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URLS: {_url!r} is not a postgres:// URL")
    _replica["ENGINE"] = DATABASES["default"]["ENGINE"]
    _replica["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        # A replica host that drops packets costs a request 2 s, then the primary.
        "connect_timeout": 2,
        **_replica.get("OPTIONS", {}),
    }
    # Tests and migrations run on the primary only: in tests the alias is the primary.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_index}"] = _replica
    DATABASE_REPLICAS.append(f"replica_{_index}")
# A replica further behind than this (ms) is not read until it catches up; its lag is
# measured at most once in this many ms per process. A customer's, an admin user's or
# an API client's reads stay on the primary this long (ms) after they wrote: at least
# the lag bound plus the check's interval, so that the replica read then has the write.
DATABASE_REPLICA_MAX_LAG_MS = env_int_at_least("DATABASE_REPLICA_MAX_LAG_MS", 2000, 0)
DATABASE_REPLICA_CHECK_MS = env_int_at_least("DATABASE_REPLICA_CHECK_MS", 1000, 0)
DATABASE_REPLICA_READ_YOUR_WRITES_MS = env_int(
    "DATABASE_REPLICA_READ_YOUR_WRITES_MS",
    max(5000, DATABASE_REPLICA_MAX_LAG_MS + DATABASE_REPLICA_CHECK_MS),
)
if DATABASE_REPLICA_READ_YOUR_WRITES_MS < DATABASE_REPLICA_MAX_LAG_MS + DATABASE_REPLICA_CHECK_MS:
    raise ImproperlyConfigured(
        "DATABASE_REPLICA_READ_YOUR_WRITES_MS must be at least DATABASE_REPLICA_MAX_LAG_MS "
        "plus DATABASE_REPLICA_CHECK_MS, or a write could be read back missing from a replica"
    )
DATABASE_ROUTERS = []
if DATABASE_REPLICAS:
    DATABASE_ROUTERS = ["config.db_routers.ReplicaRouter"]
    # Last: which view is called is known (its process_view), the user too.
    MIDDLEWARE.append("config.replica_reads.ReplicaReadsMiddleware")

# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin logins: after AXES_FAILURE_LIMIT failures for one username from one address
# (AXES_LOCKOUT_PARAMETERS, groups joined by "+"), that pair is locked out for
# AXES_COOLOFF_MINUTES (0: until `manage.py axes_reset`). Attempts are rows in the
# database (admin: Axes). A success resets the pair's failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
_axes_cooloff_minutes = env_int("AXES_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=_axes_cooloff_minutes) if _axes_cooloff_minutes else None
AXES_LOCKOUT_PARAMETERS = [
    group if "+" not in group else group.split("+")
    for group in env_list("AXES_LOCKOUT_PARAMETERS", ["username+ip_address"])
]
AXES_RESET_ON_SUCCESS = True
# No banner on every manage.py command; lockouts are still logged.
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "common.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "config.lockout.admin_lockout_response"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The admin's default date and time formats (config/formats/en): the zone named.
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True
# The project's own catalogs (invoices and credit notes in French and German): the
# .po files are committed, the .mo files are compiled by scripts/compilemessages.py.
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
# Generated files (invoice PDFs) go to the default storage: files under MEDIA_ROOT.
# Nothing serves MEDIA_URL: invoice PDFs are only handed out by the API and the admin.
# Swap the backend (e.g. django-storages' S3) when the web and worker hosts differ.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customers.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["customers.auth.HasScope"],
    "DEFAULT_PARSER_CLASSES": ["common.rest_api.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "common.rest_api.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "common.rest_api.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.rest_api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.schema.BillingAutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
    # Requests per API key (API_THROTTLE_RATE); customers.auth limits wrong keys.
    "DEFAULT_THROTTLE_CLASSES": ["common.throttling.ApiKeyRateThrottle"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Usage billing API",
    "DESCRIPTION": "Meters, plans, customers, usage, wallets and invoices.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # The docs' JavaScript and CSS come from this server (drf-spectacular-sidecar),
    # so /api/docs/ and /api/redoc/ work without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies get components of their own ("CustomerRequest"): what a client
    # may send (no read-only fields, minLength 1 where blank is refused) differs from
    # what it is answered.
    "COMPONENT_SPLIT_REQUEST": True,
    # Named where several components share one choice set.
    "ENUM_NAME_OVERRIDES": {
        "SubscriptionStatusEnum": "billing.models.Subscription.STATUSES",
        "InvoiceReasonEnum": "invoices.models.Invoice.REASONS",
        "CreditNoteReasonEnum": "invoices.models.CreditNote.REASONS",
        "FeatureKindEnum": "common.vocabulary.FeatureKind",
        "CommitBillingEnum": "wallets.commit_models.Commit.BILLINGS",
        "CommitAccessEnum": "wallets.commit_models.Commit.ACCESSES",
        "CommitStatusEnum": "wallets.commit_models.Commit.STATUSES",
        "EInvoiceFormatEnum": "customers.e_invoice_details.E_INVOICE_FORMATS",
    },
}

# Request bodies: the events endpoint takes up to 1 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# A gateway's or an exporter's request (billing.api.integrations): LiteLLM's logging
# payloads carry each call's messages and answer, so its batches are larger than
# POST /events': its default batch of 512 calls with long prompts passes 8 MB, and
# LiteLLM drops a batch answered 413. A gzip body is held to this size unpacked too.
BILLING_INTEGRATION_MAX_BODY = env_int_at_least(
    "BILLING_INTEGRATION_MAX_BODY", 32 * 1024 * 1024, DATA_UPLOAD_MAX_MEMORY_SIZE
)
# A usage source's preview (its last calls, the models it received) is written by a
# process at most this often, and at once when a request brings a model it does not
# show or a refused record (billing.integrations.ingest.PreviewBuffer).
BILLING_INTEGRATION_PREVIEW_SECONDS = float(
    os.environ.get("BILLING_INTEGRATION_PREVIEW_SECONDS", "2")
)
# A record a source sent and we refused is kept this many days, to be read and
# replayed (billing.integrations.refused); a record whose JSON is larger than
# BILLING_REFUSED_RECORD_MAX_BYTES (its long texts shortened) is kept cut, not replayable.
BILLING_REFUSED_RECORD_DAYS = env_int_at_least("BILLING_REFUSED_RECORD_DAYS", 30, 1)
BILLING_REFUSED_RECORD_MAX_BYTES = env_int_at_least(
    "BILLING_REFUSED_RECORD_MAX_BYTES", 64 * 1024, 1024
)

# Celery: Redis (or any broker) when set; the filesystem transport otherwise,
# which needs no server and is shared by the web process, worker and beat.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (broker_dir / sub).mkdir(parents=True, exist_ok=True)
    # The host is ignored by the transport; named, so kombu does not log "No hostname
    # was supplied. Reverting to default 'localhost'" at each connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }
# RabbitMQ (docs/running.md, "RabbitMQ"): the queues (default, urgent, bulk) quorum
# queues, replicated and kept across a restart; their exchanges topic ones, so that a
# countdown (seconds: common.task_sending.COUNTDOWN_LIMIT_SECONDS) waits in RabbitMQ's delay
# queues (Celery's native delayed delivery), not unacknowledged in a worker, which
# quorum queues could not prefetch past (no global QoS; the worker detects them); and
# publisher confirms, so that a task is sent once RabbitMQ has it, not once written.
if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Time limits (soft, hard) in seconds: every task's, longer ones tasks name (running.md).
BILLING_TASK_LIMITS = env_task_limits(pdf=(180, 210), beat=(900, 960), bulk=(1800, 1860))
CELERY_TASK_SOFT_TIME_LIMIT, CELERY_TASK_TIME_LIMIT = BILLING_TASK_LIMITS["default"]

# Metrics (common.metrics): every process of the host (the web server's workers,
# Celery's, the beat, the folder) counts in files of its own in this directory, and
# `manage.py serve_metrics` adds them up for Prometheus (prometheus-client's multiprocess
# mode, chosen by this variable before the first metric is made: set here, as the
# settings load, for this process and the ones it starts). Empty it only while none of
# them runs (scripts/run.sh does at start): a file removed under a running process
# takes that process's counts out of the sums until it restarts.
METRICS_DIR = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or VAR_DIR / "metrics")
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

# Cache: the API's rate limits (common.throttling). Redis at CACHE_URL, or on the
# broker's Redis when that is Redis, so that all processes share one count; otherwise
# each process counts on its own (local memory).
CACHE_URL = os.environ.get("CACHE_URL", "")
if not CACHE_URL and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHE_URL = CELERY_BROKER_URL
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            # Django's RedisCache, reusing its Redis client (config/cache.py).
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "billing",
            # Fail fast: the limits let requests through when Redis is out of reach.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, got {CACHE_URL!r}")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Requests per API key, and wrong keys per client address before that address is
# refused (429) until the window ends: `6000/min`, `10/s`, `off`.
API_THROTTLE_RATE = env_rate("API_THROTTLE_RATE", "6000/min")
API_AUTH_FAILURE_RATE = env_rate("API_AUTH_FAILURE_RATE", "60/min")
# Proxies in front that append the client's address to X-Forwarded-For; 0 trusts the
# header not at all (the client is REMOTE_ADDR). For the API's limits and admin logins.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Billing rules.
BILLING_LATE_EVENT_DAYS = env_int("BILLING_LATE_EVENT_DAYS", 35)
BILLING_FUTURE_EVENT_SECONDS = env_int("BILLING_FUTURE_EVENT_SECONDS", 300)
# PostgreSQL: months of events kept attached at least, `off` (billing.usage.detaching).
BILLING_EVENT_MONTHS_ATTACHED = env_count_or_off("BILLING_EVENT_MONTHS_ATTACHED", 0)
# PostgreSQL: how often (ms) an ingesting process folds the rollup tail into the
# hourly rollups after a batch (billing.usage.folding), when no folder service folds
# more often (it folds every second); 0 folds after every batch.
BILLING_FOLD_MS = env_int("BILLING_FOLD_MS", 2000)
# Per process: how much of the finished partial hours at the edges of usage reads
# is kept aggregated (billing.usage.edge_cache): an entry weighs 1 plus its keys
# (meters, or meters and groups) plus its distinct values; 0 keeps none.
BILLING_EDGE_CACHE_SIZE = env_int_at_least("BILLING_EDGE_CACHE_SIZE", 100_000, 0)
# Grouped property values with a group of their own per customer, meter, month.
BILLING_GROUP_VALUES_LIMIT = env_int_at_least("BILLING_GROUP_VALUES_LIMIT", 500, 1)
BILLING_INVOICE_GRACE_HOURS = env_int("BILLING_INVOICE_GRACE_HOURS", 0)
# Days from finalization to an invoice's due date, unless the customer has its own.
BILLING_PAYMENT_TERMS_DAYS = env_int("BILLING_PAYMENT_TERMS_DAYS", 30)
if not 0 <= BILLING_PAYMENT_TERMS_DAYS <= 365:
    raise ImproperlyConfigured(
        f"BILLING_PAYMENT_TERMS_DAYS must be from 0 to 365, got {BILLING_PAYMENT_TERMS_DAYS}"
    )
# How long a customer portal link works.
BILLING_PORTAL_TTL_SECONDS = env_int("BILLING_PORTAL_TTL_SECONDS", 3600)
# Where customers reach this installation (links in reminder emails), and how
# long a reminder's link to pay its invoice works.
BILLING_PUBLIC_URL = os.environ.get("BILLING_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
BILLING_PAY_LINK_DAYS = env_int("BILLING_PAY_LINK_DAYS", 45)
# How the journal recognizes fees billed in advance as earned: one document per
# customer and "day" or "month" of its seller's zone (billing.revenue.recognition).
BILLING_RECOGNITION_PERIOD = os.environ.get("BILLING_RECOGNITION_PERIOD", "month").strip()
if BILLING_RECOGNITION_PERIOD not in ("day", "month"):
    raise ImproperlyConfigured(
        f"BILLING_RECOGNITION_PERIOD must be day or month, got {BILLING_RECOGNITION_PERIOD!r}"
    )
# How long the portal link in an invoice or credit note email works (it cannot
# be revoked before then; the API's and the admin's links last
# BILLING_PORTAL_TTL_SECONDS).
BILLING_PORTAL_EMAIL_LINK_DAYS = env_int("BILLING_PORTAL_EMAIL_LINK_DAYS", 45)
# Where issued UBL e-invoices (XRechnung, Peppol BIS 3) go (invoices.e_invoices.
# access_points): "" nowhere (nothing is sent), "folder" into BILLING_PEPPOL_FOLDER
# for an external Peppol access point (Oxalis, phase4) to pick up, "fake" (tests).
BILLING_PEPPOL_ACCESS_POINT = os.environ.get("BILLING_PEPPOL_ACCESS_POINT", "").strip()
if BILLING_PEPPOL_ACCESS_POINT not in ("", "folder", "fake"):
    raise ImproperlyConfigured(
        "BILLING_PEPPOL_ACCESS_POINT must be empty, folder or fake, "
        f"got {BILLING_PEPPOL_ACCESS_POINT!r}"
    )
# OpenPeppol's Peppol BIS 3 Schematron, which no package ships (its licence): an
# operator who holds the release compiles PEPPOL-EN16931-UBL.sch to XSLT and names
# the file, its sha256 and the release; those rules then run before a Peppol
# document is numbered (invoices.e_invoices.rule_sets.peppol_rule_set).
BILLING_PEPPOL_RULES = os.environ.get("BILLING_PEPPOL_RULES", "").strip()
BILLING_PEPPOL_RULES_SHA256 = os.environ.get("BILLING_PEPPOL_RULES_SHA256", "").strip()
BILLING_PEPPOL_RULES_VERSION = os.environ.get("BILLING_PEPPOL_RULES_VERSION", "").strip()
BILLING_PEPPOL_FOLDER = Path(
    os.environ.get("BILLING_PEPPOL_FOLDER", "") or VAR_DIR / "peppol-outbox"
)
# Render and store each invoice's PDF (a Celery task) once it is finalized.
BILLING_INVOICE_PDFS = env_bool("BILLING_INVOICE_PDFS", True)
# The first billing entity (the seller on invoices), created from these when the
# database is migrated (customers migration 0008); afterwards the sellers are
# edited in the admin, and these are only read where no entity row exists.
# BILLING_SELLER_ADDRESS: lines separated by "|".
BILLING_SELLER = {
    "name": os.environ.get("BILLING_SELLER_NAME", "Usage Billing Inc."),
    "address": [
        line.strip()
        for line in os.environ.get(
            "BILLING_SELLER_ADDRESS", "1 Example Street|Springfield, 12345|United States"
        ).split("|")
        if line.strip()
    ],
    "email": os.environ.get("BILLING_SELLER_EMAIL", "billing@example.com"),
    "tax_id": os.environ.get("BILLING_SELLER_TAX_ID", ""),
    # ISO 3166-1 alpha-2: a customer in another country gets its country printed.
    "country": os.environ.get("BILLING_SELLER_COUNTRY", "US").strip().upper(),
    # Where customers pay by transfer, printed on every invoice (empty: not printed).
    "bank": {
        "bank_name": os.environ.get("BILLING_SELLER_BANK_NAME", ""),
        "iban": os.environ.get("BILLING_SELLER_IBAN", ""),
        "bic": os.environ.get("BILLING_SELLER_BIC", ""),
    },
    "payment_instructions": os.environ.get("BILLING_SELLER_PAYMENT_INSTRUCTIONS", ""),
}
# Percentages of a charge's included units at which a usage alert fires, for the
# customers that set none of their own.
BILLING_ALERT_THRESHOLDS = env_decimal_list(
    "BILLING_ALERT_THRESHOLDS", [Decimal(50), Decimal(75), Decimal(90), Decimal(100)]
)
# A customer's usage thresholds are checked after ingestion at most this often
# (seconds); a crossing in between is reported at the end of the interval.
BILLING_ALERT_CHECK_SECONDS = env_int("BILLING_ALERT_CHECK_SECONDS", 10)
# A customer whose margin in its current period so far (percent of revenue, as
# GET /api/v1/margins counts it) falls below this raises `margin_low` to the
# seller's team (billing.margins.alerts, on the beat). Unset: no margin alerts.
BILLING_MARGIN_ALERT_PERCENT = env_decimal("BILLING_MARGIN_ALERT_PERCENT")
# Hosts that outgoing webhooks may reach whatever their addresses, over http:// too
# (a receiver on localhost in development, the tests' receiver). Empty in production:
# webhooks then go only to https:// URLs whose host resolves to public addresses.
BILLING_WEBHOOK_ALLOWED_HOSTS = env_list("BILLING_WEBHOOK_ALLOWED_HOSTS", [])
# Who checks VAT numbers (customers.vat_checks): "" none (a check is refused),
# "vies" the EU's VIES service at BILLING_VIES_URL, "fake" a deterministic stand-in.
BILLING_VAT_CHECKER = os.environ.get("BILLING_VAT_CHECKER", "").strip().lower()
if BILLING_VAT_CHECKER not in ("", "vies", "fake"):
    raise ImproperlyConfigured(
        f'BILLING_VAT_CHECKER must be "", "vies" or "fake", got {BILLING_VAT_CHECKER!r}'
    )
BILLING_VIES_URL = os.environ.get(
    "BILLING_VIES_URL", "https://ec.europa.eu/taxation_customs/vies/rest-api"
).rstrip("/")

# Email (alerts, invoices and credit notes). Embedded and DEBUG: printed to the
# console; otherwise SMTP, so that an email recorded "sent" has left the machine
# (without a mail server an invoice email is recorded failed, in the admin).
# EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend keeps them as
# files under EMAIL_FILE_PATH instead.
# The SMTP backend is Django's, sending to internationalized addresses
# (経理@sakura.jp) with SMTPUTF8 (config.email_backend).
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "config.email_backend.EmailBackend",
)
EMAIL_FILE_PATH = Path(os.environ.get("EMAIL_FILE_PATH", VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# The sender of the emails to customers: the customer's billing entity's "Email
# sender", else the address set here for that kind of email, else the entity's
# contact email (customers.billing_entities.seller_from_email). DEFAULT_FROM_EMAIL,
# when set, stands for both kinds; "billing@localhost" only for an entity with no email.
_from_email = os.environ.get("DEFAULT_FROM_EMAIL", "")
DEFAULT_FROM_EMAIL = _from_email or "billing@localhost"
BILLING_ALERT_FROM_EMAIL = os.environ.get("BILLING_ALERT_FROM_EMAIL", "") or _from_email
# Email each invoice and credit note (its PDF attached) to the customer once it is
# issued (a Celery task); replies go to the entity's contact email.
BILLING_INVOICE_EMAILS = env_bool("BILLING_INVOICE_EMAILS", True)
BILLING_INVOICE_FROM_EMAIL = os.environ.get("BILLING_INVOICE_FROM_EMAIL", "") or _from_email
# An invoice email the mail server refused or could not take is sent again after
# each of these waits (minutes): 1,5,30,120 makes five attempts in all, then it
# is recorded failed (the admin's "Send again" tries once more).
BILLING_INVOICE_EMAIL_RETRY_MINUTES = env_minutes_list(
    "BILLING_INVOICE_EMAIL_RETRY_MINUTES", ["1", "5", "30", "120"]
)

# Payments: unset means payments are recorded by hand in the admin.
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
# Each call to Stripe: connect within 5 s, an answer within this many seconds;
# a network error or a 5xx answer is tried again this many times (never a 4xx).
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 20)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
# An off-session charge (an invoice, an auto top-up) that fails is tried again
# after each of these waits (minutes): 60,1440 makes three attempts in all. Then
# the invoice is uncollectible, the purchase failed.
STRIPE_PAYMENT_RETRY_MINUTES = env_minutes_list("STRIPE_PAYMENT_RETRY_MINUTES", ["60", "1440"])
# Where Stripe Checkout sends the buyer back; a request may name its own.
STRIPE_CHECKOUT_SUCCESS_URL = os.environ.get("STRIPE_CHECKOUT_SUCCESS_URL", "")
STRIPE_CHECKOUT_CANCEL_URL = os.environ.get("STRIPE_CHECKOUT_CANCEL_URL", "")

# Logs (docs/running.md, Logs): LOG_FORMAT=plain (the default) writes each record's
# message, for a person at a terminal; json writes one JSON object a line (time,
# level, logger, message, and where known the request id, the customer, the task),
# for a log shipper, from every process (config.log_setup). Either way a broker out
# of reach is one line a second at most.
try:
    LOG_FORMAT = log_format_from(os.environ.get("LOG_FORMAT"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
LOGGING_CONFIG = "config.log_setup.configure_logging"
LOGGING = logging_settings(log_format=LOG_FORMAT, level=os.environ.get("LOG_LEVEL", "INFO"))

"""Every metric the project counts, each defined once (prometheus-client).

A process counts what it does (requests, event batches, finalizations, email
attempts, tasks) in files of its own under METRICS_DIR, prometheus-client's
multiprocess mode (config/settings.py sets PROMETHEUS_MULTIPROC_DIR), so the web
server's workers, Celery's and the folder all add up: `manage.py serve_metrics`
sums every process's files when Prometheus scrapes it (config.metrics_export),
beside what describes the system as a whole, read at that moment (the fold's lag,
the queues' depths). Only counters and a histogram: a gauge set by one process
would need a rule for adding it up with the others'.

A count is one write to a memory-mapped file (about 2 us): counted per request
and per batch of events, never per event."""

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from prometheus_client import Counter, Histogram, values

if values.ValueClass is values.MutexValue:
    raise ImproperlyConfigured(
        "prometheus_client was imported before config.settings set PROMETHEUS_MULTIPROC_DIR: "
        "each process would count on its own, and a scrape would see one of them"
    )

# Seconds: a check's target is a p99 of 3 ms, a batch of 500 events takes about 10.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Its _count is the requests by route and status: no counter beside it, which would
# be a second write on every request.
REQUESTS = Histogram(
    "billing_http_request_duration_seconds",
    "Requests answered, by route (the URL pattern, never the path), method and status, "
    "and the seconds each took in the application",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)


def _by_outcome(name: str, documentation: str, *outcomes: str) -> tuple:
    """A counter by outcome, and its series of each outcome, made now: each is
    scraped as 0 before its first count."""
    counter = Counter(name, documentation, ["outcome"])
    return counter, *(counter.labels(outcome) for outcome in outcomes)


USAGE_EVENTS, _ACCEPTED, _DUPLICATE, _REJECTED = _by_outcome(
    "billing_usage_events",
    "Usage events received in batches, by outcome: accepted (stored), duplicate (an id "
    "already stored or repeated in its batch), rejected (invalid; the batch's other "
    "events are stored)",
    "accepted",
    "duplicate",
    "rejected",
)

INVOICES_FINALIZED = Counter(
    "billing_invoices_finalized",
    "Invoices finalized (numbered and issued), counted as their transaction commits",
)

DOCUMENT_EMAILS, EMAIL_SENT, EMAIL_RETRYING, EMAIL_FAILED = _by_outcome(
    "billing_document_email_attempts",
    "Attempts at emailing an invoice or credit note, by outcome: sent; retrying (the mail "
    "server failed, another attempt is scheduled); failed (no attempt left: shown in the "
    "admin, Document emails)",
    "sent",
    "retrying",
    "failed",
)

REPLICA_READS, *_ = _by_outcome(
    "billing_replica_reads",
    "Requests of the views that may read from a read replica (config.replica_reads), by "
    "outcome: replica (read from one); or read from the primary: recent_write (the "
    "customer, user or API client wrote within the read-your-writes window), lagging "
    "(every replica behind the bound), unavailable (none answered), failed (the replica "
    "failed during the request, which was answered again from the primary)",
    "replica",
    "recent_write",
    "lagging",
    "unavailable",
    "failed",
)

TASKS = Counter(
    "billing_tasks",
    "Celery tasks run, by task and outcome: succeeded; retried (a retry scheduled: the "
    "database out of reach, a mail server or Stripe error); failed (raised, no retry left)",
    ["task", "outcome"],
)

UNPRICED_MODEL_CALLS = Counter(
    "billing_unpriced_model_calls",
    "Calls from a usage source (litellm, openrouter, otlp) priced at a rate card's default "
    "row, or no row, because no card names their model (the gateways' answers list the "
    "models as unpriced_models; the admin's Usage sources shows them)",
    ["source"],
)
# Each source's series made now, scraped as 0 before its first count (an alert on its
# increase sees the first one): billing.integration_models.IntegrationSource's names.
for _source in ("litellm", "openrouter", "otlp"):
    UNPRICED_MODEL_CALLS.labels(_source)


def unpriced_model_calls_counted(*, source: str, calls: int) -> None:
    """A request's calls priced at a card's default row (a count of 0 costs no write)."""
    if calls:
        UNPRICED_MODEL_CALLS.labels(source).inc(calls)


def usage_events_counted(*, accepted: int, duplicates: int, rejected: int) -> None:
    """A batch's events, by outcome (a count of 0 costs no write)."""
    for child, count in ((_ACCEPTED, accepted), (_DUPLICATE, duplicates), (_REJECTED, rejected)):
        if count:
            child.inc(count)


GATEWAY_RECORDS = Counter(
    "billing_gateway_records",
    "Records received from a usage source (LiteLLM, OpenRouter, OpenTelemetry spans that "
    "are model calls or refused), by source and outcome: accepted (its events stored), "
    "duplicate (every event of it already stored), skipped (rightly not billed: a failed "
    "call, a span that is no model call), refused (kept to be replayed; reason says why: "
    "no_customer, unknown_customer, bad_tokens, not_json, invalid). A replayed record is "
    "counted again, by what its replay became",
    ["source", "outcome", "reason"],
)


def gateway_records_prepare(*, sources, reasons) -> None:
    """Every series made now, so that each is scraped as 0 before its first count."""
    for source in sources:
        for outcome in ("accepted", "duplicate", "skipped"):
            GATEWAY_RECORDS.labels(source, outcome, "")
        for reason in reasons:
            GATEWAY_RECORDS.labels(source, "refused", reason)


def gateway_records_counted(
    *, source: str, accepted: int, duplicates: int, skipped: int, refused: Mapping[str, int]
) -> None:
    """A request's records, by outcome, the refused ones by reason (a count of 0 costs
    no write)."""
    for outcome, count in (("accepted", accepted), ("duplicate", duplicates), ("skipped", skipped)):
        if count:
            GATEWAY_RECORDS.labels(source, outcome, "").inc(count)
    for reason, count in refused.items():
        if count:
            GATEWAY_RECORDS.labels(source, "refused", reason).inc(count)

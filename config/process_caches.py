"""Every cache a process keeps in memory, in one list, and the one way to clear
them all: between tests, or after rows were changed behind the services' back.

The first seven hold rows: the edge aggregates and the closed days' group sums
are checked against the rollups on every use, the others may go stale, each
within its own bound. The eighth holds the rate limit leases, a share of a shared
counter (common.throttling), the ninth which statements a repeated read sends
ahead (never their rows). The rest hold what never changes while the process runs
(column converters, the time zone list, Stripe clients per key, the PDF renderer)
and are listed so that nothing is missed. Between tests the converters, the time
zones and the renderer are kept (`also_constant=False`): a PDF renderer is some 60
ms of CPU to make again, which each test of PDFs paid (the Stripe clients are made
again: tests point them at fakes)."""

from collections.abc import Callable
from dataclasses import dataclass

from billing.integrations.ingest import preview_buffer
from billing.usage.alerts import alert_check_throttle
from billing.usage.closed_days import closed_days_cache
from billing.usage.edge_cache import edge_cache
from billing.usage.group_limits import group_value_cache
from billing.usage.ingestion import customer_cache
from billing.usage.metering import combination_values_clear, meter_cache
from common import rawsql
from common.throttling import key_leases
from customers.api_keys import api_key_cache_clear
from invoices import pdf_renderer, stripe_client
from plans import validation
from plans.rate_card_pricing import card_rows_clear
from plans.selectors import version_spec_cache_clear


@dataclass(frozen=True)
class ProcessCache:
    name: str
    holds: str
    clear: Callable[[], None]
    # Holds what never changes while the process runs (no rows, no settings).
    constant: bool = False


PROCESS_CACHES = (
    ProcessCache("meters", "meter definitions, checked for changes once a read", meter_cache.clear),
    ProcessCache("customers", "customer ids by external id, for ingestion", customer_cache.clear),
    ProcessCache(
        "alert checks",
        "when each customer's usage alerts were last checked",
        alert_check_throttle.clear,
    ),
    ProcessCache("API keys", "keys by secret digest, KEY_CACHE_SECONDS", api_key_cache_clear),
    ProcessCache("version specs", "published versions' specs (frozen)", version_spec_cache_clear),
    ProcessCache(
        "edge aggregates",
        "finished partial hours of usage reads, with the counts they were read at",
        edge_cache.clear,
    ),
    ProcessCache(
        "closed days' group sums",
        "the group sums of a read's days before its last, with the counts they were read at",
        closed_days_cache.clear,
    ),
    ProcessCache(
        "rate limit leases",
        "requests per API key taken ahead from the shared counter, for its current window",
        key_leases.clear,
    ),
    ProcessCache(
        "statements read ahead",
        "by key, the statements a repeated read ran (never their rows)",
        rawsql.ran_before.clear,
    ),
    ProcessCache(
        "rate card rows",
        "each card's row for the combinations of values priced, by the card's identity",
        card_rows_clear,
    ),
    ProcessCache(
        "combination values",
        "the property values a group rollup's combination text stands for",
        combination_values_clear,
    ),
    ProcessCache(
        "group values",
        "per customer, meter, month and property, the values given a group of their own",
        group_value_cache.clear,
    ),
    ProcessCache(
        "SQL converters",
        "the ORM's converters per column, and the fields' places in their models",
        rawsql.converters_cache_clear,
        constant=True,
    ),
    ProcessCache(
        "time zones",
        "the names of the known time zones",
        validation.available_timezones.cache_clear,
        constant=True,
    ),
    ProcessCache(
        "Stripe clients", "one client per API key and base", stripe_client.client_cache_clear
    ),
    ProcessCache(
        "PDF renderer", "fonts and the stylesheet", pdf_renderer.renderer_cache_clear, constant=True
    ),
    ProcessCache(
        "usage sources' previews",
        "calls received since the preview was last written",
        preview_buffer.clear,
    ),
)


def process_caches_clear(*, also_constant: bool = True) -> None:
    for cache in PROCESS_CACHES:
        if also_constant or not cache.constant:
            cache.clear()

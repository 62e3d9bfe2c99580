import gc
import os

from django.core.signals import request_started
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.catalogs import refuse_stale_catalogs  # noqa: E402 (reads the settings)

# With DEBUG off, no server that would answer in English what should be French.
refuse_stale_catalogs()

from config.middleware import SizedBodies  # noqa: E402 (imports DRF: after Django's setup)

# A body sent chunked, without a Content-Length, read (config.middleware.SizedBodies).
application = SizedBodies(django_application)

# The URL configuration and every view, serializer and service module it imports,
# loaded as the worker starts rather than by its first request (some 50 ms of CPU
# that request took), and frozen below with the rest. No database is touched.
get_resolver().url_patterns  # noqa: B018 (loads the modules)

# A batch of events parses into thousands of small objects, so with the default
# thresholds the cyclic collector runs several times a request and now and then
# walks every object the loaded project holds. Everything loaded up to here lives
# as long as the process: freeze it out of the collector's walks, and collect the
# young generation less often. (About 15% of an ingest request's time.)
gc.freeze()
gc.set_threshold(10_000, 50, 100)


# Full collections: at most one per this many requests (_collect_before_request).
FULL_COLLECTION_EVERY = 1000


def _collect_before_request(**_) -> None:
    """Each request leaves about 40 objects in reference cycles (Django's and DRF's
    request, view and response point at each other), which only the collector
    frees. Left to the threshold above, a check every 200 or so collected 8,000 of
    them at once, 4-6 ms inside that request (bench/check.py's p99). Collected as
    the next request starts, when the last one's objects are all unreachable (at its
    end the server still holds its response), they cost about 25 us a request. The
    survivors of these collections age into the oldest generation, which a request
    that allocates less than the threshold never gets collected otherwise: a full
    collection runs every FULL_COLLECTION_EVERY requests (each young collection
    counts one). The first of them also freezes what survived it: what the first
    requests loaded (modules imported on first use, warmed caches) stays as long as
    the process, and later full collections walk only what came after it."""
    global _warmed
    if gc.get_count()[2] >= FULL_COLLECTION_EVERY:
        gc.collect()
        if not _warmed:
            gc.freeze()
            _warmed = True
    else:
        gc.collect(1)


_warmed = False


request_started.connect(_collect_before_request, dispatch_uid="config.wsgi.collect")

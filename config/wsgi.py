import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# A batch of events parses into thousands of small objects, so with the default
# thresholds the cyclic collector runs several times a request and now and then
# walks every object the loaded project holds. Everything loaded up to here lives
# as long as the process: freeze it out of the collector's walks, and collect the
# young generation less often. (About 15% of an ingest request's time.)
gc.freeze()
gc.set_threshold(10_000, 50, 100)

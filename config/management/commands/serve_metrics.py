from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.core.management.base import BaseCommand

from config.metrics_export import metrics_application, metrics_registry


class QuietHandler(WSGIRequestHandler):
    """No line per scrape (one every 15 s or so, forever)."""

    def log_message(self, format, *args):
        pass


class Command(BaseCommand):
    help = (
        "Serve the metrics to Prometheus (docs/running.md, Metrics): every process's "
        "counts on this host, added up, and the fold's lag and the queues' depths read "
        "as each scrape asks. Keep the port private: it needs no credentials."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
        )
        parser.add_argument("--port", type=int, default=9464, help="default 9464")

    def handle(self, *args, host, port, **options):
        # One scrape at a time, in this thread: it holds one database connection.
        server = make_server(
            host,
            port,
            metrics_application(metrics_registry()),
            server_class=WSGIServer,
            handler_class=QuietHandler,
        )
        self.stdout.write(f"serving metrics on http://{host}:{port}/metrics", ending="\n")
        self.stdout.flush()
        server.serve_forever()

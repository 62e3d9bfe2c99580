from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"

    def ready(self):
        # The system check that the translation catalogs are compiled, registered.
        from config import catalogs  # noqa: F401
        from config.task_metrics import task_metrics_connect

        # Celery's tasks counted in the metrics, once the settings have said where.
        task_metrics_connect()

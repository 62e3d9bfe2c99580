from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"

    def ready(self):
        # The system check that the translation catalogs are compiled, registered.
        from config import catalogs  # noqa: F401

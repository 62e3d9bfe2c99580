from django.core.management.base import BaseCommand, CommandError

from common.errors import BillingError
from customers.api_keys import api_key_create
from customers.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print its secret once (only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes",
            nargs="*",
            default=None,
            help=f"any of {', '.join(ApiKey.SCOPES)}; default all",
        )

    def handle(self, *args, name, scopes, **options):
        try:
            key, secret = api_key_create(name=name, scopes=scopes)
        except BillingError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"API key {key.name!r} created, scopes: {', '.join(key.scopes)}")
        self.stdout.write(secret)

"""The development API key behind `scripts/run.sh`: made once, then reused.

The key file keeps the secret (only its digest is stored, so it cannot be read
back): a run reuses the key it names while this database knows it and it is not
revoked, and makes a new one only when there is none yet, or the database was
reset or is another one. Not for production: there, use `create_api_key`.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from customers.api_keys import api_key_create, api_key_for_secret
from customers.management.private_files import read_text, write_private


class Command(BaseCommand):
    help = (
        "Print the secret of the development API key kept in the key file, making the key "
        "(every scope) and the file first when the file names no active key of this database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="dev")
        parser.add_argument(
            "--key-file",
            type=Path,
            default=None,
            help="where the secret is kept; default <var dir>/dev-api-key.txt",
        )

    def handle(self, *args, name, key_file, **options):
        key_file = key_file or Path(settings.VAR_DIR) / "dev-api-key.txt"
        secret = read_text(key_file)
        if not secret or api_key_for_secret(secret) is None:
            key, secret = api_key_create(name=name)
            write_private(key_file, secret)
            self.stderr.write(f"created the API key {key.name!r}, scopes: {', '.join(key.scopes)}")
        self.stdout.write(secret)

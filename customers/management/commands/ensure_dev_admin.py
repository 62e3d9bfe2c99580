"""The development superuser behind `scripts/run.sh`: create it once, then print its password.

The password comes from ADMIN_PASSWORD when set (and is then applied to an existing
user too), else from the password file, else it is generated once. The file keeps the
password in use, so every run prints the same one. Not for production: there, use
`createsuperuser`.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from customers.management.private_files import read_text, write_private


class Command(BaseCommand):
    help = (
        "Create the development superuser if it is absent and print its password on stdout "
        "(nothing when it is unknown). Password: $ADMIN_PASSWORD, else the password file, "
        "else a new random one; the file keeps the one in use."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--password-file",
            type=Path,
            default=None,
            help="where the password in use is kept; default <var dir>/admin-password.txt",
        )

    def handle(self, *args, username, password_file, **options):
        password_file = password_file or Path(settings.VAR_DIR) / "admin-password.txt"
        from_env = os.environ.get("ADMIN_PASSWORD", "")
        password = from_env or read_text(password_file)
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.select_for_update().filter(username=username).first()
            if user is None:
                password = password or secrets.token_urlsafe(12)
                User.objects.create_superuser(username=username, email="", password=password)
                self.stderr.write(f"created superuser {username!r}")
            elif from_env:
                # An explicit password wins, so the one printed is the one that works.
                user.set_password(password)
                user.save(update_fields=["password"])
            elif not password or not user.check_password(password):
                self.stderr.write(
                    f"superuser {username!r} exists with a password this command does not know; "
                    "set ADMIN_PASSWORD to reset it"
                )
                return
            if read_text(password_file) != password:
                write_private(password_file, password)
        self.stdout.write(password)

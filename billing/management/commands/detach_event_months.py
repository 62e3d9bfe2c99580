from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from billing.usage.detaching import event_months_detach


class Command(BaseCommand):
    help = (
        "Detach the usage events table's months that no period may still need "
        "(billing.usage.detaching; the beat does it hourly), each kept as a plain table "
        "to archive, or dropped with --drop (months detached before too). PostgreSQL; "
        "safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--drop",
            action="store_true",
            help="drop the months' tables instead of keeping them: their events are gone",
        )
        parser.add_argument(
            "--months-attached",
            type=int,
            help="whole months before the current one kept attached at least "
            "(default BILLING_EVENT_MONTHS_ATTACHED; never fewer than the billing needs)",
        )

    def handle(self, *args, drop, months_attached, **options):
        if connection.vendor != "postgresql":
            self.stdout.write(
                f"This database ({connection.vendor}) keeps the events in one table, "
                "without monthly partitions: nothing to detach"
            )
            return
        if months_attached is not None and months_attached < 0:
            raise CommandError("--months-attached must be 0 or more")
        done = event_months_detach(
            now=datetime.now(UTC), months_attached=months_attached, drop=drop
        )
        if done.before is None:
            self.stdout.write("BILLING_EVENT_MONTHS_ATTACHED is off: nothing detached")
            return
        self.stdout.write(f"months ending by {done.before:%Y-%m-%d %H:%M} UTC may be detached")
        for name in done.detached:
            self.stdout.write(f"detached: {name}" + (" (dropped)" if name in done.dropped else ""))
        for name in sorted(set(done.dropped) - set(done.detached)):
            self.stdout.write(f"dropped: {name} (detached before)")
        for name in done.unfolded:
            self.stdout.write(f"kept: {name} holds events not folded yet")
        if done.busy:
            self.stdout.write(f"stopped at {done.busy}: the events table was busy; run again")
        if not (done.detached or done.dropped or done.unfolded or done.busy):
            self.stdout.write("nothing to detach")
        self.stdout.write(f"event keys deleted: {done.keys_trimmed}")

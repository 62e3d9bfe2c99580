from django.core.management.base import BaseCommand

from billing.usage.rebuild import daily_rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the daily usage rollups, of the meters and of the groups, from the "
        "hourly ones. Run it once after upgrading to migration billing 0017 (daily "
        "rollups) or 0031 (daily group rollups) if ingestion, folds or the beat of the "
        "code before it ran during or after the migration (they wrote hourly rows only). "
        "Ingestion and folds wait while it runs; safe to run at any time."
    )

    def handle(self, *args, **options):
        days = daily_rollups_rebuild()
        self.stdout.write(f"rebuilt {days} daily rollup rows")

from django.core.management.base import BaseCommand, CommandError

from billing.usage.rebuild import meter_usage_rebuild
from plans.models import Meter


class Command(BaseCommand):
    help = (
        "Recompute meters' rollups from every stored event (billing.usage.rebuild). "
        "Name meters by code, or give --combinations for every meter grouping by two or "
        "more properties: run that once after upgrading to the version with rate cards, "
        "so that events stored before keep the combination of their group values that "
        "rate cards price and one-property breakdowns add up (a count or sum meter of two "
        "or more properties keeps only the combinations; the rebuild also removes the rows "
        "a property at a time written before, which no read uses). Ingestion waits while a "
        "meter is rebuilt; safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", help="meter codes")
        parser.add_argument(
            "--combinations",
            action="store_true",
            help="every meter whose group_by names two or more properties",
        )

    def handle(self, *args, codes, combinations, **options):
        if not codes and not combinations:
            raise CommandError("name meter codes, or give --combinations")
        meters = list(Meter.objects.filter(code__in=codes)) if codes else []
        unknown = sorted(set(codes) - {m.code for m in meters})
        if unknown:
            raise CommandError(f"no meter with code {', '.join(unknown)}")
        if combinations:
            meters += [m for m in Meter.objects.all() if len(m.group_by or ()) > 1]
        for meter in {m.pk: m for m in meters}.values():
            counted = meter_usage_rebuild(meter_id=meter.pk)
            self.stdout.write(f"{meter.code}: rebuilt from {counted} events")

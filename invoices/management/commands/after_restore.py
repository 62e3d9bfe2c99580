from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand

from billing.core import outbound_record
from invoices.after_restore import number_ranges, restore_reconcile
from invoices.sequences import number_parts

SHOWN = 20  # documents named at most, per list


class Command(BaseCommand):
    help = (
        "Run once after restoring the database from a backup (and the documents folder, "
        "MEDIA_ROOT, beside it), before starting the services: moves each document "
        "sequence past the numbers customers may hold, marks sent the emails the "
        "documents folder's outbound record says were sent, and renders again the "
        "PDFs whose files are missing. Prints what it did. Safe to run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--record",
            help=f"the outbound record to read (default MEDIA_ROOT/{outbound_record.FILENAME})",
        )

    def handle(self, *args, record=None, **options):
        path = Path(record) if record else outbound_record.record_path()
        entries = sum(1 for _ in outbound_record.record_read(path))
        self.stdout.write(f"outbound record {path}: {entries} line(s)")
        report = restore_reconcile(now=datetime.now(UTC), record=path)
        write = self.stdout.write

        write(
            f"documents: {report.files_present} PDF file(s) present; "
            f"{len(report.rendered_identical)} missing and rendered again byte-identical "
            f"(SHA-256 as recorded); {len(report.rendered_different)} missing and rendered "
            f"again different from what was recorded (stored under a new name); "
            f"{len(report.adopted)} stored after the backup and given their file"
        )
        for label, numbers in (
            ("rendered again, identical", report.rendered_identical),
            ("rendered again, DIFFERENT from what was sent", report.rendered_different),
            ("given the file stored after the backup", report.adopted),
        ):
            if numbers:
                write(f"  {label}: {self._some(numbers)}")

        if not report.sequences:
            write("numbers: every sequence is already past the numbers customers may hold")
        lost_by_sequence = defaultdict(list)
        for lost in report.lost:
            lost_by_sequence[number_parts(lost.number)[0]].append(lost)
        for move in report.sequences:
            lost = lost_by_sequence[move.name]
            unseen = move.skipped - len(lost)
            write(
                f"numbers: {move.name} next {move.was} -> {move.now}: {move.skipped} number(s) "
                f"skipped ({number_ranges(range(move.was, move.now))}), never to be issued; "
                f"{len(lost)} of them held by customers (a stored PDF or a sent email) for "
                "documents this database lost"
                + (f", {unseen} taken after the backup and not seen to leave" if unseen else "")
            )
        if report.lost:
            write(
                "  documents customers may hold that this database does not have (a close "
                "under way at the backup bills their periods again, under new numbers: "
                "tell those customers which number replaces which; a purchase or credit "
                "note made after the backup must be made again):"
            )
            for lost in report.lost[:SHOWN]:
                emailed = f", emailed {lost.emailed_at}" if lost.emailed_at else ""
                write(f"    {lost.number} (customer id {lost.customer}{emailed})")
            if len(report.lost) > SHOWN:
                write(f"    ... and {len(report.lost) - SHOWN} more")

        write(
            f"emails: {report.emails_marked} marked sent (sent after the backup), "
            f"{report.emails_were_sent} already sent here, {report.emails_not_here} sent "
            "for documents this database does not have"
        )
        write(
            "ids: "
            + (
                "; ".join(f"{table} next id above {highest}" for table, highest in report.ids)
                if report.ids
                else "every id the record names is already taken here or behind the next"
            )
            + " (ids the record names are never given to other rows)"
        )
        write(
            f"alert emails: {report.alerts_marked} marked emailed, "
            f"{report.alerts_were_emailed} already emailed here, {report.alerts_not_here} "
            "for alerts this database does not have"
        )

    @staticmethod
    def _some(numbers: list[str]) -> str:
        shown = ", ".join(numbers[:SHOWN])
        return shown + (f" ... and {len(numbers) - SHOWN} more" if len(numbers) > SHOWN else "")

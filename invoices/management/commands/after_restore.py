from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand

from common import outbound_record
from customers.models import Customer
from invoices.after_restore import number_ranges, restore_reconcile
from invoices.restore_pause import PauseState, outbound_pause_state, outbound_resume
from invoices.sequences import number_parts

SHOWN = 20  # documents named at most, per list


class Command(BaseCommand):
    help = (
        "Run once after restoring the database from a backup (and the documents folder, "
        "MEDIA_ROOT, beside it), before starting the services: moves each document "
        "sequence past the numbers customers may hold, marks sent the emails the "
        "documents folder's outbound record says were sent, renders again the PDFs "
        "whose files are missing, and pauses sending (e-mails, webhooks, Peppol, "
        "charges of invoices). Prints what it did. Safe to run twice. Then, once the "
        "services have billed again what the backup lost: --status lists the periods "
        "billed again (the number a customer may hold, the number replacing it) and "
        "what is held; --resume lists them and sends what was held."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--record",
            help=f"the outbound record to read (default MEDIA_ROOT/{outbound_record.FILENAME})",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--status",
            action="store_true",
            help="print the periods billed again and what is held, change nothing",
        )
        mode.add_argument(
            "--resume",
            action="store_true",
            help="print the periods billed again and what is held, then send it: lift the "
            "pause the restore step set",
        )

    def handle(self, *args, record=None, status=False, resume=False, **options):
        if status or resume:
            self._pause(resume=resume)
            return
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
            # The customer as it knows itself (its external id), where this database has it.
            known = dict(
                Customer.objects.filter(pk__in={lost.customer for lost in report.lost}).values_list(
                    "pk", "external_id"
                )
            )
            for lost in report.lost[:SHOWN]:
                emailed = f", emailed {lost.emailed_at}" if lost.emailed_at else ""
                customer = (
                    f"customer {known[lost.customer]}"
                    if lost.customer in known
                    else f"customer id {lost.customer}, not in this database"
                )
                write(f"    {lost.number} ({customer}{emailed})")
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
        write(
            f"sending: PAUSED since {report.paused_since.isoformat()}: e-mails, webhooks, "
            "Peppol e-invoices and Stripe charges of invoices wait. Start the services, "
            "let the close bill again what the backup lost, then read the periods billed "
            "again with `manage.py after_restore --status` and send with "
            "`manage.py after_restore --resume` (or the admin's Sending after a restore)"
        )

    def _pause(self, *, resume: bool) -> None:
        """--status and --resume: the pause's state, then (--resume) the resume."""
        write = self.stdout.write
        now = datetime.now(UTC)
        state = outbound_pause_state(now=now)
        if state is None:
            write("sending: never paused (no restore step was run on this database)")
            return
        self._state(state)
        if not resume:
            return
        held = outbound_resume(now=now, by="manage.py after_restore --resume")
        if held is None:
            write("sending was not paused: nothing to resume")
            return
        write(
            f"sending: RESUMED at {now.isoformat()}; queued "
            + ", ".join(f"{count} {kind}" for kind, count in held.counts().items())
        )

    def _state(self, state: PauseState) -> None:
        write = self.stdout.write
        if state.paused_since is None:
            write(
                f"sending: not paused (resumed at {state.resumed_at.isoformat()} by "
                f"{state.resumed_by or '?'})"
            )
        else:
            write(
                f"sending: PAUSED since {state.paused_since.isoformat()}; held: "
                + ", ".join(f"{count} {kind}" for kind, count in state.held.counts().items())
            )
        again = [period for period in state.periods if period.new_number]
        write(
            f"periods billed again: {len(again)} of the {len(state.periods)} document(s) "
            "customers may hold that the backup lost (number held -> number replacing it, "
            "customer id as the customer knows it, name, period):"
        )
        for period in state.periods:
            if period.customer_external_id is None:
                customer = f"customer id {period.customer_id} (not in this database)"
            else:
                customer = f"{period.customer_external_id} ({period.customer_name})"
            when = period.period_text()
            emailed = f", emailed {period.emailed_at}" if period.emailed_at else ""
            write(
                f"  {period.lost_number} -> {period.new_number or 'not billed again yet'}: "
                f"{customer}" + (f", {when}" if when else "") + emailed
            )

    @staticmethod
    def _some(numbers: list[str]) -> str:
        shown = ", ".join(numbers[:SHOWN])
        return shown + (f" ... and {len(numbers) - SHOWN} more" if len(numbers) > SHOWN else "")

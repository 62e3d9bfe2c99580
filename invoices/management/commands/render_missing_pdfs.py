from django.core.management.base import BaseCommand

from invoices import selectors, tasks


class Command(BaseCommand):
    help = (
        "Queue the render of every issued invoice's and credit note's PDF that may not "
        "be stored as it should be: none recorded (documents issued before PDFs were "
        "stored, or whose render was lost), and every voided invoice (its task renders "
        "only those whose stored PDF does not say VOID yet). The workers render them; "
        "a document already stored is left as it is, so it is safe to run again. "
        "Without it, each of them is rendered and stored by its first download."
    )

    def handle(self, *args, **options):
        invoice_ids, credit_note_ids = selectors.documents_to_render()
        for invoice_id in invoice_ids:
            tasks.render_invoice_pdf.delay(invoice_id)
        for credit_note_id in credit_note_ids:
            tasks.render_credit_note_pdf.delay(credit_note_id)
        self.stdout.write(
            f"queued {len(invoice_ids)} invoice and {len(credit_note_ids)} credit note renders"
        )

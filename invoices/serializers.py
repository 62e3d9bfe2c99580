from decimal import ROUND_HALF_UP, Decimal

from django.urls import reverse
from rest_framework import serializers

from common.money import format_decimal, format_money, format_percentage
from common.periods import iso
from common.rest_api import AwareDateTimeField, DecimalString, NoUnknownKeys
from common.vocabulary import LineKind
from customers.e_invoice_details import E_INVOICE_FORMATS
from invoices.models import CreditNote, Invoice, ReceivedPayment
from plans.taxes import tax_lines_read


def _money(amount, currency):
    return None if amount is None else format_money(amount, currency)


# A prorated line's share of its whole period, to 4 places.
SHARE_PLACES = Decimal("0.0001")


def line_share(share: Decimal | None) -> str | None:
    """A line's share of a whole period as the API gives it: "0.1153" (to 4
    places, rounded half up) for a line that bills part of one, null for any other."""
    return None if share is None else str(share.quantize(SHARE_PLACES, rounding=ROUND_HALF_UP))


class InvoiceLineSerializer(serializers.Serializer):
    """An invoice line's shape (the schema's); InvoiceSerializer writes it."""

    id = serializers.IntegerField(help_text="What a credit note's line names.")
    kind = serializers.ChoiceField(choices=LineKind.choices)
    description = serializers.CharField()
    meter = serializers.CharField(allow_null=True)
    quantity = DecimalString()
    unit_price = DecimalString(allow_null=True)
    per = DecimalString(
        help_text="How many units unit_price is for: 1000000 for a price per million tokens."
    )
    amount = DecimalString()
    share = serializers.CharField(
        allow_null=True,
        help_text="A line that bills part of a period (a proration, a partial first period): "
        'its share of the whole period, to 4 places ("0.1153"); null for any other line.',
    )
    breakdown = serializers.DictField(
        required=False,
        help_text="A meter with an invoice breakdown: all its usage by the property's values, "
        '{"by": "model", "groups": [{"value": "gpt-4o", "quantity": "1500"}]} (value null: '
        "events without it); shown, not priced.",
    )
    group = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="A line of a rate card's row: the row's when, {} for its default row.",
    )


class TaxLineSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    percentage = DecimalString()
    taxable_amount = DecimalString()
    amount = DecimalString()


def tax_line_data(line, currency: str) -> dict:
    """A tax line (an invoice's or a credit note's) as the API shows it."""
    return {
        "code": line.code,
        "name": line.name,
        "percentage": format_percentage(line.percentage),
        "taxable_amount": format_money(line.taxable_amount, currency),
        "amount": format_money(line.amount, currency),
    }


class EInvoiceErrorSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text='The EN 16931 rule that failed ("BR-CO-10"), or XSD.')
    message = serializers.CharField()
    field = serializers.CharField(
        allow_null=True, help_text="Where it is fixed, when the rule names one (customer.vat_id)."
    )
    location = serializers.CharField(allow_null=True, help_text="Where in the XML it fired.")


def e_invoice_format_field(**options) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=E_INVOICE_FORMATS, allow_null=True, **options)


class InvoiceSerializer(serializers.ModelSerializer):
    # The fields describe the answer for the OpenAPI schema; to_representation writes it.
    id = serializers.IntegerField()
    number = serializers.CharField(allow_null=True, help_text="Assigned at finalization.")
    customer = serializers.CharField(help_text="The customer's external_id.")
    subscription = serializers.IntegerField(allow_null=True)
    reason = serializers.ChoiceField(choices=Invoice.REASONS)
    status = serializers.ChoiceField(choices=Invoice.STATUSES)
    currency = serializers.CharField()
    period_start = serializers.DateTimeField(
        help_text="Where the span its lines bill starts (the earliest line's period "
        "start): no line's period lies outside period_start-period_end."
    )
    period_end = serializers.DateTimeField(
        help_text="Where the span its lines bill ends (the latest line's period end, "
        "the next period's fees billed in advance included); exclusive."
    )
    lines = InvoiceLineSerializer(many=True)
    subtotal = DecimalString()
    discount = DecimalString(help_text="Taken off the subtotal before tax.")
    tax_lines = TaxLineSerializer(many=True)
    credits_applied = DecimalString(
        help_text="The customer's credit balance spent on it at finalization."
    )
    tax = DecimalString()
    total = DecimalString(help_text="subtotal - discount + tax")
    amount_credited = DecimalString(help_text="The sum of its credit notes.")
    customer_snapshot = serializers.DictField(help_text="The billing details as invoiced.")
    finalized_at = serializers.DateTimeField(allow_null=True)
    issued_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When it was finalized and numbered: the real moment, whatever a "
        "back-dated close's --as-of.",
    )
    written_at = serializers.DateTimeField(
        help_text="When it was written (a draft's too), beside the period it bills."
    )
    due_at = serializers.DateTimeField(
        allow_null=True, help_text="Issued plus the customer's payment terms."
    )
    paid_at = serializers.DateTimeField(allow_null=True)
    payment_reference = serializers.CharField(allow_null=True)
    amount_paid = DecimalString(
        help_text="The money received for it so far (GET /api/v1/invoices/{id}/payments)."
    )
    amount_due = DecimalString(
        help_text=(
            "The total less credits applied, credit notes and payments received; 0 once "
            "paid or void."
        )
    )
    credit_notes = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Its credit notes' ids, oldest first (GET /api/v1/credit-notes/{id}).",
    )
    pdf_url = serializers.CharField()
    e_invoice_format = e_invoice_format_field(
        help_text="The EN 16931 e-invoice it was issued as (GET /api/v1/invoices/{id}/e-invoice); "
        "null: none."
    )
    e_invoice_errors = EInvoiceErrorSerializer(
        many=True,
        help_text="On a draft whose e-invoice was refused at finalization: the rules it "
        "failed; empty otherwise.",
    )

    def to_representation(self, invoice: Invoice):
        currency = invoice.currency
        start, end = invoice.document_period
        return {
            "id": invoice.pk,
            "number": invoice.number,
            "customer": invoice.customer.external_id,
            "subscription": invoice.subscription_id,
            "reason": invoice.reason,
            "status": invoice.status,
            "currency": currency,
            "period_start": start.isoformat().replace("+00:00", "Z"),
            "period_end": end.isoformat().replace("+00:00", "Z"),
            "lines": [
                {
                    "id": line.pk,
                    "kind": line.kind,
                    "description": line.description,
                    "meter": line.meter or None,
                    "quantity": format_decimal(line.quantity),
                    "unit_price": _money(line.unit_price, currency),
                    "per": format_decimal(line.per),
                    "amount": format_money(line.amount, currency),
                    "share": line_share(line.share),
                    **({"breakdown": line.breakdown} if line.breakdown else {}),
                    **({} if line.group is None else {"group": line.group}),
                }
                for line in invoice.lines.all()
            ],
            "subtotal": format_money(invoice.subtotal, currency),
            "discount": format_money(invoice.discount, currency),
            "tax_lines": [tax_line_data(line, currency) for line in invoice.tax_lines.all()],
            "credits_applied": format_money(invoice.credits_applied, currency),
            "tax": format_money(invoice.tax, currency),
            "total": format_money(invoice.total, currency),
            "amount_credited": format_money(invoice.credited, currency),
            "customer_snapshot": invoice.customer_snapshot,
            "finalized_at": invoice.finalized_at,
            "issued_at": invoice.finalized_at,
            "written_at": invoice.written_at,
            "due_at": invoice.due_at,
            "paid_at": invoice.paid_at,
            "payment_reference": invoice.payment_reference or None,
            "amount_paid": format_money(invoice.amount_paid, currency),
            "amount_due": format_money(invoice.amount_due, currency),
            "credit_notes": sorted(note.pk for note in invoice.credit_notes.all()),
            "pdf_url": reverse("invoice-pdf", kwargs={"invoice_id": invoice.pk}),
            "e_invoice_format": invoice.e_invoice_format or None,
            "e_invoice_errors": invoice.e_invoice_errors or [],
        }

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "customer",
            "subscription",
            "reason",
            "status",
            "currency",
            "period_start",
            "period_end",
            "lines",
            "subtotal",
            "discount",
            "tax_lines",
            "credits_applied",
            "tax",
            "total",
            "amount_credited",
            "customer_snapshot",
            "finalized_at",
            "issued_at",
            "written_at",
            "due_at",
            "paid_at",
            "payment_reference",
            "amount_paid",
            "amount_due",
            "credit_notes",
            "pdf_url",
            "e_invoice_format",
            "e_invoice_errors",
        ]


class CreditNoteLineInputSerializer(serializers.Serializer):
    invoice_line = serializers.IntegerField(min_value=1, help_text="An invoice line's id.")
    amount = DecimalString(help_text="Before tax; at most what is left uncredited on the line.")


class CreditNoteCreateSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=CreditNote.REASONS)
    memo = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    lines = CreditNoteLineInputSerializer(many=True, allow_empty=False, max_length=500)
    refund = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "For an invoice Stripe collected: what was paid goes back to the card "
            "instead of the credit balance."
        ),
    )


class CreditNoteLineSerializer(serializers.Serializer):
    invoice_line = serializers.IntegerField()
    description = serializers.CharField()
    amount = DecimalString()
    share = serializers.CharField(
        allow_null=True,
        help_text="The share of a whole period it credits (unused time), to 4 places.",
    )


# A credit note's `applied_to`: where its total went (what was not off the
# invoice's amount due went to the balance or the card).
APPLIED_TO = {
    CreditNote.TO_AMOUNT_DUE: "invoice",
    CreditNote.TO_CREDIT_BALANCE: "credit_balance",
    CreditNote.TO_REFUND: "refund",
}


class CreditNoteSerializer(serializers.Serializer):
    # The fields describe the answer for the OpenAPI schema; to_representation writes it.
    id = serializers.IntegerField()
    number = serializers.CharField()
    invoice = serializers.IntegerField()
    invoice_number = serializers.CharField()
    customer = serializers.CharField(help_text="The customer's external_id.")
    reason = serializers.ChoiceField(choices=CreditNote.REASONS)
    memo = serializers.CharField()
    currency = serializers.CharField()
    lines = CreditNoteLineSerializer(many=True)
    period_start = serializers.DateTimeField(
        allow_null=True,
        help_text="Where the span its lines credit starts: the earliest of their periods "
        "(a line crediting unused time its own, any other its invoice line's); null when "
        "none has one.",
    )
    period_end = serializers.DateTimeField(
        allow_null=True,
        help_text="Where the span its lines credit ends (exclusive); null when none has one.",
    )
    subtotal = DecimalString()
    tax_lines = TaxLineSerializer(many=True)
    tax = DecimalString()
    total = DecimalString()
    to_amount_due = DecimalString(help_text="Of the total, what lowered the invoice's amount due.")
    to_credit_balance = DecimalString(help_text="Of the total, what went to the credit balance.")
    to_refund = DecimalString(
        help_text="Of the total, what is refunded to the card through Stripe."
    )
    refund_status = serializers.ChoiceField(
        choices=CreditNote.REFUND_STATUSES, allow_null=True, help_text="null: no refund."
    )
    applied_to = serializers.ChoiceField(
        choices=["invoice", "credit_balance", "refund"],
        help_text="Where the money went: off the invoice's amount due, to the customer's "
        "credit balance, or back to the card (the part not off the amount due).",
    )
    voids_invoice = serializers.BooleanField()
    issued_at = serializers.DateTimeField()
    pdf_url = serializers.CharField()
    e_invoice_format = e_invoice_format_field(
        help_text="The EN 16931 e-invoice it was issued as, its invoice's format "
        "(GET /api/v1/credit-notes/{id}/e-invoice); null: none."
    )

    def to_representation(self, note: CreditNote):
        currency = note.currency
        start, end = note.document_period
        return {
            "id": note.pk,
            "number": note.number,
            "invoice": note.invoice_id,
            "invoice_number": note.invoice.number,
            "customer": note.customer.external_id,
            "reason": note.reason,
            "memo": note.memo,
            "currency": currency,
            "lines": [
                {
                    "invoice_line": line.invoice_line_id,
                    "description": line.description,
                    "amount": format_money(line.amount, currency),
                    "share": line_share(line.share),
                }
                for line in note.lines.all()
            ],
            "period_start": start and iso(start),
            "period_end": end and iso(end),
            "subtotal": format_money(note.subtotal, currency),
            "tax_lines": [tax_line_data(line, currency) for line in tax_lines_read(note.tax_lines)],
            "tax": format_money(note.tax, currency),
            "total": format_money(note.total, currency),
            "to_amount_due": format_money(note.to_amount_due, currency),
            "to_credit_balance": format_money(
                note.paid_back if note.paid_back_to == CreditNote.TO_CREDIT_BALANCE else Decimal(0),
                currency,
            ),
            "to_refund": format_money(
                note.paid_back if note.paid_back_to == CreditNote.TO_REFUND else Decimal(0),
                currency,
            ),
            "refund_status": note.refund_status or None,
            "applied_to": APPLIED_TO[note.paid_back_to or CreditNote.TO_AMOUNT_DUE],
            "voids_invoice": note.voids_invoice,
            "issued_at": note.created_at,
            "pdf_url": reverse("credit-note-pdf", kwargs={"credit_note_id": note.pk}),
            "e_invoice_format": note.e_invoice_format or None,
        }


class ReceivedPaymentCreateSerializer(NoUnknownKeys, serializers.Serializer):
    amount = DecimalString(
        help_text=(
            "Above zero, at most the amount due, with no more decimals than the "
            "currency's minor unit."
        )
    )
    currency = serializers.CharField(
        required=False,
        default=None,
        help_text="Optional; when given, it must be the invoice's currency.",
    )
    received_at = AwareDateTimeField(
        help_text=(
            "When the money arrived (the journal's date for it): not in the future, not "
            "before the invoice was issued."
        )
    )
    method = serializers.ChoiceField(choices=ReceivedPayment.RECORDED_BY_HAND)
    reference = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="What identifies the payment, e.g. the bank transfer's reference.",
    )


class ReceivedPaymentSerializer(serializers.Serializer):
    """A payment received for an invoice, with where the invoice stands now."""

    id = serializers.IntegerField()
    invoice = serializers.IntegerField()
    amount = DecimalString()
    currency = serializers.CharField()
    method = serializers.ChoiceField(choices=ReceivedPayment.METHODS)
    reference = serializers.CharField()
    received_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    completed_invoice = serializers.BooleanField(
        help_text="Whether it left nothing to pay (the invoice became paid with it)."
    )
    invoice_status = serializers.CharField(help_text="The invoice's status now.")
    invoice_amount_due = DecimalString(help_text="What is left to pay on the invoice now.")

    def to_representation(self, payment: ReceivedPayment):
        invoice = payment.invoice
        return {
            "id": payment.pk,
            "invoice": payment.invoice_id,
            "amount": format_money(payment.amount, payment.currency),
            "currency": payment.currency,
            "method": payment.method,
            "reference": payment.reference,
            "received_at": payment.received_at,
            "recorded_at": payment.recorded_at,
            "completed_invoice": payment.completed_invoice,
            "invoice_status": invoice.status,
            "invoice_amount_due": format_money(invoice.amount_due, invoice.currency),
        }

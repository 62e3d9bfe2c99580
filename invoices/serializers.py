from django.urls import reverse
from rest_framework import serializers

from billing.money import format_decimal, format_money
from invoices.models import CreditNote, Invoice


def _money(amount, currency):
    return None if amount is None else format_money(amount, currency)


class InvoiceSerializer(serializers.ModelSerializer):
    def to_representation(self, invoice: Invoice):
        currency = invoice.currency
        return {
            "id": invoice.pk,
            "number": invoice.number,
            "customer": invoice.customer.external_id,
            "subscription": invoice.subscription_id,
            "reason": invoice.reason,
            "status": invoice.status,
            "currency": currency,
            "period_start": invoice.period_start.isoformat().replace("+00:00", "Z"),
            "period_end": invoice.period_end.isoformat().replace("+00:00", "Z"),
            "lines": [
                {
                    "kind": line.kind,
                    "description": line.description,
                    "meter": line.meter or None,
                    "quantity": format_decimal(line.quantity),
                    "unit_price": _money(line.unit_price, currency),
                    "amount": format_money(line.amount, currency),
                }
                for line in invoice.lines.all()
            ],
            "subtotal": format_money(invoice.subtotal, currency),
            "credits_applied": format_money(invoice.credits_applied, currency),
            "tax": format_money(invoice.tax, currency),
            "total": format_money(invoice.total, currency),
            "customer_snapshot": invoice.customer_snapshot,
            "finalized_at": invoice.finalized_at,
            "credit_notes": [
                CreditNoteSerializer(note).data for note in invoice.credit_notes.all()
            ],
            "pdf_url": reverse("invoice-pdf", kwargs={"invoice_id": invoice.pk}),
        }

    class Meta:
        model = Invoice
        fields = ["id"]


class CreditNoteSerializer(serializers.ModelSerializer):
    def to_representation(self, note: CreditNote):
        return {
            "number": note.number,
            "amount": format_money(note.amount, note.invoice.currency),
            "reason": note.reason,
            "created_at": note.created_at,
        }

    class Meta:
        model = CreditNote
        fields = ["number"]

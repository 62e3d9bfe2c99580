"""Invoice endpoints: list, detail, PDF, e-invoice, void, pay, payments received;
credit notes."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import negotiation, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.invoicing.refused_drafts import invoice_discard
from common.errors import InvalidRequest
from common.rest_api import AwareDateTimeField, CursorPagination, ErrorSerializer, request_data
from invoices import (
    credit_notes,
    payments_received,
    refused_drafts,
    rendering,
    selectors,
    services,
    settlement,
)
from invoices.e_invoice_delivery import (
    credit_note_e_invoice_response,
    invoice_e_invoice_response,
)
from invoices.models import CreditNote, Invoice, ReceivedPayment
from invoices.serializers import (
    CreditNoteCreateSerializer,
    CreditNoteSerializer,
    InvoiceSerializer,
    ReceivedPaymentCreateSerializer,
    ReceivedPaymentSerializer,
)
from plans.api import paginated


def invoices_query():
    return Invoice.objects.select_related("customer").prefetch_related(
        "lines", "tax_lines", "credit_notes"
    )


class InvoiceListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", str, description="external_id"),
            OpenApiParameter("status", str, description="draft|finalized|paid|void|uncollectible"),
            OpenApiParameter(
                "past_due",
                bool,
                description="true: finalized, due date passed, something left to pay",
            ),
        ],
        responses=InvoiceSerializer(many=True),
    )
    def get(self, request):
        query = invoices_query()
        customer = request.query_params.get("customer")
        if customer is not None:
            query = query.filter(customer__external_id=customer)
        wanted = request.query_params.get("status")
        if wanted is not None:
            if wanted not in dict(Invoice.STATUSES):
                raise InvalidRequest(
                    f"unknown status {wanted!r}", fields={"status": ["unknown status"]}
                )
            query = query.filter(status=wanted)
        past_due = request.query_params.get("past_due")
        if past_due is not None:
            if past_due not in ("true", "false"):
                raise InvalidRequest(
                    "past_due must be true or false", fields={"past_due": ["true or false"]}
                )
            overdue = selectors.past_due(query, now=timezone.now())
            query = overdue if past_due == "true" else query.exclude(pk__in=overdue.values("pk"))
        return paginated(self, request, query, InvoiceSerializer)


class InvoiceDetailApi(APIView):
    @extend_schema(responses=InvoiceSerializer)
    def get(self, request, invoice_id: int):
        return Response(InvoiceSerializer(get_object_or_404(invoices_query(), pk=invoice_id)).data)


class AnyAccept(negotiation.BaseContentNegotiation):
    """The PDF endpoint answers a PDF whatever the client accepts, and its errors
    in the JSON envelope: no 406 for `Accept: application/pdf`."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class InvoicePdfApi(APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="Download an invoice as PDF",
        description=(
            "A numbered invoice's PDF as issued: stored when the invoice is finalized "
            "and served as stored (a payment does not change it; a void stores it "
            "again once, marked VOID). An invoice whose PDF is not stored yet is "
            "rendered and stored by its first download. A draft is rendered on each "
            "request, watermarked DRAFT, and never stored."
        ),
        responses={
            (200, "application/pdf"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description="The PDF, as an attachment named after the invoice number.",
            )
        },
    )
    def get(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice.objects.select_related("customer"), pk=invoice_id)
        return rendering.invoice_pdf_response(invoice=invoice, now=timezone.now())


# One description for the status: drf-spectacular keeps one per status code.
E_INVOICE_200 = (
    "The e-invoice as an attachment: for XRechnung and Peppol BIS, the UBL 2.1 XML as "
    "issued (<number>.xml); for Factur-X, the stored PDF/A-3 with the CII XML embedded "
    "(<number>.pdf)."
)
E_INVOICE_RESPONSES = {
    (200, "application/xml"): OpenApiResponse(response=OpenApiTypes.STR, description=E_INVOICE_200),
    (200, "application/pdf"): OpenApiResponse(
        response=OpenApiTypes.BINARY, description=E_INVOICE_200
    ),
}


class InvoiceEInvoiceApi(APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="Download an invoice's e-invoice",
        description=(
            "The EN 16931 e-invoice the invoice was issued as: for XRechnung and Peppol, "
            "its XML; for Factur-X, its PDF (the one the PDF endpoint serves), a PDF/A-3 "
            "with the XML embedded. 404 for an invoice without an e-invoice (its seller "
            "does not e-invoice or its customer chose no format); 409 for a draft, with "
            "the rules its e-invoice failed if it was refused."
        ),
        responses={
            **E_INVOICE_RESPONSES,
            409: OpenApiResponse(
                ErrorSerializer,
                description="A draft: it is e-invoiced when it is finalized (the message "
                "names the rules its e-invoice failed, if it was refused).",
            ),
        },
    )
    def get(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice.objects.select_related("customer"), pk=invoice_id)
        return invoice_e_invoice_response(invoice=invoice, now=timezone.now())


class InvoiceVoidApi(APIView):
    @extend_schema(
        request=inline_serializer(
            "InvoiceVoid",
            {"reason": serializers.CharField(required=False, allow_blank=True, max_length=500)},
        ),
        responses=InvoiceSerializer,
    )
    def post(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        reason = request.data.get("reason", "") if isinstance(request.data, dict) else ""
        if not isinstance(reason, str) or len(reason) > 500:
            raise InvalidRequest(
                "reason must be text", fields={"reason": ["at most 500 characters"]}
            )
        services.invoice_void(invoice=invoice, reason=reason, now=timezone.now())
        return Response(InvoiceSerializer(invoices_query().get(pk=invoice_id)).data)


class InvoiceFinalizeApi(APIView):
    """Finalize a draft now: numbered in its seller's sequence and dated today, its
    credit balance applied, collected as the beat would. A draft whose e-invoice
    fails validation stays a draft, unnumbered: 409 `e_invoice_invalid` with
    `e_invoice_errors` (each failed rule, its message and the field to fix), kept
    on the draft too. 409 for an invoice that is not a draft."""

    @extend_schema(request=None, responses=InvoiceSerializer)
    def post(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        services.invoice_finalize(invoice=invoice, now=timezone.now())
        return Response(InvoiceSerializer(invoices_query().get(pk=invoice_id)).data)


class InvoiceRebuildApi(APIView):
    """Rebuild a draft whose e-invoice was refused from its customer's settings
    now (tax rates, tax status, address, identifiers: what a fix changed) and
    finalize it: the invoice, finalized. Refused again: 409 `e_invoice_invalid`
    with `e_invoice_errors`, the draft kept rebuilt. 409 for an invoice that is
    not a refused draft (nothing changes). Scope `admin`."""

    @extend_schema(request=None, responses=InvoiceSerializer)
    def post(self, request, invoice_id: int):
        get_object_or_404(Invoice.objects.only("pk"), pk=invoice_id)
        refused_drafts.invoice_rebuild(invoice_id=invoice_id, now=timezone.now())
        return Response(InvoiceSerializer(invoices_query().get(pk=invoice_id)).data)


class InvoiceDiscardApi(APIView):
    """Discard a period's draft whose e-invoice was refused: deleted, and its
    subscription back on that period, so the next close bills it again from
    the settings then. 204. 409 for a numbered invoice, a draft that was not
    refused, or one that cannot be put back exactly (not the subscription's
    last, a plan change or a discount applied at its close...): rebuild it
    instead. Scope `admin`."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request, invoice_id: int):
        get_object_or_404(Invoice.objects.only("pk"), pk=invoice_id)
        invoice_discard(invoice_id=invoice_id)
        return Response(status=204)


class InvoicePaySerializer(serializers.Serializer):
    reference = serializers.CharField(
        max_length=255, help_text="What identifies the payment, e.g. the bank transfer's."
    )
    paid_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            "When the money arrived; default: now. Not in the future, not before the "
            "invoice was issued (400)."
        ),
    )


class InvoicePayApi(APIView):
    """Record a payment made outside Stripe (a bank transfer) of the whole amount
    due (a part: POST /invoices/{id}/payments): the invoice becomes `paid` with
    that reference, and `invoice.paid` is published. 409 for a draft,
    void or already paid invoice; 400 for a paid_at in the future or before the
    invoice was issued. Scope `admin`."""

    @extend_schema(request=InvoicePaySerializer, responses=InvoiceSerializer)
    def post(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        data = request_data(InvoicePaySerializer, request)
        # The service refuses a paid_at in the future or before the invoice's issue.
        settlement.invoice_mark_paid(
            invoice=invoice,
            reference=data["reference"],
            now=timezone.now(),
            paid_at=data["paid_at"],
        )
        return Response(InvoiceSerializer(invoices_query().get(pk=invoice_id)).data)


class InvoicePaymentsApi(APIView):
    """The payments received for an invoice (GET, oldest first), and one more
    recorded by hand (POST): a bank transfer, a cheque, cash, a card charged
    outside Stripe, whole or a part of the amount due, dated when the money
    arrived (the journal books it on that day). The payment that leaves nothing
    due makes the invoice `paid` (paid_at: its received_at) and publishes
    `invoice.paid`. 400 for an amount not above zero, finer than the currency's
    minor unit, in another currency, or a received_at in the future or before
    the invoice was issued; 409 for more than is due, or a draft, void or paid
    invoice; nothing is recorded then."""

    pagination_class = CursorPagination

    @extend_schema(responses=ReceivedPaymentSerializer(many=True))
    def get(self, request, invoice_id: int):
        get_object_or_404(Invoice, pk=invoice_id)
        query = ReceivedPayment.objects.filter(invoice_id=invoice_id).select_related("invoice")
        return paginated(self, request, query, ReceivedPaymentSerializer)

    @extend_schema(
        request=ReceivedPaymentCreateSerializer, responses={201: ReceivedPaymentSerializer}
    )
    def post(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        data = request_data(ReceivedPaymentCreateSerializer, request)
        receipt = payments_received.invoice_payment_record(
            invoice=invoice,
            amount=data["amount"],
            received_at=data["received_at"],
            method=data["method"],
            reference=data["reference"],
            currency=data["currency"],
            now=timezone.now(),
        )
        payment = ReceivedPayment.objects.select_related("invoice").get(pk=receipt.payment.pk)
        return Response(ReceivedPaymentSerializer(payment).data, status=201)


def credit_notes_query():
    return CreditNote.objects.select_related("customer", "invoice").prefetch_related(
        "lines__invoice_line"
    )


class InvoiceCreditNotesApi(APIView):
    """Credit part of a finalized invoice: chosen lines, each at most what is left
    uncredited on it, tax credited in proportion. On an unpaid invoice it lowers
    the amount due; the rest goes to the customer's credit balance, which pays its
    next invoices. On a purchase invoice it takes back the share it credits of
    what was sold (credits, or money from the balance). 400 for more than is left,
    a draft or a void invoice; 409, with the numbers, when the share to take back
    was used or expired."""

    @extend_schema(request=CreditNoteCreateSerializer, responses={201: CreditNoteSerializer})
    def post(self, request, invoice_id: int):
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        data = request_data(CreditNoteCreateSerializer, request)
        note = credit_notes.credit_note_issue(
            invoice=invoice,
            lines=[
                credit_notes.CreditLineInput(line["invoice_line"], line["amount"])
                for line in data["lines"]
            ],
            reason=data["reason"],
            memo=data["memo"],
            refund=data["refund"],
            now=timezone.now(),
        )
        return Response(CreditNoteSerializer(credit_notes_query().get(pk=note.pk)).data, status=201)


class CreditNoteListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", str, description="external_id"),
            OpenApiParameter("invoice", int, description="the invoice's id"),
        ],
        responses=CreditNoteSerializer(many=True),
    )
    def get(self, request):
        query = credit_notes_query()
        customer = request.query_params.get("customer")
        if customer is not None:
            query = query.filter(customer__external_id=customer)
        invoice = request.query_params.get("invoice")
        if invoice is not None:
            if not invoice.isdigit() or len(invoice) > 18:
                raise InvalidRequest(
                    "invoice must be an invoice id", fields={"invoice": ["not an id"]}
                )
            query = query.filter(invoice_id=int(invoice))
        return paginated(self, request, query, CreditNoteSerializer)


class CreditNoteDetailApi(APIView):
    @extend_schema(responses=CreditNoteSerializer)
    def get(self, request, credit_note_id: int):
        note = get_object_or_404(credit_notes_query(), pk=credit_note_id)
        return Response(CreditNoteSerializer(note).data)


class CreditNotePdfApi(APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="Download a credit note as PDF",
        description=(
            "The credit note's PDF as issued: stored when the credit note is issued and "
            "served as stored; one whose PDF is not stored yet is rendered and stored by "
            "its first download."
        ),
        responses={
            (200, "application/pdf"): OpenApiResponse(
                response=OpenApiTypes.BINARY,
                description="The PDF, as an attachment named after the credit note number.",
            )
        },
    )
    def get(self, request, credit_note_id: int):
        # Its lines are read only if it has no stored PDF yet (the render reads them).
        note = get_object_or_404(CreditNote.objects.select_related("invoice"), pk=credit_note_id)
        return rendering.credit_note_pdf_response(credit_note=note, now=timezone.now())


class CreditNoteEInvoiceApi(APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="Download a credit note's e-invoice",
        description=(
            "The EN 16931 e-invoice the credit note was issued as, in the format of the "
            "invoice it credits: for XRechnung and Peppol, its XML; for Factur-X, its "
            "PDF/A-3 with the XML embedded. 404 when the invoice it credits was not "
            "e-invoiced."
        ),
        responses=E_INVOICE_RESPONSES,
    )
    def get(self, request, credit_note_id: int):
        note = get_object_or_404(CreditNote.objects.select_related("invoice"), pk=credit_note_id)
        return credit_note_e_invoice_response(credit_note=note, now=timezone.now())

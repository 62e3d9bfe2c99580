"""Invoice endpoints: list, detail, void."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.errors import InvalidRequest
from invoices import services
from invoices.models import Invoice
from invoices.serializers import InvoiceSerializer
from plans.api import paginated


def invoices_query():
    return Invoice.objects.select_related("customer").prefetch_related(
        "lines", "credit_notes__invoice"
    )


class InvoiceListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("customer", str, description="external_id"),
            OpenApiParameter("status", str, description="draft|finalized|paid|void|uncollectible"),
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
        return paginated(self, request, query, InvoiceSerializer)


class InvoiceDetailApi(APIView):
    @extend_schema(responses=InvoiceSerializer)
    def get(self, request, invoice_id: int):
        return Response(InvoiceSerializer(get_object_or_404(invoices_query(), pk=invoice_id)).data)


class InvoiceVoidApi(APIView):
    @extend_schema(
        request=inline_serializer("VoidRequest", {"reason": serializers.CharField(required=False)}),
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

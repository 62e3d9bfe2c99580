"""POST /api/v1/rerate: usage of a window priced again at today's mappings, a
preview (dry_run) or applied (billing.invoicing.rerating)."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.invoicing.rerating import Rerating, usage_rerate
from billing.serializers import RerateResultSerializer, RerateSerializer
from common.errors import CustomerNotFound, InvalidRequest
from common.money import format_money
from common.periods import iso
from common.rest_api import ErrorSerializer, request_data
from customers.models import ApiKey, Customer
from plans.models import Meter


def rerating_body(rerating: Rerating) -> dict:
    return {
        "dry_run": rerating.dry_run,
        "results": [
            {
                "customer": row.customer.external_id,
                "period_start": iso(row.period_start),
                "period_end": iso(row.period_end),
                "invoice": row.invoice.number if row.invoice is not None else None,
                "billed": format_money(row.billed, row.currency),
                "rerated": format_money(row.rerated, row.currency),
                "difference": format_money(row.difference, row.currency),
                "currency": row.currency,
                "issued": row.issued.number if row.issued is not None else None,
            }
            for row in rerating.rows
        ],
        "total_difference": {
            currency: format_money(amount, currency)
            for currency, amount in sorted(rerating.total_difference().items())
        },
        "renamed_events": rerating.renamed.events,
    }


class RerateApi(APIView):
    """Re-rate usage. Scope `admin`."""

    required_scopes = {"POST": ApiKey.SCOPE_ADMIN}

    @extend_schema(
        request=RerateSerializer,
        responses={
            200: RerateResultSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such customer."),
        },
        description=(
            "Each part of a period overlapping [from, to) priced again from its stored "
            "events at today's mappings (a gateway's model names) and at the prices in "
            "effect for it. With dry_run (the default) nothing changes. Applied: the "
            "open period reads the new figures; a period whose invoice billed too little "
            "gets an invoice for the difference (reason `correction`, naming it), one "
            "that billed too much a credit note on it, each issued now. Applying twice "
            "changes nothing. 404 for an unknown customer, 400 for an unknown meter or a "
            "window that is empty or longer than 400 days."
        ),
    )
    def post(self, request):
        data = request_data(RerateSerializer, request)
        customer = None
        if data["customer"] is not None:
            customer = Customer.objects.filter(external_id=data["customer"]).first()
            if customer is None:
                raise CustomerNotFound(data["customer"])
        meter = None
        if data["meter"] is not None:
            meter = Meter.objects.filter(code=data["meter"]).first()
            if meter is None:
                raise InvalidRequest(
                    f"unknown meter {data['meter']!r}", fields={"meter": ["unknown meter"]}
                )
        rerating = usage_rerate(
            start=data["from"],
            end=data["to"],
            now=timezone.now(),
            customer=customer,
            meter=meter,
            dry_run=data["dry_run"],
        )
        return Response(rerating_body(rerating))

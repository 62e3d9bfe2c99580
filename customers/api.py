"""Customer endpoints."""

from datetime import UTC, datetime

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.rest_api import CursorPagination, request_data
from customers import services
from customers.billing_entities import billing_entity_create
from customers.models import ApiKey, BillingEntity, Customer, PortalLink
from customers.portal import portal_session_create
from customers.portal_links import (
    LINK_DAYS_DEFAULT,
    LINK_DAYS_MOST,
    portal_link_create,
    portal_link_revoke,
)
from customers.selectors import customer_get, vat_checks_newest_first
from customers.serializers import (
    CustomerSerializer,
    CustomerUpdateSerializer,
    VatCheckSerializer,
)
from customers.vat_checks import vat_id_check
from invoices.dunning_policies import customer_policy_choice, customer_policy_set
from plans.api import paginated


class CustomerListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=CustomerSerializer(many=True))
    def get(self, request):
        return paginated(
            self,
            request,
            Customer.objects.select_related("billing_entity").prefetch_related(
                "tax_rates", "vat_checks"
            ),
            CustomerSerializer,
        )

    @extend_schema(request=CustomerSerializer, responses={201: CustomerSerializer})
    def post(self, request):
        data = dict(request_data(CustomerSerializer, request))
        data["timezone_name"] = data.pop("timezone")
        dunning = customer_policy_choice(data.pop("dunning_policy", None))
        with transaction.atomic():
            customer = services.customer_create(**data)
            if dunning != (None, False):
                customer = customer_policy_set(customer=customer, choice=dunning)
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    @extend_schema(responses=CustomerSerializer)
    def get(self, request, external_id: str):
        return Response(CustomerSerializer(customer_get(external_id=external_id)).data)

    @extend_schema(request=CustomerUpdateSerializer, responses=CustomerSerializer)
    def patch(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = dict(request_data(CustomerUpdateSerializer, request))
        changes_dunning = "dunning_policy" in data
        dunning = customer_policy_choice(data.pop("dunning_policy", None))
        with transaction.atomic():
            if data:
                customer = services.customer_update(customer=customer, **data)
            if changes_dunning:
                customer = customer_policy_set(customer=customer, choice=dunning)
        return Response(CustomerSerializer(customer).data)


class PortalSessionApi(APIView):
    """A signed link to the customer's portal (usage, balances, invoices, PDFs), to
    hand to the customer. It works without a login until it expires (default one
    hour, BILLING_PORTAL_TTL_SECONDS)."""

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "PortalSession",
                {"url": serializers.URLField(), "expires_at": serializers.DateTimeField()},
            )
        },
    )
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        session = portal_session_create(customer=customer, now=datetime.now(UTC))
        url = request.build_absolute_uri(reverse("portal", args=[session.token]))
        return Response(
            {"url": url, "expires_at": session.expires_at.isoformat().replace("+00:00", "Z")},
            status=status.HTTP_201_CREATED,
        )


def _moment(moment) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class PortalLinkCreateSerializer(serializers.Serializer):
    manage = serializers.BooleanField(
        required=False, default=False, help_text="Whether the link may change the limits."
    )
    holder = serializers.CharField(
        max_length=PortalLink.HOLDER_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="Who the link is for (required for a manage link): its changes are "
        "recorded under this name.",
    )
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=LINK_DAYS_MOST, required=False, default=LINK_DAYS_DEFAULT
    )


class PortalLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    manage = serializers.BooleanField()
    holder = serializers.CharField()
    created_at = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    revoked_at = serializers.SerializerMethodField()
    created_by = serializers.CharField()

    def get_created_at(self, link) -> str:
        return _moment(link.created_at)

    def get_expires_at(self, link) -> str:
        return _moment(link.expires_at)

    def get_revoked_at(self, link) -> str | None:
        return _moment(link.revoked_at)


PORTAL_LINK_CREATED = inline_serializer(
    "PortalLinkCreated",
    {
        "id": serializers.IntegerField(),
        "url": serializers.URLField(),
        "manage": serializers.BooleanField(),
        "holder": serializers.CharField(),
        "expires_at": serializers.DateTimeField(),
        "created_at": serializers.DateTimeField(),
    },
)


class PortalLinkListApi(APIView):
    """Stored portal links (API.md "Customer limits"): unlike a portal session,
    revocable, lasting 1 to 90 days, and a `manage` link may change the limits the
    customer sets in the portal, recorded under its holder's name. The list never
    shows a link's URL: it is given once, when the link is made."""

    required_scopes = {"GET": ApiKey.SCOPE_ADMIN}

    @extend_schema(
        responses=inline_serializer("PortalLinks", {"results": PortalLinkSerializer(many=True)})
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        links = customer.portal_links.order_by("-created_at", "-id")
        return Response({"results": PortalLinkSerializer(links, many=True).data})

    @extend_schema(
        summary="Issue a portal link (read-only, or managing the customer's limits)",
        description="400 naming the field: a manage link without its holder, a holder "
        "over 100 characters, days outside 1 to 90.",
        request=PortalLinkCreateSerializer,
        responses={201: PORTAL_LINK_CREATED},
    )
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = request_data(PortalLinkCreateSerializer, request)
        link, token = portal_link_create(
            customer=customer,
            manage=data["manage"],
            holder=data["holder"],
            expires_in_days=data["expires_in_days"],
            created_by=f"API key {request.user.key.name}",
            now=datetime.now(UTC),
        )
        return Response(
            {
                "id": link.pk,
                "url": request.build_absolute_uri(reverse("portal", args=[token])),
                "manage": link.manage,
                "holder": link.holder,
                "expires_at": _moment(link.expires_at),
                "created_at": _moment(link.created_at),
            },
            status=status.HTTP_201_CREATED,
        )


class PortalLinkDetailApi(APIView):
    @extend_schema(summary="Revoke a portal link", request=None, responses={204: None})
    def delete(self, request, external_id: str, link_id: int):
        customer = customer_get(external_id=external_id)
        link = get_object_or_404(PortalLink, pk=link_id, customer=customer)
        portal_link_revoke(link=link, now=datetime.now(UTC))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CustomerVatCheckApi(APIView):
    """The customer's VAT number (tax_id) checked with the VAT number service
    (BILLING_VAT_CHECKER: VIES), and the checks recorded."""

    @extend_schema(
        summary="The checks of the customer's VAT number, newest first",
        responses=inline_serializer("VatChecks", {"results": VatCheckSerializer(many=True)}),
    )
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        checks = vat_checks_newest_first(customer=customer)
        return Response({"results": VatCheckSerializer(checks, many=True).data})

    @extend_schema(
        summary="Check the customer's VAT number with VIES",
        description="Records the answer: valid, invalid, or valid null with the error when "
        "VIES could not answer (a member state unavailable, a timeout). 400 naming "
        "`vat_id` for no VAT number, one whose form or check digits are wrong, or one "
        "outside the EU (VIES is not asked); 409 when no checker is configured.",
        request=None,
        responses={201: VatCheckSerializer},
    )
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        check = vat_id_check(customer=customer, now=datetime.now(UTC))
        return Response(VatCheckSerializer(check).data, status=status.HTTP_201_CREATED)


class BillingEntityCreateSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=64)
    legal_name = serializers.CharField(max_length=255)
    functional_currency = serializers.CharField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    number_prefix = serializers.CharField(
        max_length=12, help_text="Its invoices' numbers: FR-2026-000001."
    )
    credit_note_prefix = serializers.CharField(
        max_length=12, required=False, help_text="Default: the number prefix and CN."
    )
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    address = serializers.JSONField(
        help_text="line1, line2, postal_code, city, state, country (ISO 3166-1, required)."
    )
    vat_id = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    default = serializers.BooleanField(required=False, default=False)
    e_invoicing = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also issue its invoices and credit notes as EN 16931 e-invoices.",
    )
    registration_id = serializers.CharField(
        max_length=64, required=False, default="", allow_blank=True
    )
    iban = serializers.CharField(max_length=42, required=False, default="", allow_blank=True)
    bic = serializers.CharField(max_length=11, required=False, default="", allow_blank=True)
    peppol_id = serializers.CharField(
        max_length=104,
        required=False,
        default="",
        allow_blank=True,
        help_text="Peppol endpoint scheme:id, e.g. 0009:12345678200077.",
    )
    contact_name = serializers.CharField(
        max_length=128, required=False, default="", allow_blank=True
    )
    contact_phone = serializers.CharField(
        max_length=64, required=False, default="", allow_blank=True
    )
    payment_means = serializers.ChoiceField(
        choices=BillingEntity.PAYMENT_MEANS, required=False, default=BillingEntity.CREDIT_TRANSFER
    )
    sepa_creditor_id = serializers.CharField(
        max_length=35, required=False, default="", allow_blank=True
    )
    email = serializers.EmailField(
        required=False,
        default="",
        allow_blank=True,
        help_text="Contact email: on its documents, and its e-invoices' BT-43 (XRechnung BR-DE-7).",
    )
    sender_email = serializers.EmailField(
        required=False,
        default="",
        allow_blank=True,
        help_text="The From address of its emails; empty: the configured one.",
    )
    bank_name = serializers.CharField(max_length=128, required=False, default="", allow_blank=True)
    payment_instructions = serializers.CharField(required=False, default="", allow_blank=True)
    invoice_footer = serializers.CharField(required=False, default="", allow_blank=True)

    def validate(self, attrs):
        # A field it does not take is refused, never dropped unseen.
        if isinstance(self.initial_data, dict):
            unknown = sorted(set(self.initial_data) - set(self.fields), key=str)
            if unknown:
                raise serializers.ValidationError(
                    {
                        str(name): ["unknown field; a billing entity does not take it"]
                        for name in unknown
                    }
                )
        return attrs


class BillingEntitySerializer(serializers.Serializer):
    code = serializers.CharField()
    legal_name = serializers.CharField()
    functional_currency = serializers.CharField()
    timezone = serializers.CharField()
    number_prefix = serializers.CharField(source="invoice_prefix")
    credit_note_prefix = serializers.CharField()
    address = serializers.SerializerMethodField()
    vat_id = serializers.CharField(source="tax_id")
    default = serializers.BooleanField(source="is_default")
    e_invoicing = serializers.BooleanField()
    registration_id = serializers.CharField()
    iban = serializers.CharField()
    bic = serializers.CharField()
    peppol_id = serializers.CharField()
    contact_name = serializers.CharField()
    contact_phone = serializers.CharField()
    payment_means = serializers.CharField()
    sepa_creditor_id = serializers.CharField()
    email = serializers.CharField()
    sender_email = serializers.CharField()
    bank_name = serializers.CharField()
    payment_instructions = serializers.CharField()
    invoice_footer = serializers.CharField()

    def get_address(self, entity) -> dict:
        """As printed (its lines and its country), and as e-invoices carry it."""
        return {
            "lines": entity.address,
            "country": entity.country,
            "street": entity.street,
            "postal_code": entity.postal_code,
            "city": entity.city,
        }


class BillingEntityListApi(APIView):
    @extend_schema(
        operation_id="v1_billing_entities_list",
        responses=inline_serializer(
            "BillingEntities", {"results": BillingEntitySerializer(many=True)}
        ),
    )
    def get(self, request):
        entities = BillingEntity.objects.order_by("code")
        return Response({"results": BillingEntitySerializer(entities, many=True).data})

    @extend_schema(
        summary="Add a billing entity (a seller)",
        description=(
            "400 naming the field for a rule broken (an unknown currency, zone or country, "
            "a prefix another entity numbers with); 409 when the code exists. Made the "
            "default, it takes over from the former default."
        ),
        request=BillingEntityCreateSerializer,
        responses={201: BillingEntitySerializer},
    )
    def post(self, request):
        data = dict(request_data(BillingEntityCreateSerializer, request))
        data["is_default"] = data.pop("default")
        entity = billing_entity_create(**data)
        return Response(BillingEntitySerializer(entity).data, status=status.HTTP_201_CREATED)


class BillingEntityDetailApi(APIView):
    @extend_schema(responses=BillingEntitySerializer)
    def get(self, request, code: str):
        return Response(BillingEntitySerializer(get_object_or_404(BillingEntity, code=code)).data)

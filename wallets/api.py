"""Wallet endpoints: balances with their blocks, credit grants and pack purchases,
money top-ups, auto top-up, and the ledger."""

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import InvalidRequest, NotFound
from common.money import format_decimal, format_money
from common.rest_api import CursorPagination, request_data
from customers.models import Customer
from customers.selectors import customer_get
from invoices import collection
from invoices.models import Purchase
from invoices.serializers import InvoiceSerializer
from plans.models import CreditPack
from wallets import ledger, purchases, selectors
from wallets.models import Wallet
from wallets.serializers import (
    AutoTopUpSerializer,
    BlockSerializer,
    CreditsAddSerializer,
    LedgerEntrySerializer,
    MoneyAddSerializer,
    WalletSerializer,
)


def wallets_body(customer: Customer) -> list[dict]:
    wallets = selectors.wallet_list(customer_id=customer.pk)
    now = timezone.now()
    blocks = {w.pk: list(selectors.blocks_usable(wallet=w, now=now)) for w in wallets}
    return WalletSerializer(wallets, many=True, context={"blocks": blocks}).data


def pack_or_400(code: str) -> CreditPack:
    pack = CreditPack.objects.filter(code=code).first()
    if pack is None:
        raise InvalidRequest(f"unknown credit pack {code!r}", fields={"pack": ["unknown pack"]})
    return pack


def _purchase_response(customer: Customer, block, invoice) -> Response:
    block.wallet = Wallet.objects.get(pk=block.wallet_id)
    return Response(
        {
            "wallets": wallets_body(customer),
            "block": BlockSerializer(block).data,
            "invoice": InvoiceSerializer(invoice).data if invoice else None,
        },
        status=status.HTTP_201_CREATED,
    )


PURCHASE = inline_serializer(
    "WalletChange",
    {
        "wallets": WalletSerializer(many=True),
        "block": BlockSerializer(),
        "invoice": InvoiceSerializer(allow_null=True),
    },
)


class PurchaseSerializer(serializers.ModelSerializer):
    """A purchase paid through Stripe before it is granted. `checkout_url` is the
    Stripe Checkout page to send the buyer to (Checkout purchases); `invoice` is
    the paid purchase invoice's id once the payment succeeded."""

    pack = serializers.SlugRelatedField(slug_field="code", read_only=True)
    credits = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()
    checkout_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = Purchase
        fields = [
            "id",
            "kind",
            "channel",
            "status",
            "pack",
            "credits",
            "applies_to",
            "amount",
            "currency",
            "checkout_url",
            "invoice",
            "error",
            "created_at",
            "paid_at",
        ]

    def get_credits(self, purchase) -> str | None:
        return None if purchase.credits is None else format_decimal(purchase.credits)

    def get_amount(self, purchase) -> str:
        return format_money(purchase.amount, purchase.currency)

    def get_checkout_url(self, purchase) -> str | None:
        return purchase.payment.checkout_url or None

    def get_error(self, purchase) -> str | None:
        return purchase.payment.last_error or None


PENDING_PURCHASE = inline_serializer("PendingPurchase", {"purchase": PurchaseSerializer()})


def _pending_response(purchase: Purchase) -> Response:
    purchase = Purchase.objects.select_related("pack", "payment").get(pk=purchase.pk)
    return Response(
        {"purchase": PurchaseSerializer(purchase).data}, status=status.HTTP_202_ACCEPTED
    )


class StripeCheckoutFields(serializers.Serializer):
    """With Stripe: `checkout` true answers a Stripe Checkout link to pay on;
    false (the default) charges the saved payment method. Either way nothing is
    granted until the payment succeeds (202 with the pending purchase)."""

    checkout = serializers.BooleanField(required=False, default=False)
    # Blank means the same as left out: the STRIPE_CHECKOUT_*_URL settings.
    success_url = serializers.URLField(
        required=False, allow_blank=True, default="", max_length=2000
    )
    cancel_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=2000)


# The request bodies keep their component names: the fields are added, not renamed.
@extend_schema_serializer(component_name="CreditsAdd")
class CreditsOrderSerializer(CreditsAddSerializer, StripeCheckoutFields):
    def validate(self, data):
        data = super().validate(data)
        if data["checkout"] and "pack" not in data:
            raise serializers.ValidationError({"checkout": ["Checkout sells a pack"]})
        return data


@extend_schema_serializer(component_name="MoneyAdd")
class MoneyOrderSerializer(MoneyAddSerializer, StripeCheckoutFields):
    pass


def _checkout_needs_stripe(data: dict) -> None:
    if data["checkout"] and not collection.enabled():
        raise InvalidRequest(
            "checkout needs Stripe payments (STRIPE_API_KEY)",
            fields={"checkout": ["Stripe payments are not configured"]},
        )


class WalletListApi(APIView):
    @extend_schema(responses=inline_serializer("Wallets", {"results": WalletSerializer(many=True)}))
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response({"results": wallets_body(customer)})


class CreditsAddApi(APIView):
    @extend_schema(
        request=CreditsOrderSerializer,
        responses={201: PURCHASE, 202: PENDING_PURCHASE},
        description=(
            "A grant, or a sale. Without Stripe a sale is granted and invoiced at once "
            "(201). With Stripe a pack is paid before it is granted (202 with the pending "
            "purchase): on a Stripe Checkout page (`checkout`: true, answered with its "
            "URL) or charged to the saved payment method."
        ),
    )
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = request_data(CreditsOrderSerializer, request)
        _checkout_needs_stripe(data)
        now = timezone.now()
        if "pack" in data:
            pack = pack_or_400(data["pack"])
            if purchases.paid_through_stripe(pack.price.amount):
                purchase = purchases.credit_pack_order(
                    customer=customer,
                    pack=pack,
                    checkout=data["checkout"],
                    success_url=data["success_url"],
                    cancel_url=data["cancel_url"],
                    now=now,
                )
                return _pending_response(purchase)
            block, invoice = purchases.credit_pack_purchase(customer=customer, pack=pack, now=now)
        else:
            block, invoice = ledger.credits_grant(
                customer=customer,
                credits=data["credits"],
                kind=data["kind"],
                price=data["price"],
                priority=data["priority"],
                effective_at=data["effective_at"],
                expires_at=data["expires_at"],
                note=data["note"],
                applies_to=data["applies_to"],
                now=now,
            )
        return _purchase_response(customer, block, invoice)


class MoneyAddApi(APIView):
    @extend_schema(
        request=MoneyOrderSerializer,
        responses={201: PURCHASE, 202: PENDING_PURCHASE},
        description=(
            "A money top-up. Without Stripe it is added and invoiced at once (201); with "
            "Stripe it is paid first (202 with the pending purchase), on a Checkout page "
            "(`checkout`: true) or charged to the saved payment method."
        ),
    )
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = request_data(MoneyOrderSerializer, request)
        _checkout_needs_stripe(data)
        if purchases.paid_through_stripe(data["amount"]):
            purchase = purchases.money_top_up_order(
                customer=customer,
                amount=data["amount"],
                currency=data["currency"].upper(),
                checkout=data["checkout"],
                success_url=data["success_url"],
                cancel_url=data["cancel_url"],
                applies_to=data["applies_to"],
                now=timezone.now(),
            )
            return _pending_response(purchase)
        block, invoice = purchases.money_top_up(
            customer=customer,
            amount=data["amount"],
            currency=data["currency"].upper(),
            applies_to=data["applies_to"],
            now=timezone.now(),
        )
        return _purchase_response(customer, block, invoice)


class AutoTopUpApi(APIView):
    @extend_schema(request=AutoTopUpSerializer, responses=AutoTopUpSerializer)
    def put(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = request_data(AutoTopUpSerializer, request)
        setting = purchases.auto_top_up_set(
            customer=customer,
            enabled=data["enabled"],
            threshold=data["threshold"],
            pack=pack_or_400(data["pack"]),
        )
        return Response(
            AutoTopUpSerializer(
                {"enabled": setting.enabled, "threshold": setting.threshold, "pack": data["pack"]}
            ).data
        )


class LedgerPagination(CursorPagination):
    ordering = "-id"


class LedgerApi(APIView):
    """A wallet's ledger, newest first: /wallets/credits/ledger, or
    /wallets/money/ledger (the customer's currency, or ?currency=)."""

    pagination_class = LedgerPagination

    @extend_schema(
        parameters=[OpenApiParameter("currency", str, description="money wallets only")],
        responses=LedgerEntrySerializer(many=True),
    )
    def get(self, request, external_id: str, kind: str):
        customer = customer_get(external_id=external_id)
        currency = ""
        if kind == Wallet.MONEY:
            currency = request.query_params.get("currency", customer.currency).upper()
        wallet = Wallet.objects.filter(customer=customer, kind=kind, currency=currency).first()
        if wallet is None:
            what = f"{currency} money" if currency else kind
            raise NotFound(f"customer {external_id!r} has no {what} wallet")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.ledger(wallet=wallet), request, view=self)
        data = LedgerEntrySerializer(page, many=True, context={"wallet": wallet}).data
        return paginator.get_paginated_response(data)

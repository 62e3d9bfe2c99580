"""Wallet endpoints: balances with their blocks, credit grants and pack purchases,
money top-ups, auto top-up, and the ledger."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.errors import InvalidRequest
from config.api import CursorPagination
from customers.models import Customer
from invoices.serializers import InvoiceSerializer
from plans.models import CreditPack
from wallets import selectors, services
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


class WalletListApi(APIView):
    @extend_schema(responses=inline_serializer("Wallets", {"results": WalletSerializer(many=True)}))
    def get(self, request, external_id: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        return Response({"results": wallets_body(customer)})


class CreditsAddApi(APIView):
    @extend_schema(request=CreditsAddSerializer, responses={201: PURCHASE})
    def post(self, request, external_id: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        serializer = CreditsAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        now = timezone.now()
        if "pack" in data:
            block, invoice = services.credit_pack_purchase(
                customer=customer, pack=pack_or_400(data["pack"]), now=now
            )
        else:
            block, invoice = services.credits_grant(
                customer=customer,
                credits=data["credits"],
                kind=data["kind"],
                price=data["price"],
                priority=data["priority"],
                effective_at=data["effective_at"],
                expires_at=data["expires_at"],
                note=data["note"],
                now=now,
            )
        return _purchase_response(customer, block, invoice)


class MoneyAddApi(APIView):
    @extend_schema(request=MoneyAddSerializer, responses={201: PURCHASE})
    def post(self, request, external_id: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        serializer = MoneyAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        block, invoice = services.money_top_up(
            customer=customer,
            amount=data["amount"],
            currency=data["currency"].upper(),
            now=timezone.now(),
        )
        return _purchase_response(customer, block, invoice)


class AutoTopUpApi(APIView):
    @extend_schema(request=AutoTopUpSerializer, responses=AutoTopUpSerializer)
    def put(self, request, external_id: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        serializer = AutoTopUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        setting = services.auto_top_up_set(
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

    @extend_schema(
        parameters=[OpenApiParameter("currency", str, description="money wallets only")],
        responses=LedgerEntrySerializer(many=True),
    )
    def get(self, request, external_id: str, kind: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        currency = ""
        if kind == Wallet.MONEY:
            currency = request.query_params.get("currency", customer.currency).upper()
        wallet = get_object_or_404(Wallet, customer=customer, kind=kind, currency=currency)
        paginator = LedgerPagination()
        page = paginator.paginate_queryset(selectors.ledger(wallet=wallet), request, view=self)
        data = LedgerEntrySerializer(page, many=True, context={"wallet": wallet}).data
        return paginator.get_paginated_response(data)

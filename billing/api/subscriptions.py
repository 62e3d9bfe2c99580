"""Subscriptions: create, list, read, change seats, change plan, cancel, redeem a coupon."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Subscription, SubscriptionChange
from billing.serializers import (
    CancelSerializer,
    ChangePlanSerializer,
    DiscountCreateSerializer,
    DiscountSerializer,
    SubscriptionCreateSerializer,
    SubscriptionPatchSerializer,
    SubscriptionSerializer,
)
from billing.subscriptions import deals, discounts, lifecycle
from common.errors import InvalidRequest
from common.rest_api import ErrorSerializer, request_data
from customers.models import Customer
from invoices.api import credit_notes_query, invoices_query
from invoices.serializers import CreditNoteSerializer, InvoiceSerializer
from plans.models import Plan, PlanVersion
from plans.serializers import OverridesSerializer


def plan_or_400(code: str) -> Plan:
    plan = Plan.objects.filter(code=code).first()
    if plan is None:
        raise InvalidRequest(f"unknown plan {code!r}", fields={"plan": ["unknown plan"]})
    return plan


def target_version(plan_code: str, number: int | None) -> PlanVersion:
    """The version a subscription moves to: the one numbered, or the plan's
    latest published one."""
    plan = plan_or_400(plan_code)
    versions = plan.versions.all()
    version = (
        versions.filter(status=PlanVersion.PUBLISHED).order_by("-number").first()
        if number is None
        else versions.filter(number=number).first()
    )
    if version is None:
        raise InvalidRequest(
            f"plan {plan.code!r} has no such published version",
            fields={"version": ["not found"]},
        )
    return version


class SubscriptionListApi(APIView):
    @extend_schema(
        request=SubscriptionCreateSerializer,
        responses={
            201: SubscriptionSerializer,
            404: OpenApiResponse(ErrorSerializer, description="The plan has no such version."),
        },
    )
    def post(self, request):
        data = request_data(SubscriptionCreateSerializer, request)
        customer = Customer.objects.filter(external_id=data["customer"]).first()
        if customer is None:
            raise InvalidRequest(
                f"unknown customer {data['customer']!r}", fields={"customer": ["unknown customer"]}
            )
        plan = plan_or_400(data["plan"])
        subscription = lifecycle.subscription_create(
            customer=customer,
            plan=plan,
            start=data["start"],
            version_number=data["version"],
            seats=data["seats"],
            billing_anchor=data["billing_anchor"],
            overrides=OverridesSerializer.overrides(data["overrides"]),
        )
        return Response(
            SubscriptionSerializer(subscriptions_with_plans().get(pk=subscription.pk)).data,
            status=status.HTTP_201_CREATED,
        )


def subscriptions_with_plans():
    return Subscription.objects.select_related("customer", "version__plan")


class SubscriptionDetailApi(APIView):
    @extend_schema(responses=SubscriptionSerializer)
    def get(self, request, subscription_id: int):
        return Response(
            SubscriptionSerializer(
                get_object_or_404(subscriptions_with_plans(), pk=subscription_id)
            ).data
        )

    @extend_schema(request=SubscriptionPatchSerializer, responses=SubscriptionSerializer)
    def patch(self, request, subscription_id: int):
        """Change the seat count, prorated by the second on the invoice that closes the
        period, and/or the deal (overrides) from the next period. Both or neither."""
        subscription = get_object_or_404(subscriptions_with_plans(), pk=subscription_id)
        data = request_data(SubscriptionPatchSerializer, request)
        with transaction.atomic():
            if "overrides" in data:
                deals.subscription_set_overrides(
                    subscription=subscription,
                    overrides=OverridesSerializer.overrides(data["overrides"]),
                )
            if "seats" in data:
                lifecycle.subscription_set_seats(
                    subscription=subscription, seats=data["seats"], at=data["at"] or timezone.now()
                )
        return Response(
            SubscriptionSerializer(subscriptions_with_plans().get(pk=subscription_id)).data
        )


class SubscriptionChangeSerializer(SubscriptionSerializer):
    """The subscription after a plan change or a cancellation, with the invoice the
    change wrote at once (usage so far, the new plan's fees), if any, and the
    credit note for the unused time of the fees already invoiced, if any."""

    invoice = InvoiceSerializer(allow_null=True, read_only=True)
    credit_note = CreditNoteSerializer(allow_null=True, read_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "invoice", "credit_note"]


def _with_invoice(subscription_id: int, invoice) -> Response:
    body = SubscriptionSerializer(subscriptions_with_plans().get(pk=subscription_id)).data
    body["invoice"] = (
        InvoiceSerializer(invoices_query().get(pk=invoice.pk)).data if invoice else None
    )
    # The change just recorded names its credit note (billing.invoicing.unused_time).
    change = SubscriptionChange.objects.filter(subscription_id=subscription_id).latest("pk")
    note = (change.details or {}).get("credit_note")
    body["credit_note"] = (
        CreditNoteSerializer(credit_notes_query().get(pk=note)).data if note else None
    )
    return Response(body)


class SubscriptionChangePlanApi(APIView):
    @extend_schema(request=ChangePlanSerializer, responses=SubscriptionChangeSerializer)
    def post(self, request, subscription_id: int):
        subscription = get_object_or_404(subscriptions_with_plans(), pk=subscription_id)
        data = request_data(ChangePlanSerializer, request)
        version = target_version(data["plan"], data["version"])
        _, invoice = lifecycle.subscription_change_plan(
            subscription=subscription,
            version=version,
            effective=data["effective"],
            at=data["at"] or timezone.now(),
            overrides=OverridesSerializer.overrides(data["overrides"]),
        )
        return _with_invoice(subscription_id, invoice)


class SubscriptionCancelApi(APIView):
    @extend_schema(request=CancelSerializer, responses=SubscriptionChangeSerializer)
    def post(self, request, subscription_id: int):
        subscription = get_object_or_404(subscriptions_with_plans(), pk=subscription_id)
        data = request_data(CancelSerializer, request)
        _, invoice = lifecycle.subscription_cancel(
            subscription=subscription,
            effective=data["effective"],
            at=data["at"] or timezone.now(),
            commit_leftover=data["commit_leftover"],
        )
        return _with_invoice(subscription_id, invoice)


class SubscriptionDiscountsApi(APIView):
    @extend_schema(
        request=DiscountCreateSerializer,
        responses={
            201: DiscountSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Unknown coupon."),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The coupon is archived, past its redeem_by, at its redemption "
                "limit or off in another currency, or the subscription has a discount running "
                "or is not live. Nothing changed.",
            ),
        },
    )
    def post(self, request, subscription_id: int):
        """Redeem a coupon: a discount on the subscription's next period invoices."""
        subscription = get_object_or_404(Subscription, pk=subscription_id)
        data = request_data(DiscountCreateSerializer, request)
        coupon = discounts.coupon_or_400(data["coupon"])
        discount = discounts.discount_redeem(
            subscription=subscription, coupon=coupon, now=timezone.now()
        )
        return Response(DiscountSerializer(discount).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: DiscountSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The subscription has no discount running."
            ),
        },
    )
    def delete(self, request, subscription_id: int):
        """End the running discount now: the period invoices the close writes from
        now on are not discounted. Answers the ended discount."""
        subscription = get_object_or_404(Subscription, pk=subscription_id)
        discount = discounts.discount_end(subscription=subscription, at=timezone.now())
        return Response(DiscountSerializer(discount).data)

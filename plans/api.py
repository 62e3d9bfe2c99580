"""Catalog endpoints: meters, plans and versions, credit packs."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import CursorPagination
from plans import coupons, selectors, services
from plans.models import Coupon, CreditPack, Meter, Plan, PlanVersion, TaxRate
from plans.serializers import (
    CouponSerializer,
    CouponUpdateSerializer,
    CreditPackSerializer,
    MeterSerializer,
    PlanCreateSerializer,
    PlanSerializer,
    PlanVersionSerializer,
    TaxRateSerializer,
    TaxRateUpdateSerializer,
    VersionInputSerializer,
)


def paginated(view: APIView, request, queryset, serializer_class):
    """One page of a list view. The view names its `pagination_class`, which the
    OpenAPI schema reads too (APIView has none of its own)."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class MeterListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=MeterSerializer(many=True))
    def get(self, request):
        return paginated(self, request, Meter.objects.all(), MeterSerializer)

    @extend_schema(request=MeterSerializer, responses={201: MeterSerializer})
    def post(self, request):
        serializer = MeterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        meter = services.meter_create(**serializer.validated_data)
        return Response(MeterSerializer(meter).data, status=status.HTTP_201_CREATED)


class MeterDetailApi(APIView):
    @extend_schema(responses=MeterSerializer)
    def get(self, request, code: str):
        return Response(MeterSerializer(get_object_or_404(Meter, code=code)).data)


class PlanListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=PlanSerializer(many=True))
    def get(self, request):
        return paginated(self, request, selectors.plan_list(), PlanSerializer)

    @extend_schema(request=PlanCreateSerializer, responses={201: PlanSerializer})
    def post(self, request):
        serializer = PlanCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = services.plan_create(
            code=data["code"],
            name=data["name"],
            description=data["description"],
            version=serializer.to_spec(),
            publish=data["publish"],
        )
        plan = selectors.plan_list().get(pk=version.plan_id)
        return Response(PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


class PlanDetailApi(APIView):
    @extend_schema(responses=PlanSerializer)
    def get(self, request, code: str):
        return Response(PlanSerializer(get_object_or_404(selectors.plan_list(), code=code)).data)


def _version(code: str, number: int) -> PlanVersion:
    return get_object_or_404(selectors.plan_versions_prefetched(), plan__code=code, number=number)


def _version_response(version: PlanVersion, status_code: int = status.HTTP_200_OK) -> Response:
    fresh = selectors.plan_versions_prefetched().get(pk=version.pk)
    return Response(PlanVersionSerializer(fresh).data, status=status_code)


class PlanVersionListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=PlanVersionSerializer(many=True))
    def get(self, request, code: str):
        plan = get_object_or_404(Plan, code=code)
        versions = selectors.plan_versions_prefetched().filter(plan=plan)
        return paginated(self, request, versions, PlanVersionSerializer)

    @extend_schema(request=VersionInputSerializer, responses={201: PlanVersionSerializer})
    def post(self, request, code: str):
        plan = get_object_or_404(Plan, code=code)
        serializer = VersionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.plan_version_create(plan=plan, version=serializer.to_spec())
        return _version_response(version, status.HTTP_201_CREATED)


class PlanVersionDetailApi(APIView):
    @extend_schema(responses=PlanVersionSerializer)
    def get(self, request, code: str, number: int):
        return Response(PlanVersionSerializer(_version(code, number)).data)

    @extend_schema(request=VersionInputSerializer, responses=PlanVersionSerializer)
    def put(self, request, code: str, number: int):
        """Replace a draft's terms and charges; 409 for a published or archived version."""
        version = _version(code, number)
        serializer = VersionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.plan_version_update(version=version, spec=serializer.to_spec())
        return _version_response(version)


class PlanVersionPublishApi(APIView):
    @extend_schema(request=None, responses=PlanVersionSerializer)
    def post(self, request, code: str, number: int):
        return _version_response(services.plan_version_publish(version=_version(code, number)))


class PlanVersionArchiveApi(APIView):
    @extend_schema(request=None, responses=PlanVersionSerializer)
    def post(self, request, code: str, number: int):
        return _version_response(services.plan_version_archive(version=_version(code, number)))


class CreditPackListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=CreditPackSerializer(many=True))
    def get(self, request):
        return paginated(self, request, CreditPack.objects.all(), CreditPackSerializer)

    @extend_schema(request=CreditPackSerializer, responses={201: CreditPackSerializer})
    def post(self, request):
        serializer = CreditPackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pack = services.credit_pack_create(**serializer.validated_data)
        return Response(CreditPackSerializer(pack).data, status=status.HTTP_201_CREATED)


class CreditPackDetailApi(APIView):
    @extend_schema(responses=CreditPackSerializer)
    def get(self, request, code: str):
        return Response(CreditPackSerializer(get_object_or_404(CreditPack, code=code)).data)


def _tax_rate_values(data: dict) -> dict:
    values = dict(data)
    if "default" in values:
        values["is_default"] = values.pop("default")
    if "country" in values:
        values["country"] = values["country"] or ""
    return values


class TaxRateListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=TaxRateSerializer(many=True))
    def get(self, request):
        return paginated(self, request, TaxRate.objects.all(), TaxRateSerializer)

    @extend_schema(request=TaxRateSerializer, responses={201: TaxRateSerializer})
    def post(self, request):
        serializer = TaxRateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate = services.tax_rate_create(**_tax_rate_values(serializer.validated_data))
        return Response(TaxRateSerializer(rate).data, status=status.HTTP_201_CREATED)


class TaxRateDetailApi(APIView):
    @extend_schema(responses=TaxRateSerializer)
    def get(self, request, code: str):
        return Response(TaxRateSerializer(get_object_or_404(TaxRate, code=code)).data)

    @extend_schema(
        request=TaxRateUpdateSerializer,
        responses=TaxRateSerializer,
        description=(
            "Change a rate. Once an invoice was taxed at it, it is archived "
            '("active": false), never changed or deleted. A rate customers hold as their '
            'own is archived with "replaced_by", the rate they hold instead from then '
            "(moved in the same request); without it, 409 saying how many hold it."
        ),
    )
    def patch(self, request, code: str):
        serializer = TaxRateUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rate = services.tax_rate_update(
            rate=get_object_or_404(TaxRate, code=code),
            **_tax_rate_values(serializer.validated_data),
        )
        return Response(TaxRateSerializer(rate).data)


class CouponListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=CouponSerializer(many=True))
    def get(self, request):
        return paginated(self, request, Coupon.objects.all(), CouponSerializer)

    @extend_schema(request=CouponSerializer, responses={201: CouponSerializer})
    def post(self, request):
        serializer = CouponSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = coupons.coupon_create(**serializer.validated_data)
        return Response(CouponSerializer(coupon).data, status=status.HTTP_201_CREATED)


class CouponDetailApi(APIView):
    @extend_schema(responses=CouponSerializer)
    def get(self, request, code: str):
        return Response(CouponSerializer(get_object_or_404(Coupon, code=code)).data)

    @extend_schema(request=CouponUpdateSerializer, responses=CouponSerializer)
    def patch(self, request, code: str):
        """Rename or archive (active false) a coupon; its terms never change."""
        serializer = CouponUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        coupon = coupons.coupon_update(
            coupon=get_object_or_404(Coupon, code=code), **serializer.validated_data
        )
        return Response(CouponSerializer(coupon).data)

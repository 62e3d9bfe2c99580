"""Catalog endpoints: meters, plans and versions, credit packs, and the feature
catalog (entitlements): /features."""

from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from billing.subscriptions.deals import features_named_by_deals
from common.errors import InvalidRequest
from common.money import is_known_currency
from common.periods import parse_instant
from common.rest_api import CursorPagination, request_data
from customers.models import ApiKey
from plans import cost_rules, coupons, exchange_rate_rules, features, selectors, services
from plans.models import (
    CostRate,
    Coupon,
    CreditPack,
    ExchangeRate,
    Feature,
    Meter,
    Plan,
    PlanVersion,
    TaxRate,
)
from plans.serializers import (
    CostRateCorrectionSerializer,
    CostRateSerializer,
    CouponSerializer,
    CouponUpdateSerializer,
    CreditPackSerializer,
    ExchangeRateSerializer,
    FeatureSerializer,
    FeatureUpdateSerializer,
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


def _declare_schema(view: type[APIView], **operations) -> None:
    """The schema of the operations a catalog view inherits; one it writes itself
    carries its own."""
    inherited = {name: op for name, op in operations.items() if name not in view.__dict__}
    extend_schema_view(**inherited)(view)


# A catalog's list: a page of its entries (GET), and one made by `create` from the
# serializer's fields (POST, answered 201 with the entry). A comment, not a docstring:
# the schema would print a docstring as every subclass's description.
class CatalogListApi(APIView):
    pagination_class = CursorPagination
    model: type[Model]
    serializer_class: type[Serializer]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        serializer = cls.serializer_class
        _declare_schema(
            cls,
            get=extend_schema(responses=serializer(many=True)),
            post=extend_schema(request=serializer, responses={201: serializer}),
        )

    def rows(self) -> QuerySet:
        return self.model.objects.all()

    def create(self, **fields) -> Model:
        raise NotImplementedError

    def get(self, request):
        return paginated(self, request, self.rows(), self.serializer_class)

    def post(self, request):
        entry = self.create(**request_data(self.serializer_class, request))
        return Response(self.serializer_class(entry).data, status=status.HTTP_201_CREATED)


# One entry of a catalog, by its code (GET).
class CatalogDetailApi(APIView):
    model: type[Model]
    serializer_class: type[Serializer]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _declare_schema(cls, get=extend_schema(responses=cls.serializer_class))

    def rows(self) -> QuerySet:
        return self.model.objects.all()

    def get(self, request, code: str):
        return Response(self.serializer_class(get_object_or_404(self.rows(), code=code)).data)


class MeterListApi(CatalogListApi):
    model, serializer_class = Meter, MeterSerializer
    create = staticmethod(services.meter_create)


class MeterDetailApi(CatalogDetailApi):
    model, serializer_class = Meter, MeterSerializer


class PlanListApi(CatalogListApi):
    serializer_class = PlanSerializer

    def rows(self) -> QuerySet:
        return selectors.plan_list()

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


class PlanDetailApi(CatalogDetailApi):
    serializer_class = PlanSerializer

    def rows(self) -> QuerySet:
        return selectors.plan_list()


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


class CreditPackListApi(CatalogListApi):
    model, serializer_class = CreditPack, CreditPackSerializer
    create = staticmethod(services.credit_pack_create)


class CreditPackDetailApi(CatalogDetailApi):
    model, serializer_class = CreditPack, CreditPackSerializer


def _tax_rate_values(data: dict) -> dict:
    values = dict(data)
    if "default" in values:
        values["is_default"] = values.pop("default")
    if "country" in values:
        values["country"] = values["country"] or ""
    return values


class TaxRateListApi(CatalogListApi):
    model, serializer_class = TaxRate, TaxRateSerializer

    def create(self, **fields) -> TaxRate:
        return services.tax_rate_create(**_tax_rate_values(fields))


class TaxRateDetailApi(CatalogDetailApi):
    model, serializer_class = TaxRate, TaxRateSerializer

    @extend_schema(
        request=TaxRateUpdateSerializer,
        responses=TaxRateSerializer,
        description=(
            "Change a rate. Once an invoice was taxed at it, it is archived "
            '("active": false), never changed or deleted. A rate customers hold as their '
            'own is archived with "replaced_by", the rate they hold instead from then '
            "(moved in the same request), or without it: they hold it no more, and the "
            "default rates apply to one left without a rate of its own."
        ),
    )
    def patch(self, request, code: str):
        data = request_data(TaxRateUpdateSerializer, request)
        rate = services.tax_rate_update(
            rate=get_object_or_404(TaxRate, code=code),
            **_tax_rate_values(data),
        )
        return Response(TaxRateSerializer(rate).data)


class CouponListApi(CatalogListApi):
    model, serializer_class = Coupon, CouponSerializer
    create = staticmethod(coupons.coupon_create)


class CouponDetailApi(CatalogDetailApi):
    model, serializer_class = Coupon, CouponSerializer

    @extend_schema(request=CouponUpdateSerializer, responses=CouponSerializer)
    def patch(self, request, code: str):
        """Rename or archive (active false) a coupon; its terms never change."""
        data = request_data(CouponUpdateSerializer, request)
        coupon = coupons.coupon_update(coupon=get_object_or_404(Coupon, code=code), **data)
        return Response(CouponSerializer(coupon).data)


class CostRateListApi(CatalogListApi):
    """What usage costs the seller, by meter and property values, from an hour on."""

    model, serializer_class = CostRate, CostRateSerializer
    create = staticmethod(cost_rules.cost_rate_create)
    # What usage costs is finance's to read; writing a rate is `admin`'s, as any write.
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    def rows(self):
        return cost_rules.cost_rates(meter=self.request.query_params.get("meter") or None)


class CostRateSupersedeApi(APIView):
    @extend_schema(
        request=CostRateCorrectionSerializer,
        responses={201: CostRateSerializer},
        description=(
            "Correct a wrong cost rate over every hour it covered: a new rate with these "
            "figures for the same meter, when, currency and effective_from, which costs "
            "those hours instead (margins read it). The wrong rate is kept in the history "
            "with superseded_by. 409 for a rate superseded already: supersede its correction."
        ),
    )
    def post(self, request, rate_id: int):
        data = request_data(CostRateCorrectionSerializer, request)
        correction = cost_rules.cost_rate_supersede(rate_id=rate_id, **data)
        return Response(CostRateSerializer(correction).data, status=status.HTTP_201_CREATED)


def _who(request) -> str:
    """Who made a request, as a rate's created_by says it: the API key's name
    and prefix."""
    key = request.auth
    return f"API key {key.name} ({key.prefix})" if isinstance(key, ApiKey) else ""


def _rate_filters(request) -> dict:
    """?base=&quote=&at= read, each refused with a 400 naming it."""
    filters = {}
    for name in ("base", "quote"):
        code = request.query_params.get(name)
        if code and not is_known_currency(code):
            raise InvalidRequest(f"unknown currency {code!r}", fields={name: ["e.g. USD"]})
        filters[name] = code or None
    at = request.query_params.get("at")
    if at:
        try:
            filters["at"] = parse_instant(at)
        except ValueError as exc:
            raise InvalidRequest(
                f"at {exc}", fields={"at": ["ISO 8601 with an offset, e.g. 2026-11-01T00:00:00Z"]}
            ) from exc
    return filters


class ExchangeRateListApi(CatalogListApi):
    """What one unit of a currency is worth in another, per pair from a moment
    until the pair's next rate; costs in another currency are converted with them."""

    model, serializer_class = ExchangeRate, ExchangeRateSerializer
    # Rates are finance's to read, as cost rates; writing one is `admin`'s.
    required_scopes = {"GET": ApiKey.SCOPE_FINANCE_READ}

    def rows(self):
        return exchange_rate_rules.exchange_rates(**_rate_filters(self.request))

    def create(self, **fields):
        return exchange_rate_rules.exchange_rate_create(**fields, created_by=_who(self.request))

    @extend_schema(
        parameters=[
            OpenApiParameter("base", str, description="Only this base currency, e.g. USD."),
            OpenApiParameter("quote", str, description="Only this quote currency, e.g. EUR."),
            OpenApiParameter(
                "at",
                str,
                description="ISO 8601 with an offset: each pair's rate in effect at that moment.",
            ),
        ],
        responses=ExchangeRateSerializer(many=True),
    )
    def get(self, request):
        return super().get(request)


class FeatureListApi(CatalogListApi):
    model, serializer_class = Feature, FeatureSerializer
    create = staticmethod(features.feature_create)


class FeatureDetailApi(CatalogDetailApi):
    model, serializer_class = Feature, FeatureSerializer

    @extend_schema(request=FeatureUpdateSerializer, responses=FeatureSerializer)
    def patch(self, request, code: str):
        """Rename or describe a feature; its kind changes only while no version grants it."""
        data = request_data(FeatureUpdateSerializer, request)
        feature = get_object_or_404(Feature, code=code)
        feature = features.feature_update(
            feature=feature,
            named_by_deals=bool(features_named_by_deals([feature.code])),
            **data,
        )
        return Response(FeatureSerializer(feature).data)

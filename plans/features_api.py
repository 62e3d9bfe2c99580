"""The feature catalog's endpoints (entitlements): /features."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.subscriptions.deals import features_named_by_deals
from config.api import CursorPagination
from plans import features
from plans.api import paginated
from plans.feature_serializers import FeatureSerializer, FeatureUpdateSerializer
from plans.models import Feature


class FeatureListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=FeatureSerializer(many=True))
    def get(self, request):
        return paginated(self, request, Feature.objects.all(), FeatureSerializer)

    @extend_schema(request=FeatureSerializer, responses={201: FeatureSerializer})
    def post(self, request):
        serializer = FeatureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feature = features.feature_create(**serializer.validated_data)
        return Response(FeatureSerializer(feature).data, status=status.HTTP_201_CREATED)


class FeatureDetailApi(APIView):
    @extend_schema(responses=FeatureSerializer)
    def get(self, request, code: str):
        return Response(FeatureSerializer(get_object_or_404(Feature, code=code)).data)

    @extend_schema(request=FeatureUpdateSerializer, responses=FeatureSerializer)
    def patch(self, request, code: str):
        """Rename or describe a feature; its kind changes only while no version grants it."""
        serializer = FeatureUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        feature = get_object_or_404(Feature, code=code)
        feature = features.feature_update(
            feature=feature,
            named_by_deals=bool(features_named_by_deals([feature.code])),
            **serializer.validated_data,
        )
        return Response(FeatureSerializer(feature).data)

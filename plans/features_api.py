"""The feature catalog's endpoints (entitlements): /features."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from billing.subscriptions.deals import features_named_by_deals
from config.api import request_data
from plans import features
from plans.api import CatalogDetailApi, CatalogListApi
from plans.feature_serializers import FeatureSerializer, FeatureUpdateSerializer
from plans.models import Feature


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

"""Customer endpoints."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from customers import services
from customers.models import Customer
from customers.serializers import CustomerSerializer, CustomerUpdateSerializer
from plans.api import paginated


class CustomerListApi(APIView):
    @extend_schema(responses=CustomerSerializer(many=True))
    def get(self, request):
        return paginated(self, request, Customer.objects.all(), CustomerSerializer)

    @extend_schema(request=CustomerSerializer, responses={201: CustomerSerializer})
    def post(self, request):
        serializer = CustomerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["timezone_name"] = data.pop("timezone")
        customer = services.customer_create(**data)
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    @extend_schema(responses=CustomerSerializer)
    def get(self, request, external_id: str):
        return Response(
            CustomerSerializer(get_object_or_404(Customer, external_id=external_id)).data
        )

    @extend_schema(request=CustomerUpdateSerializer, responses=CustomerSerializer)
    def patch(self, request, external_id: str):
        customer = get_object_or_404(Customer, external_id=external_id)
        serializer = CustomerUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = services.customer_update(customer=customer, **serializer.validated_data)
        return Response(CustomerSerializer(customer).data)

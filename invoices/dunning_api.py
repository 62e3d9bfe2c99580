"""Dunning endpoints (API.md, "Dunning and account standing"): policies, and a
customer's pause."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from common.periods import iso
from common.rest_api import AwareDateTimeField, CursorPagination, StrictCharField, request_data
from customers.selectors import customer_get
from invoices.dunning_models import MAX_STEPS, DunningPolicy, DunningStep
from invoices.dunning_policies import (
    StepInput,
    dunning_pause,
    policy_by_code,
    policy_delete,
    policy_save,
)
from plans.api import paginated


class DunningStepSerializer(serializers.Serializer):
    days_after_due = serializers.IntegerField(
        help_text="Days from the due date in the customer's time zone; negative: before it."
    )
    action = serializers.ChoiceField(choices=[code for code, _ in DunningStep.ACTIONS])


class DunningPolicySerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=64)
    name = StrictCharField(max_length=255)
    default = serializers.BooleanField(required=False, default=False)
    steps = DunningStepSerializer(many=True, max_length=MAX_STEPS)

    def to_representation(self, policy: DunningPolicy) -> dict:
        return {
            "code": policy.code,
            "name": policy.name,
            "default": policy.is_default,
            "steps": [
                {"days_after_due": step.days_after_due, "action": step.action}
                for step in policy.steps.all()
            ],
        }


class DunningPolicyUpdateSerializer(DunningPolicySerializer):
    code = None


def _steps(data: dict) -> list[StepInput]:
    return [StepInput(s["days_after_due"], s["action"]) for s in data["steps"]]


class DunningPolicyListApi(APIView):
    pagination_class = CursorPagination

    @extend_schema(responses=DunningPolicySerializer(many=True))
    def get(self, request):
        return paginated(
            self, request, DunningPolicy.objects.prefetch_related("steps"), DunningPolicySerializer
        )

    @extend_schema(request=DunningPolicySerializer, responses={201: DunningPolicySerializer})
    def post(self, request):
        data = request_data(DunningPolicySerializer, request)
        policy = policy_save(
            code=data["code"], name=data["name"], is_default=data["default"], steps=_steps(data)
        )
        return Response(DunningPolicySerializer(policy).data, status=status.HTTP_201_CREATED)


class DunningPolicyDetailApi(APIView):
    @extend_schema(responses=DunningPolicySerializer)
    def get(self, request, code: str):
        return Response(DunningPolicySerializer(policy_by_code(code)).data)

    @extend_schema(request=DunningPolicyUpdateSerializer, responses=DunningPolicySerializer)
    def put(self, request, code: str):
        """Replace the policy's name, default mark and steps."""
        policy = policy_by_code(code)
        data = request_data(DunningPolicyUpdateSerializer, request)
        policy = policy_save(
            code=policy.code,
            name=data["name"],
            is_default=data["default"],
            steps=_steps(data),
            policy=policy,
        )
        return Response(DunningPolicySerializer(policy).data)

    @extend_schema(responses={204: None})
    def delete(self, request, code: str):
        policy_delete(policy=policy_by_code(code))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DunningPauseSerializer(serializers.Serializer):
    until = AwareDateTimeField(allow_null=True, help_text="null: resume the steps now.")


class DunningPauseApi(APIView):
    """Hold the customer's dunning steps until a date; held steps run then."""

    @extend_schema(request=DunningPauseSerializer, responses=DunningPauseSerializer)
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = request_data(DunningPauseSerializer, request)
        key = getattr(request, "auth", None)
        by = f"API key {key.name}" if key is not None else "API"
        customer = dunning_pause(customer=customer, until=data["until"], by=by, now=timezone.now())
        return Response(
            {
                "until": iso(customer.dunning_paused_until)
                if customer.dunning_paused_until
                else None,
                "by": customer.dunning_paused_by or None,
            }
        )

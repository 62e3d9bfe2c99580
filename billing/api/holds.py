"""Holds (API.md "Holds"): reserve before the work, settle after it, release on
failure (billing.usage.holds)."""

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.usage import check_body
from billing.hold_models import Hold
from billing.usage import holds
from common.errors import InvalidRequest, NotFound
from common.rest_api import AwareDateTimeField, DecimalString, StrictCharField, validated
from customers.models import ApiKey
from customers.selectors import customer_get
from wallets.serializers import MAX_CHECK_PROPERTIES

MAX_LISTED = 500


def _properties(value: dict) -> dict:
    if len(value) > MAX_CHECK_PROPERTIES:
        raise serializers.ValidationError(f"at most {MAX_CHECK_PROPERTIES} properties")
    return value


class HoldOpenSerializer(serializers.Serializer):
    meter = StrictCharField(max_length=64)
    quantity = DecimalString()
    properties = serializers.DictField(
        child=StrictCharField(max_length=512),
        required=False,
        default=dict,
        validators=[_properties],
        help_text="The usage's properties (a rate card's row prices it), as the event will "
        "carry them.",
    )
    expires_in_seconds = serializers.IntegerField(
        required=False,
        default=holds.DEFAULT_EXPIRY_SECONDS,
        min_value=1,
        max_value=holds.MAX_EXPIRY_SECONDS,
    )
    key = StrictCharField(
        max_length=255, help_text="Idempotency: the same key gives the same hold."
    )


class HoldSettleSerializer(serializers.Serializer):
    quantity = DecimalString(help_text="What was really used; 0 bills nothing.")
    timestamp = AwareDateTimeField(required=False, help_text="Now when left out.")
    properties = serializers.DictField(
        child=StrictCharField(max_length=512),
        required=False,
        default=dict,
        validators=[_properties],
        help_text="Added to the hold's (e.g. the tokens' model as really used).",
    )


class HoldReleaseSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=[Hold.FAILED, Hold.CANCELLED])


_HOLD = inline_serializer(
    "Hold",
    {
        "id": serializers.CharField(),
        "customer": serializers.CharField(),
        "status": serializers.ChoiceField(choices=[s for s, _ in Hold.STATUSES]),
        "allowed": serializers.BooleanField(),
        "meter": serializers.CharField(),
        "quantity": serializers.CharField(),
        "properties": serializers.JSONField(),
        "amount": serializers.CharField(
            allow_null=True,
            help_text="What the quantity costs where the charge draws money; null otherwise.",
        ),
        "currency": serializers.CharField(),
        "key": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "expires_at": serializers.DateTimeField(),
        "closed_at": serializers.DateTimeField(allow_null=True),
        "reason": serializers.CharField(allow_null=True),
        "settled_quantity": serializers.CharField(allow_null=True),
    },
)


def _known(hold_id: str) -> None:
    """An unknown hold is a 404, whatever the body holds."""
    if not Hold.objects.filter(public_id=hold_id).exists():
        raise NotFound(f"there is no hold {hold_id!r}")


class CustomerHoldsApi(APIView):
    """A customer's holds: open one before an expensive action (201, or 200 with
    the check's refusal and no hold written), list them. Scope `events:write` to
    open, `read` or `events:write` to list."""

    required_scopes = {
        "POST": ApiKey.SCOPE_EVENTS_WRITE,
        "GET": (ApiKey.SCOPE_READ, ApiKey.SCOPE_EVENTS_WRITE),
    }

    @extend_schema(
        request=HoldOpenSerializer,
        responses={201: _HOLD, 200: _HOLD},
        description="201: the hold, open. 200: the same key's earlier hold, or the "
        'check\'s refusal (`{"allowed": false, "reason", "message", "remaining", ...}`, '
        "as `check` answers), nothing written. 409: the key was used for a hold of "
        "another meter, quantity or properties.",
    )
    def post(self, request, external_id: str):
        customer_get(external_id=external_id)  # an unknown customer: 404, whatever the body
        asked = validated(HoldOpenSerializer, request.data)
        opened = holds.hold_open(
            external_id=external_id,
            meter=asked["meter"],
            quantity=asked["quantity"],
            properties=asked["properties"],
            key=asked["key"],
            expires_in_seconds=asked["expires_in_seconds"],
            now=datetime.now(UTC),
        )
        if opened.hold is None:
            return Response(check_body(opened.refusal, meter_code=asked["meter"]))
        return Response(holds.hold_body(opened.hold), status=201 if opened.created else 200)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", enum=[s for s, _ in Hold.STATUSES], description="Only these."
            )
        ],
        responses=inline_serializer("HoldList", {"results": serializers.ListField(child=_HOLD)}),
    )
    def get(self, request, external_id: str):
        """The latest 500 holds, newest first."""
        customer = customer_get(external_id=external_id)
        rows = Hold.objects.filter(customer=customer).select_related("customer")
        status = request.query_params.get("status")
        if status is not None:
            if status not in dict(Hold.STATUSES):
                raise InvalidRequest(
                    "status must be open, settled, released or expired",
                    fields={"status": ["open, settled, released or expired"]},
                )
            rows = rows.filter(status=status)
        return Response({"results": [holds.hold_body(h) for h in rows[:MAX_LISTED]]})


class HoldSettleApi(APIView):
    """Bill what was really used (the event `hold:<id>`), free the rest. 409 when
    the hold is no longer open. Scope `events:write`."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}

    @extend_schema(request=HoldSettleSerializer, responses=_HOLD)
    def post(self, request, hold_id: str):
        _known(hold_id)
        asked = validated(HoldSettleSerializer, request.data)
        hold = holds.hold_settle(
            public_id=hold_id,
            quantity=asked["quantity"],
            timestamp=asked.get("timestamp"),
            properties=asked["properties"],
            now=datetime.now(UTC),
        )
        return Response(holds.hold_body(hold))


class HoldReleaseApi(APIView):
    """Bill nothing (`reason`: failed or cancelled). 409 when the hold is no longer
    open. Scope `events:write`."""

    required_scopes = {"POST": ApiKey.SCOPE_EVENTS_WRITE}

    @extend_schema(request=HoldReleaseSerializer, responses=_HOLD)
    def post(self, request, hold_id: str):
        _known(hold_id)
        asked = validated(HoldReleaseSerializer, request.data)
        hold = holds.hold_release(public_id=hold_id, reason=asked["reason"], now=datetime.now(UTC))
        return Response(holds.hold_body(hold))

"""The limits a customer sets itself (API.md "Customer limits"), for products
that build their own settings page: GET reads them with what was spent against
each this period and their history; PUT replaces them (customers.limits)."""

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.usage.customer_limits import BUDGET, limits_save, limits_spent
from billing.usage.reads import period_now, subscription_live
from common.errors import InvalidRequest
from common.money import format_decimal, format_money
from common.periods import iso
from customers.limits import limits_history, limits_stored
from customers.models import CustomerLimitChange
from customers.selectors import customer_get

# Who made a change through the API, when the product names its own user.
CHANGED_BY = "changed_by"
MAX_CHANGED_BY = 200


def _amount(limit, value, currency: str) -> str:
    return format_money(value, currency) if limit.money else format_decimal(value)


def limits_body(customer, *, now: datetime) -> dict:
    """The customer's limits as the API shows them: the stored document, each limit
    with `spent` and `remaining` this period, the merchant's spend limit the budget
    must stay under, the period counted, and the latest changes."""
    document = limits_stored(customer)
    subscription = subscription_live(customer_id=customer.pk)
    spent = limits_spent(customer=customer, subscription=subscription, now=now)
    currency = customer.currency
    budget = None
    caps = [dict(cap) for cap in document.get("caps") or ()]
    cap_rows = iter(caps)
    for limit in spent:
        if limit.kind == BUDGET:
            budget = dict(document["budget"])
            row = budget
        else:
            row = next(cap_rows)
        row["spent"] = _amount(limit, limit.spent, currency)
        row["remaining"] = _amount(limit, limit.remaining, currency)
    period = period_now(subscription=subscription, now=now) if subscription else None
    return {
        "customer": customer.external_id,
        "currency": currency,
        "budget": budget,
        "caps": caps,
        "alert_thresholds": list(document.get("alert_thresholds") or ()),
        "channels": list(document.get("channels") or ()),
        "spend_limit": (
            format_money(customer.spend_limit, currency)
            if customer.spend_limit is not None
            else None
        ),
        "period_start": iso(period[0]) if period else None,
        "period_end": iso(period[1]) if period else None,
        "history": [
            {
                "at": iso(change.changed_at),
                "by": change.by,
                "via": change.via,
                "before": change.before,
                "after": change.after,
            }
            for change in limits_history(customer)
        ],
    }


_LIMITS = inline_serializer(
    "CustomerLimits",
    {
        "customer": serializers.CharField(),
        "currency": serializers.CharField(),
        "budget": serializers.JSONField(
            allow_null=True,
            help_text='{"amount", "action": "stop"|"alert", "spent", "remaining"}; null: none.',
        ),
        "caps": serializers.JSONField(
            help_text='[{"meter", "when", "amount" or "quantity", "spent", "remaining"}]'
        ),
        "alert_thresholds": serializers.ListField(child=serializers.CharField()),
        "channels": serializers.JSONField(
            help_text='[{"kind": "email", "to"} or {"kind": "slack"|"teams"|"discord", "url"}]'
        ),
        "spend_limit": serializers.CharField(
            allow_null=True, help_text="The merchant's: a budget may not be above it."
        ),
        "period_start": serializers.DateTimeField(allow_null=True),
        "period_end": serializers.DateTimeField(allow_null=True),
        "history": serializers.JSONField(help_text='[{"at", "by", "via", "before", "after"}]'),
    },
)


class CustomerLimitsApi(APIView):
    """The limits the customer sets itself: a budget per period (`stop` refuses
    usage that would pass it, `alert` only warns), caps per meter or rate-card
    value, alert thresholds in percent of the budget, and where alerts go. Scope
    `read` to read, `admin` to set."""

    @extend_schema(responses=_LIMITS)
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(limits_body(customer, now=datetime.now(UTC)))

    @extend_schema(
        request=inline_serializer(
            "CustomerLimitsSet",
            {
                "budget": serializers.JSONField(required=False, allow_null=True),
                "caps": serializers.JSONField(required=False),
                "alert_thresholds": serializers.ListField(
                    child=serializers.CharField(), required=False
                ),
                "channels": serializers.JSONField(required=False),
                CHANGED_BY: serializers.CharField(
                    required=False,
                    help_text="Who the change is recorded as made by (your product's user); "
                    "the API key's name is recorded with it.",
                ),
            },
        ),
        responses=_LIMITS,
    )
    def put(self, request, external_id: str):
        """Replaces the limits (a key left out is cleared). 400 naming each field that
        is wrong (a budget above the merchant's spend limit names it); nothing is
        changed then. The change is recorded in `history`."""
        customer = customer_get(external_id=external_id)
        document = request.data
        if not isinstance(document, dict):
            raise InvalidRequest(
                "the limits must be a JSON object", fields={"limits": ["must be an object"]}
            )
        document = dict(document)
        changed_by = document.pop(CHANGED_BY, "")
        if not isinstance(changed_by, str) or len(changed_by) > MAX_CHANGED_BY:
            raise InvalidRequest(
                f"{CHANGED_BY}: at most {MAX_CHANGED_BY} characters",
                fields={CHANGED_BY: [f"must be a text of at most {MAX_CHANGED_BY} characters"]},
            )
        key = f"API key {request.user.key.name}"
        now = datetime.now(UTC)
        limits_save(
            customer=customer,
            document=document,
            by=f"{changed_by.strip()} ({key})" if changed_by.strip() else key,
            via=CustomerLimitChange.VIA_API,
            now=now,
        )
        customer.refresh_from_db()
        return Response(limits_body(customer, now=now))

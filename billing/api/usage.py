"""A customer's usage of the current period, and the check before an action."""

from datetime import UTC, datetime
from decimal import Decimal

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.fast_answer import FastAnswerApi
from billing.invoicing.discounts import usage_discounted
from billing.models import Subscription
from billing.notifications import alerts
from billing.serializers import (
    UsageSerializer,
)
from billing.usage import check, reads
from billing.usage.held import held_of
from billing.usage.metering import meter_cache
from billing.usage.summary import period_usage, usage_body, usage_broken_down
from common import rawsql
from common.customer_text import customer_zone
from common.errors import CustomerNotFound, InvalidRequest
from common.money import format_decimal, format_money
from common.periods import iso, month_start, parse_instant, period_containing
from common.rest_api import json_body, validated
from customers.models import ApiKey
from wallets.serializers import CheckSerializer

ZERO = Decimal(0)


def parse_time_param(request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name} must be ISO 8601 with an offset", fields={name: ["e.g. 2026-11-01T00:00:00Z"]}
        ) from exc


# What GET /usage takes; any other query parameter is a 400 (not silently ignored).
USAGE_PARAMS = frozenset({"period_start", "period_end", "group_by"})


def group_by_param(request) -> str | None:
    """`group_by=model`: a property some meter groups by (a 400 otherwise); None
    when not asked."""
    given = request.query_params.getlist("group_by")
    if not given:
        return None
    if len(given) > 1:
        raise InvalidRequest(
            "give group_by once: one property, one breakdown at a time",
            fields={"group_by": ["e.g. group_by=model"]},
        )
    value = given[0]
    name = value.strip()
    if not name or "," in name:
        raise InvalidRequest(
            "group_by takes one property name (one breakdown at a time)",
            fields={"group_by": ["e.g. model"]},
        )
    if not any(name in m.group_by for m in meter_cache.by_id().values()):
        raise InvalidRequest(
            f"no meter groups its usage by {name}; a meter's group_by lists the "
            "properties it can be broken down by",
            fields={"group_by": [f"no meter groups by {name}"]},
        )
    return name


class UsageApi(APIView):
    """The customer's usage per charge for a period: the subscription's current
    period by default, or the period containing `period_start`."""

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", str, description="ISO 8601; default: current period"),
            OpenApiParameter("period_end", str, description="ISO 8601; default: that period's end"),
            OpenApiParameter(
                "group_by",
                str,
                description="An event property to split each line of a meter that groups by it: "
                "its `groups`, whose quantities sum to the line's for count and sum meters. A "
                "property no meter groups by is a 400.",
            ),
        ],
        responses=UsageSerializer,
    )
    def get(self, request, external_id: str):
        unknown = sorted(set(request.query_params) - USAGE_PARAMS)
        if unknown:
            raise InvalidRequest(
                f"unknown query parameter {unknown[0]!r}; /usage takes "
                f"{', '.join(sorted(USAGE_PARAMS))}",
                fields={
                    name: [f"not one of {', '.join(sorted(USAGE_PARAMS))}"] for name in unknown
                },
            )
        by = group_by_param(request)
        # The same statements every time for the same question: read ahead, in the
        # round trip of the customer's (rawsql.read_ahead).
        with rawsql.read_ahead(("usage", external_id, request.META.get("QUERY_STRING", ""))):
            body = self._usage(request, external_id, by)
        return Response(body)

    @staticmethod
    def _usage(request, external_id: str, by) -> dict:
        customer, subscription = check.customer_with_live_subscription(external_id=external_id)
        if customer is None:
            raise CustomerNotFound(external_id)
        start = parse_time_param(request, "period_start")
        end = parse_time_param(request, "period_end")
        zone = customer_zone(customer)
        if subscription is not None and end is None:
            if start is None:
                # The period the clock is in, as /check and the alerts count it: the
                # current one, or after its end and before its close, the next.
                start, end = reads.period_now(subscription=subscription, now=datetime.now(UTC)) or (
                    subscription.current_period_start,
                    subscription.current_period_end,
                )
            elif start >= subscription.started_at:
                start, end = period_containing(
                    subscription.started_at,
                    zone,
                    interval=subscription.version.interval,
                    calendar_aligned=subscription.billing_anchor == Subscription.CALENDAR,
                    moment=start,
                )
        if start is None:
            start = month_start(datetime.now(UTC).astimezone(zone))
        if end is None:
            end = month_start(start.astimezone(zone), months=1)
        if end <= start:
            raise InvalidRequest(
                "period_end must be after period_start",
                fields={"period_end": ["must be after period_start"]},
            )
        usage = period_usage(
            customer=customer,
            subscription=subscription,
            start=start,
            end=end,
            now=datetime.now(UTC),
        )
        if by is not None:
            usage = usage_broken_down(usage, by)
        return usage_body(usage_discounted(usage))


class CheckApi(FastAnswerApi):
    """May this customer use `quantity` units of this meter now? Answered from the
    current period's counters and the wallets, for every consumption model and
    the customer's spend limit. Scope `read` or `events:write` (the product asks
    before the calls it then reports)."""

    required_scopes = {"POST": (ApiKey.SCOPE_READ, ApiKey.SCOPE_EVENTS_WRITE)}
    body_serializer = CheckSerializer
    schema_may_conflict = False  # a question, not a write
    # A plain 200 is answered ahead of DRF's request (billing.api.fast_answer).
    fast_method = "POST"
    takes_body = True

    def fast_answer(self, request, external_id: str) -> dict:
        return check_answer(external_id, validated(self.body_serializer, json_body(request.body)))

    @extend_schema(
        request=CheckSerializer,
        responses=inline_serializer(
            "CheckResult",
            {
                "allowed": serializers.BooleanField(),
                "model": serializers.CharField(allow_null=True),
                "reason": serializers.CharField(),
                "used": serializers.CharField(allow_null=True),
                "included": serializers.CharField(allow_null=True),
                "remaining": serializers.CharField(allow_null=True),
                "spend_remaining": serializers.CharField(
                    required=False,
                    help_text="In a spend_limit_reached refusal only: the money left under "
                    "the spend limit this period, in the customer's currency.",
                ),
                "balance": serializers.CharField(allow_null=True),
                "message": serializers.CharField(help_text="The reason, in words."),
                "limit": serializers.JSONField(
                    required=False,
                    help_text="In a customer_budget_reached or customer_cap_reached refusal "
                    'only: {"kind": "budget"|"cap", "amount" or "quantity", "spent", and a '
                    'cap\'s "meter" and "when"}; `remaining` is then what is left under it '
                    "(money, or units of a quantity cap).",
                ),
                "period_start": serializers.DateTimeField(allow_null=True),
                "period_end": serializers.DateTimeField(allow_null=True),
                "value": serializers.JSONField(
                    required=False,
                    help_text="A feature check only: the value granted (true, a number, a "
                    "text, a list of texts); null when not granted.",
                ),
            },
        ),
    )
    def post(self, request, external_id: str):
        """Reasons: ok, cap_reached, insufficient_credits, insufficient_balance,
        spend_limit_reached, customer_budget_reached, customer_cap_reached,
        no_subscription, meter_not_in_plan, and for a feature
        (`{"feature": "sso"}`) feature_not_in_plan."""
        try:
            asked = validated(self.body_serializer, request.data)
        except exceptions.APIException:
            # An unknown customer is a 404, whatever the body holds.
            if check.live_read(external_id=external_id).customer is None:
                raise CustomerNotFound(external_id) from None
            raise
        return Response(check_answer(external_id, asked))


def check_answer(external_id: str, asked: dict) -> dict:
    """The answer of a check: `asked` is the body CheckSerializer validated. Raises
    CustomerNotFound for an unknown customer and InvalidRequest for a quantity that is not
    positive. Shared by CheckApi's handler and its fast answer."""
    now = datetime.now(UTC)
    if "feature" in asked:
        # One query for the customer, its subscription and whether the feature exists.
        live = check.live_read(external_id=external_id, feature=asked["feature"])
        if live.customer is None:
            raise CustomerNotFound(external_id)
        return _feature_answer(live, feature=asked["feature"], now=now)
    # A meter's check sends the same statements every time: its usage read goes
    # in the round trip of the customer's (rawsql.read_ahead).
    with rawsql.read_ahead(("check", external_id, asked["meter"])):
        # One query for the customer, its subscription and the wallets' balances.
        live = check.live_read(external_id=external_id, now=now)
        customer, subscription = live.customer, live.subscription
        if customer is None:
            raise CustomerNotFound(external_id)
        quantity = asked["quantity"]
        if quantity is None:
            quantity = Decimal(1)
        if quantity <= 0:
            raise InvalidRequest("quantity must be positive", fields={"quantity": ["must be > 0"]})
        result = check.usage_check(
            customer=customer,
            subscription=subscription,
            meter_code=asked["meter"],
            quantity=quantity,
            now=now,
            balances=live.balances,
            properties=asked.get("properties") or {},
            # Open holds count as used (billing.usage.holds).
            held=held_of(live, now=now),
        )
    if result.spend is not None and result.allowed:
        # A soft limit allows, and tells finance once a period.
        alerts.spend_limit_alert_raise(
            customer=customer,
            spend=result.spend,
            period_start=result.period_start,
            period_end=result.period_end,
            now=now,
        )
    return check_body(result, meter_code=asked["meter"])


def check_body(result: check.CheckResult, *, meter_code: str) -> dict:
    """A meter check's answer as the API says it (a hold's refusal too)."""

    def text(value):
        return None if value is None else format_decimal(value)

    remaining = text(result.remaining)
    limit = result.customer_limit
    if limit is not None and limit.money:
        # What is left under a budget or an amount cap the customer set: money.
        remaining = format_money(result.remaining, result.currency)
    balance = None
    if result.balance is not None:
        balance = (
            format_money(result.balance, result.currency)
            if result.currency
            else format_decimal(result.balance)
        )
    return {
        "allowed": result.allowed,
        "model": result.model,
        "reason": result.reason,
        "message": check.check_message(result, meter_code=meter_code),
        "used": text(result.used),
        "included": text(result.included),
        "remaining": remaining,
        "balance": balance,
        # The period the answer counts usage in (the one the clock is in).
        "period_start": iso(result.period_start) if result.period_start else None,
        "period_end": iso(result.period_end) if result.period_end else None,
        # A spend-limit refusal says what is left under the limit, in money.
        **(
            {"spend_remaining": format_money(result.spend_remaining, result.currency)}
            if result.spend_remaining is not None
            else {}
        ),
        # A refusal by a limit the customer set: which, and what was spent against it.
        **({"limit": check.customer_limit_body(limit, result.currency)} if limit else {}),
    }


def _feature_answer(live, *, feature: str, now: datetime) -> dict:
    result = check.feature_check(subscription=live.subscription, feature_code=feature, now=now)
    return {
        # The meter check's shape, its meter fields null.
        **dict.fromkeys(
            ("model", "used", "included", "remaining", "balance", "period_start", "period_end")
        ),
        "allowed": result.allowed,
        "reason": result.reason,
        "message": check.feature_message(result, feature_code=feature, exists=live.feature_exists),
        "value": result.value,
    }

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.coupon_rule import running_discount
from billing.models import Discount, Subscription
from billing.usage.ingestion import MAX_EVENTS_PER_BATCH, MAX_ID_LENGTH, MAX_NAME_LENGTH
from common.money import format_money, format_percentage
from common.rest_api import AwareDateTimeField, DecimalString, ErrorDetailSerializer, NoUnknownKeys
from common.vocabulary import CouponDuration
from plans.serializers import OverridesSerializer


class SubscriptionCreateSerializer(serializers.Serializer):
    customer = serializers.CharField(max_length=255)
    plan = serializers.CharField(max_length=255)
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    start = AwareDateTimeField()
    seats = serializers.IntegerField(required=False, default=1)
    billing_anchor = serializers.CharField(required=False, default=Subscription.ANNIVERSARY)
    overrides = OverridesSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="A deal: the version's terms this subscription replaces, from its start.",
    )


class DiscountSerializer(serializers.Serializer):
    """A coupon redeemed on a subscription, as it runs."""

    coupon = serializers.CharField()
    name = serializers.CharField()
    percent_off = DecimalString(allow_null=True)
    amount_off = DecimalString(allow_null=True)
    currency = serializers.CharField(allow_null=True)
    duration = serializers.ChoiceField(choices=CouponDuration.values)
    periods_applied = serializers.IntegerField(
        min_value=0, help_text="Period invoices it discounted so far."
    )
    periods_left = serializers.IntegerField(
        allow_null=True, help_text="Period invoices it still discounts; null: forever."
    )
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, discount: Discount):
        coupon = discount.coupon
        percent_off, amount_off = coupon.percent_off, coupon.amount_off
        when = serializers.DateTimeField().to_representation
        return {
            "coupon": coupon.code,
            "name": coupon.name,
            "percent_off": None if percent_off is None else format_percentage(percent_off),
            "amount_off": None if amount_off is None else format_money(amount_off, coupon.currency),
            "currency": coupon.currency or None,
            "duration": coupon.duration,
            "periods_applied": discount.periods_applied,
            "periods_left": discount.periods_left,
            "created_at": when(discount.created_at),
            "ended_at": when(discount.ended_at) if discount.ended_at else None,
        }


class DiscountCreateSerializer(serializers.Serializer):
    coupon = serializers.CharField(max_length=255, help_text="The coupon's code.")


class SubscriptionSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    plan = serializers.CharField(source="version.plan.code")
    version = serializers.IntegerField(source="version.number")
    overrides = OverridesSerializer(read_only=True, help_text="The deal in force: {} for none.")
    overrides_next_period = OverridesSerializer(
        source="next_overrides",
        read_only=True,
        allow_null=True,
        help_text="The deal from the next period, when it changes then; null: no change.",
    )
    discount = serializers.SerializerMethodField(
        help_text="The coupon discounting its period invoices; null: none."
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "customer",
            "plan",
            "version",
            "status",
            "billing_anchor",
            "started_at",
            "trial_end",
            "current_period_start",
            "current_period_end",
            "seats",
            "overrides",
            "overrides_next_period",
            "canceled_at",
            "ended_at",
            "discount",
        ]

    @extend_schema_field(DiscountSerializer(allow_null=True))
    def get_discount(self, subscription: Subscription) -> dict | None:
        discount = running_discount(subscription)
        return None if discount is None else DiscountSerializer(discount).data


class ChangePlanSerializer(serializers.Serializer):
    plan = serializers.CharField(max_length=255)
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = AwareDateTimeField(required=False, allow_null=True, default=None)
    overrides = OverridesSerializer(
        required=False,
        allow_null=True,
        default=None,
        help_text="The deal on the new version; a plan change drops the current one otherwise.",
    )


class CancelSerializer(serializers.Serializer):
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = AwareDateTimeField(required=False, allow_null=True, default=None)
    # An immediate cancel during a prepaid commit: its access left expires or is credited.
    commit_leftover = serializers.ChoiceField(
        choices=["expire", "credit"], required=False, default="expire"
    )


class SeatsSerializer(serializers.Serializer):
    seats = serializers.IntegerField(min_value=1, max_value=1_000_000)
    at = AwareDateTimeField(required=False, allow_null=True, default=None)


class SubscriptionPatchSerializer(SeatsSerializer):
    """Seats (from `at`) and/or the deal (from the next period)."""

    seats = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    overrides = OverridesSerializer(
        required=False,
        allow_null=True,
        help_text="The deal from the next period ({} or null: none then).",
    )

    def validate(self, attrs):
        if "seats" not in attrs and "overrides" not in attrs:
            raise serializers.ValidationError({"seats": ["give seats and/or overrides"]})
        return attrs


MAX_MIGRATION_SUBSCRIPTIONS = 10_000


class MigrationSerializer(serializers.Serializer):
    """A bulk migration: the subscriptions (by id, or every live one on a plan,
    optionally one version of it), where to and when."""

    subscriptions = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=False,
        max_length=MAX_MIGRATION_SUBSCRIPTIONS,
    )
    from_plan = serializers.CharField(max_length=255, required=False)
    from_version = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    plan = serializers.CharField(max_length=255)
    version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = AwareDateTimeField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if ("subscriptions" in attrs) == ("from_plan" in attrs):
            raise serializers.ValidationError(
                {"subscriptions": ["give either subscriptions (ids) or from_plan"]}
            )
        if "from_version" in attrs and "from_plan" not in attrs:
            raise serializers.ValidationError({"from_version": ["needs from_plan"]})
        return attrs


class MigrationConfirmSerializer(MigrationSerializer):
    """The previewed migration, confirmed: `token` makes a second submission the
    same migration; `digest` names the preview whose figures were seen."""

    token = serializers.UUIDField()
    digest = serializers.CharField(max_length=64)


# POST /events is parsed by billing.usage.ingestion, without a serializer per event (the hot
# path); these serializers only describe its body and answer in the OpenAPI schema.


class EventSerializer(serializers.Serializer):
    """One usage event. An event that breaks these rules is rejected on its own (listed
    in `rejected`), not the batch."""

    id = serializers.CharField(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        help_text="The event's own id: a second event with the same id for the same "
        "customer is a duplicate, counted once.",
    )
    customer = serializers.CharField(
        min_length=1, max_length=MAX_ID_LENGTH, help_text="The customer's external_id."
    )
    event_name = serializers.CharField(min_length=1, max_length=MAX_NAME_LENGTH)
    timestamp = serializers.DateTimeField(
        help_text="ISO 8601 with an offset, at most BILLING_LATE_EVENT_DAYS old and "
        "BILLING_FUTURE_EVENT_SECONDS ahead."
    )
    properties = serializers.DictField(
        required=False,
        help_text="What meters read: values, filters, unique and group-by keys. A value a "
        'meter adds up is a JSON number or a plain decimal string ("12.50"); any other '
        "string, or a negative value, rejects the event. At most 32 levels deep (an event "
        "nested deeper is rejected alone).",
    )


class EventBatchSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=EventSerializer(),
        max_length=MAX_EVENTS_PER_BATCH,
        help_text=f"At most {MAX_EVENTS_PER_BATCH} events and 1 MiB a request (413 beyond).",
    )


class RejectedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, help_text="Its position in `events`.")
    id = serializers.CharField(allow_null=True)
    error = ErrorDetailSerializer()


class OtherGroupsSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0)
    id = serializers.CharField()
    meter = serializers.CharField()
    properties = serializers.ListField(child=serializers.CharField())


class UnmeteredEventSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, help_text="Its position in `events`.")
    id = serializers.CharField()
    event_name = serializers.CharField()


class EventBatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(min_value=0)
    duplicates = serializers.IntegerField(min_value=0)
    rejected = RejectedEventSerializer(many=True)
    other = OtherGroupsSerializer(
        many=True,
        required=False,
        help_text="Present when some are: stored events whose values of grouped properties "
        'count under "other" (past the limit of distinct values per customer, meter and month).',
    )
    unmetered = UnmeteredEventSerializer(
        many=True,
        required=False,
        help_text="Present when some are: stored events whose event_name no meter reads "
        "(billed as nothing: a misspelt event_name?).",
    )


class RejectedRecordSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, help_text="Its position in the request.")
    id = serializers.CharField(allow_null=True, help_text="The call's id at the source.")
    error = ErrorDetailSerializer()


class UnmeteredCallSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, help_text="The call's position in the request.")
    id = serializers.CharField(help_text="The event's id, `<call id>:<token kind>`.")
    event_name = serializers.CharField()


class GatewayResultSerializer(serializers.Serializer):
    """The answer of POST /api/v1/integrations/{litellm|openrouter} (billing.api.integrations)."""

    accepted = serializers.IntegerField(min_value=0, help_text="Events stored.")
    duplicates = serializers.IntegerField(
        min_value=0, help_text="Events already stored (a resent or retried call)."
    )
    calls = serializers.IntegerField(min_value=0, help_text="Calls billed.")
    skipped = serializers.IntegerField(
        min_value=0, help_text="Records rightly not billed: failed or cancelled calls."
    )
    rejected = RejectedRecordSerializer(many=True)
    unmetered = UnmeteredCallSerializer(
        many=True,
        required=False,
        help_text="Present when some are: stored events whose event_name no meter reads.",
    )
    unpriced_models = serializers.ListField(
        child=serializers.CharField(),
        help_text="The models of the calls billed that no rate card names, priced at the "
        "card's default row (or no row), sorted, each once: the name asked for (LiteLLM's "
        "model_group), else the name sent, else what the mapping made of it. Empty when "
        "every model is priced, and when no rate card prices by model at all.",
    )


# The answers of the usage read and of bulk migrations, for the OpenAPI schema; the
# views in billing.api write them.


class UsageGroupSerializer(serializers.Serializer):
    key = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="Each property asked for and its value, null for events without it.",
    )
    quantity = DecimalString()
    other = serializers.BooleanField(
        required=False,
        help_text='Present, true, on the group of the values counted as "other": those past '
        "the limit of distinct values per customer, meter and month (its value is U+FFFF).",
    )


class UsageRateSerializer(serializers.Serializer):
    group = serializers.DictField(
        child=serializers.CharField(), help_text="The row's when; {} for the default row."
    )
    quantity = DecimalString()
    amount = DecimalString()


class UsageLineSerializer(serializers.Serializer):
    meter = serializers.CharField()
    aggregation = serializers.CharField()
    model = serializers.CharField(allow_null=True, help_text="The charge's model; null: none.")
    quantity = DecimalString()
    included = DecimalString(allow_null=True)
    billable = DecimalString(allow_null=True)
    amount = DecimalString(allow_null=True)
    uncovered = DecimalString(
        required=False,
        help_text="credits and balance charges: units their wallet could not pay for.",
    )
    groups = UsageGroupSerializer(
        many=True,
        required=False,
        help_text="With ?group_by= and a meter grouping by those properties: the line's "
        "quantity by their values.",
    )
    rates = UsageRateSerializer(
        many=True,
        required=False,
        help_text="A charge with a rate card: each row that priced usage, its quantity and amount.",
    )


class UsageSerializer(serializers.Serializer):
    subscription = serializers.IntegerField(allow_null=True)
    customer = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    usage_from = serializers.DateTimeField(
        help_text=(
            "Where the lines' usage starts: the period's start, or an immediate plan change "
            "in it (the usage before is on that change's invoice)."
        )
    )
    invoiced = DecimalString(
        allow_null=True, help_text="The period's usage invoiced already (before usage_from)."
    )
    currency = serializers.CharField()
    lines = UsageLineSerializer(many=True)
    base_fee = DecimalString(allow_null=True)
    subtotal = DecimalString(allow_null=True)
    discount = DecimalString(
        allow_null=True,
        help_text="The period's own lines' share of the discount at the usage so far: of its "
        "fees billed in advance, as stamped, and of the closing invoice's lines for it. What "
        "the spend limit and the budget count is what the period bills less this.",
    )
    projected_total = DecimalString(
        allow_null=True,
        help_text="The period's fees and usage so far extended to its end, before discount "
        "and tax.",
    )
    projected_discount = DecimalString(
        allow_null=True,
        help_text="What the running discount (a coupon) will take off the invoice closing "
        "the current period, estimated on projected_total; 0.00 without one.",
    )
    projected_period_discount = DecimalString(
        allow_null=True,
        help_text="Of the discounts, the share of the period's own lines: those of its fees "
        "billed in advance, as stamped, and of the closing invoice's lines for the period "
        "(not of the next period's fees it bills in advance).",
    )
    projected_after_discount = DecimalString(
        allow_null=True,
        help_text="projected_total less projected_period_discount: what the period's invoices "
        "bill for it, what the spend limit and the budget count.",
    )


class MigrationPreviewRowSerializer(serializers.Serializer):
    subscription = serializers.IntegerField()
    customer = serializers.CharField()
    skipped = serializers.CharField(allow_null=True, help_text="Why it does not move.")
    drops_deal = serializers.BooleanField(
        help_text="The subscription has a deal (overrides) that the move drops."
    )
    features_gained = serializers.ListField(
        child=serializers.CharField(), help_text="Features the new version grants, not now."
    )
    features_lost = serializers.ListField(
        child=serializers.CharField(), help_text="Features granted now that the move takes away."
    )
    features_changed = serializers.ListField(
        child=serializers.CharField(), help_text="Features whose value the move changes."
    )
    # immediate: usage, credit, charge, total; period_end: next_fees, total.
    usage = DecimalString(required=False, allow_null=True)
    credit = DecimalString(required=False, allow_null=True)
    charge = DecimalString(required=False, allow_null=True)
    next_fees = DecimalString(required=False, allow_null=True)
    total = DecimalString(allow_null=True)


class MigrationPreviewSerializer(serializers.Serializer):
    plan = serializers.CharField()
    version = serializers.IntegerField()
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    moving = serializers.IntegerField(min_value=0)
    skipped = serializers.IntegerField(min_value=0)
    totals = serializers.DictField(child=DecimalString(allow_null=True))
    rows = MigrationPreviewRowSerializer(many=True)
    digest = serializers.CharField(help_text="Names these figures; confirm with it.")


class MigrationItemSerializer(serializers.Serializer):
    subscription = serializers.IntegerField()
    customer = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField(allow_null=True)
    invoice = serializers.IntegerField(allow_null=True)
    previewed_total = DecimalString(allow_null=True)


class PlanMigrationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    plan = serializers.CharField()
    version = serializers.IntegerField()
    effective = serializers.ChoiceField(choices=["immediate", "period_end"])
    at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()
    total = serializers.IntegerField(min_value=0)
    done = serializers.IntegerField(min_value=0)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    items = MigrationItemSerializer(many=True)


class RerateSerializer(NoUnknownKeys, serializers.Serializer):
    """A re-rating: the window [from, to), a customer (its external id) or every
    customer with usage in it (null), a meter (its code) or every meter (null),
    and whether to preview only (dry_run, the default) or apply."""

    # `from` is a Python keyword: the field is set by name.
    locals()["from"] = AwareDateTimeField(
        help_text="The window's start, e.g. 2026-10-01T00:00:00Z."
    )
    to = AwareDateTimeField(help_text="The window's end (after from; at most 400 days).")
    customer = serializers.CharField(max_length=255, required=False, allow_null=True, default=None)
    meter = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    dry_run = serializers.BooleanField(required=False, default=True)


class RerateRowSerializer(serializers.Serializer):
    customer = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    invoice = serializers.CharField(
        allow_null=True, help_text="The invoice that billed the period; null for the open period."
    )
    billed = DecimalString()
    rerated = DecimalString()
    difference = DecimalString()
    currency = serializers.CharField()
    issued = serializers.CharField(
        allow_null=True,
        help_text="Applied: the number of the invoice or credit note correcting the period.",
    )


class RerateResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    results = RerateRowSerializer(many=True)
    total_difference = serializers.DictField(child=DecimalString())
    renamed_events = serializers.IntegerField(
        help_text="The stored gateway calls whose model today's mapping names otherwise."
    )

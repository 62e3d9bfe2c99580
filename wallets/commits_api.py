"""Commit endpoints: sign one for a customer, list them, read one with its
drawdown ledger and access (API.md, "Commits")."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Subscription
from common.errors import Conflict, NotFound
from common.money import format_decimal, format_money
from common.rest_api import AwareDateTimeField, DecimalString, StrictCharField, request_data
from customers.selectors import customer_get
from invoices.serializers import InvoiceSerializer
from plans.models import Meter
from wallets.commit_models import Commit, CommitEntry
from wallets.commit_terms import CommitRequest
from wallets.commits import (
    ACCESS_KINDS,
    ENTRY_KINDS,
    access_kind,
    commit_accesses,
    commit_ledger,
    commit_list,
    commit_sign,
)
from wallets.models import CreditBlock, LedgerEntry

ENTRY_CHOICES = [*dict.fromkeys(ENTRY_KINDS.values()), *dict(CommitEntry.KINDS)]


class RolloverSerializer(serializers.Serializer):
    percent = DecimalString()
    expires_after_periods = serializers.IntegerField(min_value=1, max_value=120)


class CommitInSerializer(serializers.Serializer):
    amount = DecimalString()
    currency = StrictCharField(max_length=3)
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField()
    billing = serializers.ChoiceField(choices=[Commit.PREPAID, Commit.POSTPAID])
    access = serializers.ChoiceField(
        choices=[Commit.PER_PERIOD, Commit.UPFRONT], required=False, allow_null=True
    )
    applies_to = serializers.ListField(
        child=StrictCharField(max_length=255), required=False, default=list, max_length=100
    )
    overage_multiplier = DecimalString(required=False, allow_null=True, default=None)
    rollover = RolloverSerializer(required=False, allow_null=True, default=None)


class AccessSerializer(serializers.ModelSerializer):
    kind = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()
    remaining = serializers.SerializerMethodField()
    available_from = serializers.DateTimeField(source="effective_at")

    class Meta:
        model = CreditBlock
        fields = ["id", "kind", "amount", "remaining", "available_from", "expires_at", "expired_at"]

    @extend_schema_field(serializers.ChoiceField(choices=ACCESS_KINDS))
    def get_kind(self, block) -> str:
        return access_kind(block, self.context["commit"])

    def get_amount(self, block) -> str:
        return format_money(block.amount, block.currency)

    def get_remaining(self, block) -> str:
        return format_money(block.remaining, block.currency)


class EntrySerializer(serializers.ModelSerializer):
    """A ledger entry of the commit's access blocks, or a postpaid commit's own."""

    kind = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()
    access = serializers.SerializerMethodField()
    invoice = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "access",
            "period_start",
            "period_end",
            "invoice",
            "occurred_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=ENTRY_CHOICES))
    def get_kind(self, entry) -> str:
        return ENTRY_KINDS.get(entry.kind, entry.kind)

    def get_amount(self, entry) -> str:
        return format_money(entry.amount, self.context["commit"].currency)

    def get_access(self, entry) -> int | None:
        return getattr(entry, "block_id", None)

    def get_invoice(self, entry) -> int | None:
        return entry.invoice_id


class CommitSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="external_id", read_only=True)
    amount = serializers.SerializerMethodField()
    overage_multiplier = serializers.SerializerMethodField()
    rollover = serializers.SerializerMethodField()
    counted = serializers.SerializerMethodField()
    invoice = serializers.SerializerMethodField()
    true_up_invoice = serializers.SerializerMethodField()

    class Meta:
        model = Commit
        fields = [
            "id",
            "customer",
            "amount",
            "currency",
            "starts_at",
            "ends_at",
            "periods",
            "billing",
            "access",
            "applies_to",
            "overage_multiplier",
            "rollover",
            "counted",
            "status",
            "invoice",
            "true_up_invoice",
            "created_at",
        ]

    def get_amount(self, commit) -> str:
        return format_money(commit.amount, commit.currency)

    def get_overage_multiplier(self, commit) -> str | None:
        return format_decimal(commit.overage_multiplier) if commit.prepaid else None

    @extend_schema_field(RolloverSerializer(allow_null=True))
    def get_rollover(self, commit) -> dict | None:
        if commit.rollover_percent is None:
            return None
        return {
            "percent": format_decimal(commit.rollover_percent),
            "expires_after_periods": commit.rollover_periods,
        }

    def get_counted(self, commit) -> str | None:
        return None if commit.prepaid else format_money(commit.counted, commit.currency)

    def get_invoice(self, commit) -> int | None:
        return commit.invoice_id

    def get_true_up_invoice(self, commit) -> int | None:
        return commit.true_up_invoice_id


class CommitDetailSerializer(CommitSerializer):
    accesses = serializers.SerializerMethodField()
    entries = serializers.SerializerMethodField()

    class Meta(CommitSerializer.Meta):
        fields = [*CommitSerializer.Meta.fields, "accesses", "entries"]

    @extend_schema_field(AccessSerializer(many=True))
    def get_accesses(self, commit) -> list:
        blocks = commit_accesses(commit)
        return AccessSerializer(blocks, many=True, context={"commit": commit}).data

    @extend_schema_field(EntrySerializer(many=True))
    def get_entries(self, commit) -> list:
        entries = commit_ledger(commit)
        return EntrySerializer(entries, many=True, context={"commit": commit}).data


def _request(data: dict) -> CommitRequest:
    rollover = data["rollover"] or {}
    return CommitRequest(
        amount=data["amount"],
        currency=data["currency"],
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        billing=data["billing"],
        access=data.get("access") or "",
        applies_to=tuple(data["applies_to"]),
        overage_multiplier=data["overage_multiplier"],
        rollover_percent=rollover.get("percent"),
        rollover_periods=rollover.get("expires_after_periods"),
    )


class CommitListApi(APIView):
    @extend_schema(responses=inline_serializer("Commits", {"results": CommitSerializer(many=True)}))
    def get(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        return Response(
            {"results": CommitSerializer(commit_list(customer_id=customer.pk), many=True).data}
        )

    @extend_schema(
        request=CommitInSerializer,
        responses={
            201: inline_serializer(
                "CommitSigned",
                {"commit": CommitDetailSerializer(), "invoice": InvoiceSerializer(allow_null=True)},
            )
        },
        description=(
            "Sign a commit over whole periods of the customer's subscription. A prepaid "
            "commit is invoiced in full at once (`reason: commit`)."
        ),
    )
    def post(self, request, external_id: str):
        customer = customer_get(external_id=external_id)
        data = request_data(CommitInSerializer, request)
        subscription = (
            Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE)
            .select_related("customer")
            .first()
        )
        if subscription is None:
            raise Conflict(
                f"customer {external_id!r} has no live subscription",
                words="A commit runs over a subscription's periods: subscribe the customer first.",
            )
        known = set(
            Meter.objects.filter(code__in=data["applies_to"]).values_list("code", flat=True)
        )
        commit = commit_sign(
            subscription=subscription,
            request=_request(data),
            known_meters=known,
            now=timezone.now(),
        )
        return Response(
            {
                "commit": CommitDetailSerializer(commit).data,
                "invoice": InvoiceSerializer(commit.invoice).data if commit.invoice else None,
            },
            status=status.HTTP_201_CREATED,
        )


class CommitDetailApi(APIView):
    @extend_schema(responses=CommitDetailSerializer, operation_id="v1_customers_commit_retrieve")
    def get(self, request, external_id: str, commit_id: int):
        customer = customer_get(external_id=external_id)
        commit = Commit.objects.filter(customer=customer, pk=commit_id).first()
        if commit is None:
            raise NotFound(f"customer {external_id!r} has no commit {commit_id}")
        return Response(CommitDetailSerializer(commit).data)

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.money import format_decimal, format_money
from common.rest_api import AwareDateTimeField, DecimalString, StrictCharField
from plans.serializers import MeterScopeField
from wallets.models import CreditBlock, LedgerEntry, Wallet

MAX_PRIORITY = 1_000_000


def wallet_amount(wallet: Wallet, value) -> str | None:
    """Credits as a plain number; money with its currency's minor digits."""
    if value is None:
        return None
    if wallet.kind == Wallet.MONEY:
        return format_money(value, wallet.currency)
    return format_decimal(value)


class BlockSerializer(serializers.ModelSerializer):
    amount = serializers.SerializerMethodField()
    applies_to = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The meters it pays for; empty: every meter.",
    )
    remaining = serializers.SerializerMethodField()
    price_paid = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()

    class Meta:
        model = CreditBlock
        fields = [
            "id",
            "kind",
            "source",
            "amount",
            "remaining",
            "price_paid",
            "currency",
            "priority",
            "effective_at",
            "expires_at",
            "applies_to",
        ]

    def get_amount(self, block) -> str:
        return wallet_amount(block.wallet, block.amount)

    def get_remaining(self, block) -> str:
        return wallet_amount(block.wallet, block.remaining)

    def get_price_paid(self, block) -> str | None:
        return format_money(block.price_paid, block.currency) if block.currency else None

    def get_currency(self, block) -> str | None:
        return block.currency or None


class AutoTopUpSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    threshold = DecimalString()
    pack = serializers.CharField(max_length=255)


class WalletSerializer(serializers.Serializer):
    kind = serializers.CharField()
    currency = serializers.SerializerMethodField()
    balance = serializers.SerializerMethodField()
    low_balance_threshold = serializers.SerializerMethodField()
    blocks = serializers.SerializerMethodField()
    auto_top_up = serializers.SerializerMethodField()

    def get_currency(self, wallet) -> str | None:
        return wallet.currency or None

    def get_balance(self, wallet) -> str:
        return wallet_amount(wallet, wallet.balance)

    def get_low_balance_threshold(self, wallet) -> str | None:
        return wallet_amount(wallet, wallet.low_balance_threshold)

    @extend_schema_field(BlockSerializer(many=True))
    def get_blocks(self, wallet) -> list[dict]:
        blocks = self.context["blocks"].get(wallet.pk, [])
        for block in blocks:
            block.wallet = wallet
        return BlockSerializer(blocks, many=True).data

    @extend_schema_field(AutoTopUpSerializer(allow_null=True))
    def get_auto_top_up(self, wallet) -> dict | None:
        setting = getattr(wallet, "auto_top_up", None) if wallet.kind == Wallet.CREDITS else None
        if setting is None:
            return None
        return {
            "enabled": setting.enabled,
            "threshold": format_decimal(setting.threshold),
            "pack": setting.pack.code,
        }


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount = serializers.SerializerMethodField()
    balance_after = serializers.SerializerMethodField()
    quantity = DecimalString(read_only=True, allow_null=True)  # null: not a usage entry
    block = serializers.PrimaryKeyRelatedField(read_only=True)
    # The credit note that took back what the entry takes out (kinds credit_note, void).
    credit_note = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "balance_after",
            "block",
            "credit_note",
            "meter",
            "quantity",
        ]

    def get_amount(self, entry) -> str:
        return wallet_amount(self.context["wallet"], entry.amount)

    def get_balance_after(self, entry) -> str:
        return wallet_amount(self.context["wallet"], entry.balance_after)

    def to_representation(self, entry):
        data = super().to_representation(entry)
        data["occurred_at"] = entry.occurred_at.isoformat().replace("+00:00", "Z")
        return data


class CreditsAddSerializer(serializers.Serializer):
    """Either a pack to buy, or credits to grant (promotional, or paid at a price)."""

    pack = serializers.CharField(required=False, max_length=255)
    credits = DecimalString(required=False)
    kind = serializers.ChoiceField(
        choices=CreditBlock.GRANTED, required=False, default=CreditBlock.PROMOTIONAL
    )
    price = DecimalString(required=False, allow_null=True, default=None)
    priority = serializers.IntegerField(
        required=False, default=50, min_value=-MAX_PRIORITY, max_value=MAX_PRIORITY
    )
    effective_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    expires_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=255)
    # A grant's; a pack's credits pay for the pack's meters.
    applies_to = MeterScopeField()

    def validate(self, data):
        if ("pack" in data) == ("credits" in data):
            raise serializers.ValidationError(
                {"pack": ['give either "pack" (a purchase) or "credits" (a grant)']}
            )
        if "pack" in data and data["applies_to"]:
            raise serializers.ValidationError(
                {"applies_to": ["a pack's credits pay for the meters the pack applies to"]}
            )
        return data


class MoneyAddSerializer(serializers.Serializer):
    amount = DecimalString()
    currency = serializers.CharField(max_length=3)
    applies_to = MeterScopeField()


MAX_CHECK_PROPERTIES = 20


class CheckSerializer(serializers.Serializer):
    """A meter (with a quantity, 1 by default) or a feature: exactly one."""

    meter = serializers.CharField(max_length=255, required=False)
    feature = StrictCharField(max_length=255, required=False)
    quantity = DecimalString(required=False, default=None)
    properties = serializers.DictField(
        child=StrictCharField(max_length=512),
        required=False,
        default=dict,
        help_text='A meter priced by a rate card: the event\'s properties, e.g. {"model": '
        '"gpt-4o", "token_type": "output"}, so that its row prices the question; without '
        "them, the default row",
    )

    def validate(self, attrs):
        if len(attrs.get("properties") or {}) > MAX_CHECK_PROPERTIES:
            raise serializers.ValidationError(
                {"properties": [f"at most {MAX_CHECK_PROPERTIES} properties"]}
            )
        if ("meter" in attrs) == ("feature" in attrs):
            raise serializers.ValidationError(
                {"meter": ["give a meter (with a quantity) or a feature, one of them"]}
            )
        if "feature" in attrs and attrs["quantity"] is not None:
            raise serializers.ValidationError({"quantity": ["a feature check takes no quantity"]})
        return attrs

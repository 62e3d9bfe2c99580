from datetime import UTC
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.e_invoice_codes import vat_id_errors
from common.email_addresses import validate_email_address
from common.money import format_decimal, format_money
from common.rest_api import DecimalString, MoneyString
from customers.models import (
    CUSTOMER_DETAILS,
    E_INVOICE_FORMATS,
    LOCALES,
    MAX_PAYMENT_TERMS_DAYS,
    Customer,
    VatCheck,
)
from invoices.credit_balance import credit_balance
from invoices.dunning_policies import customer_policy_code


def payment_terms_field(**default) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=MAX_PAYMENT_TERMS_DAYS,
        required=False,
        allow_null=True,
        help_text="Days from finalization to the due date; null: BILLING_PAYMENT_TERMS_DAYS.",
        **default,
    )


@extend_schema_field({"type": "string", "format": "email"})
class EmailAddressField(serializers.CharField):
    """An email address, internationalized ones too (`経理@sakura.jp`:
    common.email_addresses), which DRF's EmailField refuses."""

    def __init__(self, **kwargs):
        super().__init__(max_length=254, required=False, allow_blank=True, **kwargs)
        self.validators.append(validate_email_address)


def e_invoice_text_field(max_length: int, help_text: str, **default) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=help_text,
        **default,
    )


class EInvoiceFields(serializers.Serializer):
    """The customer's e-invoice details as the API takes them, and `vat_id`, the
    synonym of `tax_id` (API.md v1.3 "E-invoices"): one of the two, or both alike."""

    vat_id = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="The VAT number (same as tax_id), e.g. FR40303265045.",
    )
    buyer_reference = e_invoice_text_field(255, "The buyer's reference (BT-10).")
    order_reference = e_invoice_text_field(255, "The buyer's purchase order (BT-13).")
    leitweg_id = e_invoice_text_field(
        46, "German public buyer's routing id, e.g. 04011000-12345-67."
    )
    peppol_id = e_invoice_text_field(104, "Peppol endpoint scheme:id, e.g. 0208:0123456749.")
    e_invoice_format = serializers.ChoiceField(
        choices=E_INVOICE_FORMATS,
        required=False,
        allow_null=True,
        help_text="The e-invoice its invoices are also issued as; null: none.",
    )
    sepa_mandate_reference = e_invoice_text_field(35, "SEPA direct debit mandate reference.")
    debtor_iban = e_invoice_text_field(42, "The IBAN its direct debits are collected from (BT-91).")
    card_last_digits = e_invoice_text_field(
        32, "The last 4 digits of the card it pays with (BT-87)."
    )
    card_holder_name = e_invoice_text_field(128, "The name on that card (BT-88).")

    def validate_tax_id(self, value):
        if errors := vat_id_errors(value or ""):
            raise serializers.ValidationError(errors)
        return value

    def validate_vat_id(self, value):
        return self.validate_tax_id(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "vat_id" in attrs:
            vat_id = attrs.pop("vat_id")
            if "tax_id" in self.initial_data and (attrs.get("tax_id") or "") != (vat_id or ""):
                raise serializers.ValidationError({"vat_id": ["differs from tax_id"]})
            attrs["tax_id"] = vat_id
        return attrs


class VatCheckSerializer(serializers.ModelSerializer):
    """A VAT number check as recorded (customers.vat_checks): valid null when the
    service could not answer (`error` says why); `consultation_id`, VIES's
    requestIdentifier, proves the consultation."""

    valid = serializers.BooleanField(
        allow_null=True, help_text="null: the service could not answer (see error)."
    )
    checked_at = serializers.SerializerMethodField()

    class Meta:
        model = VatCheck
        fields = [
            "vat_id",
            "valid",
            "name",
            "address",
            "consultation_id",
            "checked_at",
            "checker",
            "error",
        ]

    def get_checked_at(self, check) -> str:
        return check.checked_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CustomerSerializer(EInvoiceFields, serializers.ModelSerializer):
    external_id = serializers.CharField(max_length=255)
    currency = serializers.CharField(max_length=8)
    timezone = serializers.CharField(max_length=64, required=False, default="UTC")
    email = EmailAddressField(default="")
    address = serializers.JSONField(required=False, default=dict)
    tax_id = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    buyer_reference = e_invoice_text_field(255, "The buyer's reference (BT-10).", default="")
    order_reference = e_invoice_text_field(255, "The buyer's purchase order (BT-13).", default="")
    leitweg_id = e_invoice_text_field(
        46, "German public buyer's routing id, e.g. 04011000-12345-67.", default=""
    )
    peppol_id = e_invoice_text_field(
        104, "Peppol endpoint scheme:id, e.g. 0208:0123456749.", default=""
    )
    e_invoice_format = serializers.ChoiceField(
        choices=E_INVOICE_FORMATS,
        required=False,
        allow_null=True,
        default=None,
        help_text="The e-invoice its invoices are also issued as; null: none.",
    )
    sepa_mandate_reference = e_invoice_text_field(
        35, "SEPA direct debit mandate reference.", default=""
    )
    debtor_iban = e_invoice_text_field(
        42, "The IBAN its direct debits are collected from (BT-91).", default=""
    )
    card_last_digits = e_invoice_text_field(
        32, "The last 4 digits of the card it pays with (BT-87).", default=""
    )
    card_holder_name = e_invoice_text_field(128, "The name on that card (BT-88).", default="")
    spend_limit = DecimalString(required=False, allow_null=True, default=None)
    spend_limit_mode = serializers.ChoiceField(
        choices=["hard", "soft"], required=False, default="hard"
    )
    alert_thresholds = serializers.ListField(
        child=DecimalString(), required=False, default=list, max_length=20
    )
    payment_terms_days = payment_terms_field(default=None)
    locale = serializers.ChoiceField(choices=LOCALES, required=False, default="en")
    tax_exempt = serializers.ChoiceField(
        choices=Customer.TAX_EXEMPTIONS, required=False, default=Customer.TAX_NONE
    )
    tax_rates = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=10,
        write_only=True,
        help_text="Codes of the customer's tax rates; empty: the rates marked default.",
    )
    invoice_emails = serializers.ListField(
        child=serializers.CharField(max_length=254), required=False, default=list, max_length=10
    )

    billing_entity = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="Code of the billing entity (seller) on its invoices; null: the default.",
    )
    dunning_policy = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        default=None,
        help_text=(
            'Code of the dunning policy it follows; null: the default one; "none": no dunning.'
        ),
    )
    standing_invoice = serializers.CharField(
        read_only=True, allow_null=True, help_text="The invoice past due that set the standing."
    )
    credit_balance = serializers.SerializerMethodField(
        help_text="Owed to the customer (credit notes on paid invoices); pays its next invoices."
    )
    vat_check = serializers.SerializerMethodField(
        help_text="The latest check of its VAT number (POST .../vat-check); null: none."
    )

    class Meta:
        model = Customer
        fields = [
            "external_id",
            "currency",
            *CUSTOMER_DETAILS,
            "vat_id",
            "tax_rates",
            "billing_entity",
            "dunning_policy",
            "credit_balance",
            "standing",
            "standing_since",
            "standing_invoice",
            "dunning_paused_until",
            "vat_check",
            "created_at",
        ]
        read_only_fields = ["created_at", "standing", "standing_since", "dunning_paused_until"]

    @extend_schema_field({"type": "string", "example": "12.00"})
    def get_credit_balance(self, customer) -> str:
        return format_money(credit_balance(customer), customer.currency)

    @extend_schema_field(VatCheckSerializer(allow_null=True))
    def get_vat_check(self, customer) -> dict | None:
        # Newest first: the list prefetches them so (customers.api), one query a page.
        latest = next(iter(customer.vat_checks.all()[:1]), None)
        return None if latest is None else VatCheckSerializer(latest).data

    def to_representation(self, customer):
        data = super().to_representation(customer)
        data["tax_id"] = data["vat_id"] = customer.tax_id or None
        data["e_invoice_format"] = customer.e_invoice_format or None
        data["spend_limit"] = MoneyString(allow_null=True).to_representation(
            (customer.spend_limit, customer.currency)
        )
        # Percentages of included units; empty: the default (BILLING_ALERT_THRESHOLDS).
        # Without terms of its own, the default's (BILLING_PAYMENT_TERMS_DAYS).
        data["payment_terms_days"] = customer.payment_terms
        data["tax_rates"] = [rate.code for rate in customer.tax_rates.all()]
        # Its own entity's code; null: billed by the default entity.
        data["billing_entity"] = customer.billing_entity.code if customer.billing_entity else None
        data["dunning_policy"] = customer_policy_code(customer)
        # What set the standing: the invoice past due (of the worst, the first due).
        data["standing_invoice"] = (
            customer.standing_invoice.number if customer.standing_invoice_id else None
        )
        data["alert_thresholds"] = [
            format_decimal(Decimal(str(t))) for t in customer.alert_thresholds or []
        ]
        return data


class CustomerUpdateSerializer(EInvoiceFields):
    billing_entity = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True
    )
    name = serializers.CharField(max_length=255, required=False)
    email = EmailAddressField()
    currency = serializers.CharField(max_length=8, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    address = serializers.JSONField(required=False)
    tax_id = serializers.CharField(max_length=64, required=False, allow_null=True)
    spend_limit = DecimalString(required=False, allow_null=True)
    spend_limit_mode = serializers.ChoiceField(choices=["hard", "soft"], required=False)
    alert_thresholds = serializers.ListField(child=DecimalString(), required=False, max_length=20)
    payment_terms_days = payment_terms_field()
    locale = serializers.ChoiceField(choices=LOCALES, required=False)
    tax_exempt = serializers.ChoiceField(choices=Customer.TAX_EXEMPTIONS, required=False)
    tax_rates = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=10
    )
    invoice_emails = serializers.ListField(
        child=serializers.CharField(max_length=254), required=False, max_length=10
    )
    dunning_policy = serializers.CharField(max_length=64, required=False, allow_null=True)

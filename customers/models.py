import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.countries import is_country_code
from common.customer_text import LANGUAGES
from common.e_invoice_codes import (
    bic_errors,
    iban_errors,
    peppol_id_errors,
    text_part_errors,
    vat_id_errors,
)
from common.email_addresses import validate_email_address
from common.history import audit_history
from common.money import is_known_currency
from customers.e_invoice_details import (
    E_INVOICE_CHECKED,
    E_INVOICE_DETAILS,
    E_INVOICE_FORMATS,
    customer_e_invoice_errors,
    seller_payment_means,
)
from plans.validation import available_timezones

CODE_MAX_LENGTH = 255
MAX_ALERT_THRESHOLD = Decimal(1000)


def alert_threshold_errors(value: object) -> list[str]:
    """What is wrong with a list of alert thresholds (percentages of the included
    units): each a number above 0 and at most 1000, none twice."""
    if not isinstance(value, list):
        return ["must be a list of percentages, e.g. [50, 75, 90, 100]"]
    errors, seen = [], set()
    for item in value:
        try:
            if isinstance(item, bool) or not isinstance(item, int | float | Decimal):
                raise TypeError
            percentage = Decimal(str(item))
            if not percentage.is_finite():
                raise TypeError
        except (TypeError, InvalidOperation):
            errors.append(f"{item!r} is not a number")
            continue
        if not 0 < percentage <= MAX_ALERT_THRESHOLD:
            errors.append(f"{item} must be above 0 and at most {MAX_ALERT_THRESHOLD}")
        elif percentage in seen:
            errors.append(f"{item} is listed twice")
        seen.add(percentage)
    return errors


# What may change on a customer after it is created (its currency may not).
CUSTOMER_DETAILS = (
    "name",
    "email",
    "timezone",
    "address",
    "tax_id",
    "spend_limit",
    "spend_limit_mode",
    "alert_thresholds",
    "payment_terms_days",
    "locale",
    "tax_exempt",
    "invoice_emails",
    *E_INVOICE_DETAILS,
)
MAX_PAYMENT_TERMS_DAYS = 365
MAX_INVOICE_EMAILS = 10

# The languages invoices, credit notes and their emails are written in.
LOCALES = list(LANGUAGES.items())


def invoice_emails_errors(value: object) -> list[str]:
    """What is wrong with the addresses invoices are emailed to: a list of at most
    MAX_INVOICE_EMAILS distinct email addresses (internationalized ones too:
    common.email_addresses)."""
    if not isinstance(value, list):
        return ["must be a list of email addresses"]
    if len(value) > MAX_INVOICE_EMAILS:
        return [f"at most {MAX_INVOICE_EMAILS} addresses"]
    errors = []
    for address in value:
        try:
            validate_email_address(address)
        except ValidationError:
            errors.append(f"{address!r} is not an email address")
    if len({str(address).lower() for address in value}) != len(value):
        errors.append("an address is listed twice")
    return errors


def payment_terms_errors(value: object) -> list[str]:
    """What is wrong with a customer's payment terms: None (the default,
    BILLING_PAYMENT_TERMS_DAYS) or a whole number of days from 0 to 365."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int):
        return ["must be a whole number of days"]
    if not 0 <= value <= MAX_PAYMENT_TERMS_DAYS:
        return [f"must be from 0 to {MAX_PAYMENT_TERMS_DAYS} days"]
    return []


# A document number is PREFIX-YYYY-NNNNNN and must fit InvoiceSequence.name and
# Invoice.number (32 characters).
DOCUMENT_PREFIX = re.compile(r"[A-Z0-9]{1,12}")


def document_prefix_errors(value: object) -> list[str]:
    if not isinstance(value, str) or not DOCUMENT_PREFIX.fullmatch(value):
        return ["1 to 12 capital letters or digits, e.g. INV"]
    return []


# The entity's fields an e-invoice carries as text: each not only spaces, without
# control characters (e_invoice_codes.text_part_errors).
E_INVOICE_TEXTS = ("legal_name", "street", "city", "postal_code", "contact_name", "contact_phone")


class BillingEntity(models.Model):
    """A seller: the legal entity whose name, address, tax and bank details its
    customers' invoices and credit notes carry, numbered in its own sequences
    (PREFIX-YYYY-NNNNNN). Exactly one is the default: the seller of every customer
    that names none. A document copies its seller when it is issued
    (invoices.sellers), so a change here shows on the next document only."""

    code = models.SlugField(
        max_length=64,
        unique=True,
        help_text=_("How the API names it, e.g. example_sas."),
        verbose_name=_("code"),
    )
    legal_name = models.CharField(max_length=255, verbose_name=_("legal name"))
    address_lines = models.TextField(
        blank=True,
        default="",
        help_text=_("The postal address as printed, one line per line."),
        verbose_name=_("address lines"),
    )
    country = models.CharField(
        max_length=2,
        help_text=_("ISO 3166-1 code, e.g. FR: a customer elsewhere gets its country printed."),
        verbose_name=_("country"),
    )
    tax_id = models.CharField(
        _("VAT number / tax ID"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("e.g. FR40303265045"),
    )
    registration_id = models.CharField(
        _("Company registration number"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("e.g. SIREN, Handelsregister or Companies House number."),
    )
    bank_name = models.CharField(
        max_length=128, blank=True, default="", verbose_name=_("bank name")
    )
    iban = models.CharField("IBAN", max_length=42, blank=True, default="")
    bic = models.CharField("BIC", max_length=11, blank=True, default="")
    # E-invoicing (EN 16931): the seller's structured address, endpoint, contact
    # and payment means, read by invoices.e_invoices.
    e_invoicing = models.BooleanField(
        _("Issue e-invoices"),
        default=False,
        db_default=False,
        help_text=_(
            "Finalized invoices and credit notes of this seller are also issued as "
            "EN 16931 e-invoices, validated before they are issued."
        ),
    )
    street = models.CharField(
        max_length=255, blank=True, default="", db_default="", verbose_name=_("street")
    )
    postal_code = models.CharField(
        max_length=16, blank=True, default="", db_default="", verbose_name=_("postal code")
    )
    city = models.CharField(
        max_length=128, blank=True, default="", db_default="", verbose_name=_("city")
    )
    peppol_id = models.CharField(
        _("Peppol endpoint (scheme:id)"),
        max_length=104,
        blank=True,
        default="",
        db_default="",
        help_text=_("e.g. 0009:12345678200077"),
    )
    contact_name = models.CharField(
        max_length=128, blank=True, default="", db_default="", verbose_name=_("contact name")
    )
    contact_phone = models.CharField(
        max_length=64, blank=True, default="", db_default="", verbose_name=_("contact phone")
    )
    CREDIT_TRANSFER = "credit_transfer"
    CARD = "card"
    DIRECT_DEBIT = "direct_debit"
    PAYMENT_MEANS = [
        (CREDIT_TRANSFER, _("Credit transfer")),
        (CARD, _("Card")),
        (DIRECT_DEBIT, _("Direct debit")),
    ]
    payment_means = models.CharField(
        max_length=16,
        choices=PAYMENT_MEANS,
        default=CREDIT_TRANSFER,
        db_default=CREDIT_TRANSFER,
        help_text=_("How its e-invoices ask to be paid."),
        verbose_name=_("payment means"),
    )
    sepa_creditor_id = models.CharField(
        max_length=35,
        blank=True,
        default="",
        db_default="",
        help_text=_("SEPA creditor identifier, for direct debit."),
        verbose_name=_("SEPA creditor id"),
    )
    logo = models.ImageField(
        upload_to="billing_entities/",
        blank=True,
        default="",
        help_text=_("Printed on documents."),
        verbose_name=_("logo"),
    )
    email = models.EmailField(
        _("Contact email"),
        blank=True,
        default="",
        help_text=_("Printed on documents; customers' replies to invoice emails go here."),
    )
    sender_email = models.EmailField(
        _("Email sender"),
        blank=True,
        default="",
        help_text=_(
            "The From address of this seller's invoice, credit note and alert emails. "
            "Empty: BILLING_INVOICE_FROM_EMAIL or BILLING_ALERT_FROM_EMAIL if set, "
            "else the contact email."
        ),
    )
    payment_instructions = models.TextField(
        blank=True, default="", verbose_name=_("payment instructions")
    )
    invoice_footer = models.TextField(
        blank=True,
        default="",
        help_text=_("Printed at the end of every invoice and credit note."),
        verbose_name=_("invoice footer"),
    )
    invoice_prefix = models.CharField(
        _("Invoice number prefix"),
        max_length=12,
        unique=True,
        help_text=_("e.g. INV: INV-2026-000001."),
    )
    credit_note_prefix = models.CharField(
        _("Credit note number prefix"),
        max_length=12,
        unique=True,
        help_text=_("e.g. CN: CN-2026-000001."),
    )
    functional_currency = models.CharField(
        _("Functional currency"),
        max_length=3,
        default="USD",
        help_text=_(
            "ISO 4217 code, e.g. EUR: the currency its books are kept in. Journal entries "
            "in another currency carry their amount in it too, at the document's rate."
        ),
    )
    timezone = models.CharField(
        _("Time zone"),
        max_length=64,
        default="UTC",
        help_text=_("IANA name, e.g. Europe/Paris: where its reports' days and months begin."),
    )
    is_default = models.BooleanField(
        _("Default seller"),
        default=False,
        help_text=_("The seller of every customer that names none. Exactly one is."),
    )

    history = audit_history()

    class Meta:
        verbose_name = _("billing entity")
        verbose_name_plural = _("billing entities")
        ordering = ["legal_name"]
        constraints = [
            # At most one default; the services keep at least one (billing_entity_save).
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="billing_entity_one_default",
            ),
            models.CheckConstraint(
                condition=~models.Q(invoice_prefix=models.F("credit_note_prefix")),
                name="billing_entity_prefixes_differ",
            ),
        ]

    def __str__(self) -> str:
        return self.legal_name

    @property
    def address(self) -> list[str]:
        return [line.strip() for line in self.address_lines.splitlines() if line.strip()]

    def clean(self):
        errors = {}
        if self.country and not is_country_code(self.country):
            errors["country"] = f"unknown country {self.country!r}; use an ISO 3166-1 code"
        if not is_known_currency(self.functional_currency or ""):
            errors["functional_currency"] = (
                f"unknown currency {self.functional_currency!r}; use an ISO 4217 code such as EUR"
            )
        if self.timezone not in available_timezones():
            errors["timezone"] = (
                f"unknown time zone {self.timezone!r}; use an IANA name such as 'Europe/Paris'"
            )
        for field in ("invoice_prefix", "credit_note_prefix"):
            if problems := document_prefix_errors(getattr(self, field)):
                errors[field] = problems
        if not errors and self.invoice_prefix == self.credit_note_prefix:
            errors["credit_note_prefix"] = "must differ from the invoice number prefix"
        if not errors:
            # Each prefix names one sequence: no entity may take another's.
            others = BillingEntity.objects.exclude(pk=self.pk)
            for field in ("invoice_prefix", "credit_note_prefix"):
                value = getattr(self, field)
                taken = others.filter(
                    models.Q(invoice_prefix=value) | models.Q(credit_note_prefix=value)
                ).first()
                if taken is not None:
                    errors[field] = f"{value} already numbers the documents of {taken}"
        errors = self.e_invoice_errors() | errors
        if errors:
            raise ValidationError(errors)

    def e_invoice_errors(self) -> dict[str, list[str]]:
        """What is wrong with its identifiers (VAT number, IBAN, BIC, Peppol
        endpoint), and, when it issues e-invoices, what EN 16931 and XRechnung
        need of a seller that it lacks; by field."""
        errors = {}
        checks = [("tax_id", vat_id_errors), ("iban", iban_errors), ("bic", bic_errors)]
        checks.append(("peppol_id", peppol_id_errors))
        for field, check in checks:
            if (value := getattr(self, field)) and (problems := check(value)):
                errors[field] = problems
        # What its e-invoices carry as text (PEPPOL-EN16931-R008: no empty element).
        for field in E_INVOICE_TEXTS:
            if problems := text_part_errors(getattr(self, field)):
                errors[field] = problems
        if not self.e_invoicing:
            return errors
        if problems := self.customers_lacking_payment_details():
            errors.setdefault("payment_means", problems)
        needed = ["legal_name", "street", "city", "postal_code", "country"]
        for field in needed:
            if not getattr(self, field):
                errors.setdefault(field, ["required to issue e-invoices"])
        if not (self.tax_id or self.registration_id):
            errors.setdefault("tax_id", ["e-invoices need a VAT number or a registration number"])
        if self.payment_means == self.CREDIT_TRANSFER and not self.iban:
            errors.setdefault("iban", ["e-invoices paid by credit transfer need an IBAN"])
        if self.payment_means == self.DIRECT_DEBIT and not self.sepa_creditor_id:
            errors.setdefault(
                "sepa_creditor_id", ["e-invoices paid by direct debit need a SEPA creditor id"]
            )
        return errors

    def customers_lacking_payment_details(self) -> list[str]:
        """Paid by direct debit or by card, the e-invoiced customers it bills that
        lack what their e-invoices would then need (customer_e_invoice_errors:
        a mandate and the account debited, an XRechnung buyer's card digits):
        a refusal naming up to 5 of them; [] when none does."""
        if self.pk is None or self.payment_means == self.CREDIT_TRANSFER:
            return []
        billed = Customer.objects.filter(billing_entity=self)
        if self.is_default:
            billed = Customer.objects.filter(
                models.Q(billing_entity=self) | models.Q(billing_entity__isnull=True)
            )
        lacking = [
            customer
            for customer in billed.exclude(e_invoice_format="").order_by("external_id")
            if set(customer.payment_detail_errors(self.payment_means))
        ]
        if not lacking:
            return []
        names = ", ".join(customer.external_id for customer in lacking[:5])
        more = f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        needs = (
            "a SEPA mandate reference and the IBAN debited"
            if self.payment_means == self.DIRECT_DEBIT
            else "(XRechnung) the card's last 4 digits"
        )
        return [
            f"{len(lacking)} e-invoiced customer(s) it bills lack {needs}: {names}{more}; "
            "give them theirs first"
        ]


# A customer's standing, moved by the dunning steps run on its unpaid invoices
# (invoices.standing); in this order, the worst last.
GOOD = "good"
PAST_DUE = "past_due"
RESTRICTED = "restricted"
SUSPENDED = "suspended"
STANDINGS = [
    (GOOD, _("Good")),
    (PAST_DUE, _("Past due")),
    (RESTRICTED, _("Restricted")),
    (SUSPENDED, _("Suspended")),
]


class EmailAddressField(models.EmailField):
    """A customer's email address, internationalized ones too (`経理@sakura.jp`:
    common.email_addresses), which Django's EmailField refuses."""

    default_validators = [validate_email_address]

    def formfield(self, **kwargs):
        # A text field: the model's validator checks it (forms.EmailField would
        # refuse a non-ASCII local part first).
        return models.CharField.formfield(self, **kwargs)


class Customer(models.Model):
    """A customer of the AI product, addressed in the API by `external_id`."""

    external_id = models.CharField(
        max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("external id")
    )
    name = models.CharField(max_length=255, verbose_name=_("name"))
    email = EmailAddressField(blank=True, verbose_name=_("email"))
    currency = models.CharField(
        max_length=3, help_text=_("ISO 4217 code, e.g. USD"), verbose_name=_("currency")
    )
    timezone = models.CharField(max_length=64, default="UTC", verbose_name=_("timezone"))
    address = models.JSONField(default=dict, blank=True, verbose_name=_("address"))
    tax_id = models.CharField(max_length=64, blank=True, default="", verbose_name=_("tax id"))
    spend_limit = models.DecimalField(
        max_digits=28,
        decimal_places=10,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Most the customer may spend in one period, in its currency. Empty: no limit."),
        verbose_name=_("spend limit"),
    )
    SPEND_LIMIT_HARD = "hard"
    SPEND_LIMIT_SOFT = "soft"
    SPEND_LIMIT_MODES = [
        (SPEND_LIMIT_HARD, _("Hard: refuse usage past the limit")),
        (SPEND_LIMIT_SOFT, _("Soft: allow usage past the limit, and alert")),
    ]
    spend_limit_mode = models.CharField(
        max_length=8,
        choices=SPEND_LIMIT_MODES,
        default=SPEND_LIMIT_HARD,
        verbose_name=_("spend limit mode"),
    )
    payment_terms_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text=(
            _(
                "Days from an invoice's finalization to its due date; 0: due at once. "
                "Empty: the default, BILLING_PAYMENT_TERMS_DAYS."
            )
        ),
        verbose_name=_("payment terms days"),
    )
    locale = models.CharField(
        max_length=8,
        choices=LOCALES,
        default="en",
        help_text=_("The language of the customer's invoices, credit notes and their emails."),
        verbose_name=_("locale"),
    )
    TAX_NONE = "none"
    TAX_EXEMPT = "exempt"
    TAX_REVERSE_CHARGE = "reverse_charge"
    TAX_EXEMPTIONS = [
        (TAX_NONE, _("Taxed")),
        (TAX_EXEMPT, _("Exempt: no tax")),
        (TAX_REVERSE_CHARGE, _("Reverse charge: no tax, the customer accounts for it")),
    ]
    tax_exempt = models.CharField(
        max_length=16, choices=TAX_EXEMPTIONS, default=TAX_NONE, verbose_name=_("tax exempt")
    )
    billing_entity = models.ForeignKey(
        BillingEntity,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        help_text=_("The seller on its invoices. Empty: the default billing entity."),
        verbose_name=_("billing entity"),
    )
    tax_rates = models.ManyToManyField(
        "plans.TaxRate",
        blank=True,
        related_name="customers",
        help_text=_("Charged on the customer's invoices. None: the rates marked default."),
        verbose_name=_("tax rates"),
    )
    invoice_emails = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            'Where finalized invoices and credit notes are emailed, e.g. ["ap@acme.test"].'
        ),
        verbose_name=_("invoice emails"),
    )
    # E-invoicing (EN 16931): what the buyer's e-invoices carry.
    buyer_reference = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text=_("The reference the buyer asked its invoices to carry (BT-10)."),
        verbose_name=_("buyer reference"),
    )
    order_reference = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text=_("The buyer's purchase order number (BT-13)."),
        verbose_name=_("purchase order reference"),
    )
    leitweg_id = models.CharField(
        max_length=46,
        blank=True,
        default="",
        db_default="",
        help_text=_("German public buyers' routing id, e.g. 04011000-12345-67."),
        verbose_name=_("Leitweg-ID"),
    )
    peppol_id = models.CharField(
        max_length=104,
        blank=True,
        default="",
        db_default="",
        help_text=_("The buyer's Peppol endpoint (scheme:id), e.g. 0208:0123456749."),
        verbose_name=_("Peppol endpoint (scheme:id)"),
    )
    e_invoice_format = models.CharField(
        max_length=16,
        blank=True,
        default="",
        db_default="",
        choices=E_INVOICE_FORMATS,
        help_text=_("The e-invoice its invoices are also issued as. Empty: none."),
        verbose_name=_("e-invoice format"),
    )
    sepa_mandate_reference = models.CharField(
        max_length=35,
        blank=True,
        default="",
        db_default="",
        help_text=_("The SEPA direct debit mandate its invoices are collected under."),
        verbose_name=_("SEPA mandate reference"),
    )
    debtor_iban = models.CharField(
        max_length=42,
        blank=True,
        default="",
        db_default="",
        help_text=_("The account its direct debits are collected from (BT-91)."),
        verbose_name=_("IBAN debited"),
    )
    card_last_digits = models.CharField(
        max_length=4,
        blank=True,
        default="",
        db_default="",
        help_text=_(
            "The last 4 digits of the card its invoices are paid with (BT-87), never "
            "the whole number."
        ),
        verbose_name=_("card's last 4 digits"),
    )
    card_holder_name = models.CharField(
        max_length=128,
        blank=True,
        default="",
        db_default="",
        help_text=_("The name on that card (BT-88)."),
        verbose_name=_("card holder"),
    )
    alert_thresholds = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            _(
                "Percentages of the included units at which a usage alert fires, e.g. "
                "[50, 75, 90, 100]. Empty: the BILLING_ALERT_THRESHOLDS setting."
            )
        ),
        verbose_name=_("alert thresholds"),
    )
    # The limits the customer sets itself (customers.limits: budget, caps, alert
    # thresholds of the budget, channels), as customers.limits.limits_normalized
    # writes them; {}: none. Read with the customer by `check` (billing.usage.live).
    # The column's default is the empty object (0022); rows that 0018 gave the JSON
    # string "{}" were turned into it there, and customers.limits reads any value
    # that is not an object as "no limits".
    limits = models.JSONField(
        default=dict,
        db_default=models.Value({}, output_field=models.JSONField()),
        blank=True,
        editable=False,
        verbose_name=_("limits set by the customer"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    # The Stripe customer (cus_...) payments are collected from; created once, on
    # first use, by invoices.collection. Empty without Stripe.
    stripe_customer_id = models.CharField(
        max_length=255, blank=True, default="", editable=False, verbose_name=_("stripe customer id")
    )

    # Dunning (invoices.dunning): the policy followed (empty: the one marked
    # default, unless dunning is off), a pause of its steps, and the standing they
    # set, which `check` reads with the customer.
    dunning_policy = models.ForeignKey(
        "invoices.DunningPolicy",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        help_text=_("Empty: the policy marked default."),
        verbose_name=_("dunning policy"),
    )
    # Database defaults on the columns added to customers: rows written by code that
    # predates them (a migration test's historical models) still insert.
    dunning_off = models.BooleanField(
        default=False,
        db_default=False,
        help_text=_("No reminders, retries or restrictions for this customer."),
        verbose_name=_("no dunning"),
    )
    dunning_paused_until = models.DateTimeField(
        null=True, blank=True, verbose_name=_("dunning paused until")
    )
    dunning_paused_by = models.CharField(
        max_length=255, blank=True, default="", db_default="", verbose_name=_("dunning paused by")
    )
    standing = models.CharField(
        max_length=12,
        choices=STANDINGS,
        default=GOOD,
        db_default=GOOD,
        db_index=True,
        editable=False,
        verbose_name=_("standing"),
    )
    standing_since = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name=_("standing since")
    )
    standing_invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("standing because of"),
    )

    history = audit_history()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["external_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(spend_limit__isnull=True) | models.Q(spend_limit__gte=0),
                name="customer_spend_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"

    @property
    def payment_terms(self) -> int:
        """Days from an invoice's finalization to its due date."""
        if self.payment_terms_days is None:
            return settings.BILLING_PAYMENT_TERMS_DAYS
        return self.payment_terms_days

    def clean(self):
        errors = {}
        if self.currency and not is_known_currency(self.currency):
            errors["currency"] = f"unknown currency {self.currency!r}"
        if threshold_errors := alert_threshold_errors(self.alert_thresholds):
            errors["alert_thresholds"] = threshold_errors
        errors |= customer_e_invoice_errors(
            **{name: getattr(self, name) or "" for name in E_INVOICE_CHECKED},
            seller_means=seller_payment_means(self.seller()),
        )
        if errors:
            raise ValidationError(errors)

    def seller(self) -> BillingEntity | None:
        """The entity that bills it: its own, else the default (None without any)."""
        if self.billing_entity_id is not None:
            return self.billing_entity
        return BillingEntity.objects.filter(is_default=True).first()

    def payment_detail_errors(self, seller_means: str) -> dict[str, list[str]]:
        """What its e-invoices would lack were its seller paid by `seller_means`."""
        values = {name: getattr(self, name) or "" for name in E_INVOICE_CHECKED}
        errors = customer_e_invoice_errors(**values, seller_means=seller_means)
        return {
            name: texts
            for name, texts in errors.items()
            if name in ("sepa_mandate_reference", "debtor_iban", "card_last_digits")
        }


class CustomerLimitChange(models.Model):
    """One change of a customer's own limits (customers.limits.limits_set): who
    made it (a manage link's holder as the merchant named them, an API key, an
    admin user), through what, when, and the limits before and after. Never
    edited; the portal, the API and the admin show them."""

    VIA_PORTAL = "portal"
    VIA_API = "api"
    VIA_ADMIN = "admin"
    VIAS = [
        (VIA_PORTAL, _("Portal")),
        (VIA_API, _("API")),
        (VIA_ADMIN, _("Admin")),
    ]

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="limit_changes",
        verbose_name=_("customer"),
    )
    changed_at = models.DateTimeField(verbose_name=_("changed at"))
    by = models.CharField(max_length=255, verbose_name=_("by"))
    via = models.CharField(max_length=8, choices=VIAS, verbose_name=_("through"))
    before = models.JSONField(default=dict, verbose_name=_("before"))
    after = models.JSONField(default=dict, verbose_name=_("after"))

    class Meta:
        verbose_name = _("limit change")
        verbose_name_plural = _("limit changes")
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-changed_at"], name="limit_change_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.changed_at:%Y-%m-%d %H:%M} {self.by}"


from customers.access_models import ApiKey, PortalLink  # noqa: E402, F401
from customers.vat_check_models import VatCheck  # noqa: E402, F401

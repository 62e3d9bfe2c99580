"""The pricing catalog: meters, plans and their versions, charges, tiers, credit packs.

A published version is immutable: plans.services refuses every change to it,
and the admin shows it read-only. New prices are a new version.
"""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from djmoney.models.fields import MoneyField

from common.e_invoice_codes import STANDARD, VAT_CATEGORIES
from common.history import audit_history
from common.money import AMOUNT, format_decimal
from common.vocabulary import ConsumptionModel, WhenExhausted
from plans.pricing import GRADUATED, PACKAGE, PER_UNIT, VOLUME, PricingSpec, TierSpec

CODE_MAX_LENGTH = 64
# UN/ECE Recommendation 20 "one": the unit of a count (common.e_invoice_codes).
DEFAULT_UNIT_CODE = "C62"


class Meter(models.Model):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    AGGREGATIONS = [
        (COUNT, _("Count of events")),
        (SUM, _("Sum of a property")),
        (MAX, _("Maximum of a property")),
        (UNIQUE_COUNT, _("Count of distinct values of a property")),
        (LATEST, _("Latest value of a property")),
    ]

    code = models.CharField(max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    event_name = models.CharField(max_length=255, db_index=True, verbose_name=_("event name"))
    aggregation = models.CharField(
        max_length=16, choices=AGGREGATIONS, verbose_name=_("aggregation")
    )
    value_property = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("value property")
    )
    unique_property = models.CharField(
        max_length=255, blank=True, default="", verbose_name=_("unique property")
    )
    filters = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Property equals one of values, e.g. {"model": ["gpt-4o"]}.'),
        verbose_name=_("filters"),
    )
    group_by = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Up to 3 event properties the usage is broken down by, e.g. ["model"].'),
        verbose_name=_("group by"),
    )
    invoice_breakdown = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text=_(
            "One of the group_by properties: invoices list the meter's quantity split "
            "by its values (the amount is still priced on the whole quantity). Empty: not split."
        ),
        verbose_name=_("invoice breakdown"),
    )
    unit_code = models.CharField(
        max_length=3,
        default=DEFAULT_UNIT_CODE,
        db_default=DEFAULT_UNIT_CODE,
        help_text=_(
            "UN/ECE Recommendation 20 code of its unit on e-invoices, e.g. C62 (one), "
            "HUR (hour), SEC (second)."
        ),
        verbose_name=_("unit code"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    # Ingestion caches meters per process and reloads them when this moves.
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = audit_history()

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        ordering = ["code"]

    def __str__(self) -> str:
        # "LLM tokens (llm_tokens)": pickers find a meter by either.
        return f"{self.name} ({self.code})" if self.name else self.code


class Plan(models.Model):
    code = models.CharField(max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    description = models.TextField(blank=True, default="", verbose_name=_("description"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code


class PlanVersion(models.Model):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"
    STATUSES = [(DRAFT, _("Draft")), (PUBLISHED, _("Published")), (ARCHIVED, _("Archived"))]

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    INTERVALS = [(MONTH, _("Monthly")), (QUARTER, _("Quarterly")), (YEAR, _("Yearly"))]

    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="versions", verbose_name=_("plan")
    )
    number = models.PositiveIntegerField(verbose_name=_("number"))
    status = models.CharField(
        max_length=16, choices=STATUSES, default=DRAFT, db_index=True, verbose_name=_("status")
    )
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    interval = models.CharField(
        max_length=16, choices=INTERVALS, default=MONTH, verbose_name=_("interval")
    )
    base_fee = models.DecimalField(
        **AMOUNT, default=Decimal(0), help_text=_("Billed in advance."), verbose_name=_("base fee")
    )
    seat_price = models.DecimalField(
        **AMOUNT, null=True, blank=True, help_text=_("Per seat."), verbose_name=_("seat price")
    )
    minimum_commitment = models.DecimalField(
        **AMOUNT,
        null=True,
        blank=True,
        help_text=_("Per period; a true-up line tops up to it."),
        verbose_name=_("minimum commitment"),
    )
    trial_days = models.PositiveIntegerField(default=0, verbose_name=_("trial days"))
    progressive_billing_threshold = models.DecimalField(
        **AMOUNT,
        null=True,
        blank=True,
        help_text=_(
            "When a period's usage not yet invoiced reaches this amount, a threshold "
            "invoice bills it at once; the period's close bills the rest."
        ),
        verbose_name=_("progressive billing threshold"),
    )
    credits_per_period = models.DecimalField(
        **AMOUNT,
        null=True,
        blank=True,
        help_text=_("Credits granted each period."),
        verbose_name=_("credits per period"),
    )
    # Empty: a period's credits all expire at its end (plans.credits_rollover).
    credits_rollover_percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_(
            "The share of a period's unused credits that rolls over into later periods; "
            "empty: they all expire at the period's end."
        ),
        verbose_name=_("credits rollover percent"),
    )
    credits_rollover_periods = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Rolled-over credits expire at the end of this many periods after their own."),
        verbose_name=_("rollover expires after periods"),
    )
    fee_unit_code = models.CharField(
        max_length=3,
        default=DEFAULT_UNIT_CODE,
        db_default=DEFAULT_UNIT_CODE,
        help_text=_(
            "UN/ECE Recommendation 20 code of the unit of its base fee and seats on "
            "e-invoices, e.g. C62 (one), MON (month)."
        ),
        verbose_name=_("fee unit code"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    published_at = models.DateTimeField(null=True, blank=True, verbose_name=_("published at"))
    archived_at = models.DateTimeField(null=True, blank=True, verbose_name=_("archived at"))

    history = audit_history()

    class Meta:
        verbose_name = _("plan version")
        verbose_name_plural = _("plan versions")
        ordering = ["plan__code", "number"]
        # Changing a version's lifecycle is not editing it: roles get these on their own.
        permissions = [
            ("publish_planversion", "Can publish plan versions"),
            ("archive_planversion", "Can archive plan versions"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="plan_version_number_unique"),
            models.CheckConstraint(
                condition=models.Q(base_fee__gte=0), name="version_base_fee_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(seat_price__isnull=True) | models.Q(seat_price__gte=0),
                name="version_seat_price_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_commitment__isnull=True)
                | models.Q(minimum_commitment__gte=0),
                name="version_minimum_commitment_gte_0",
            ),
            models.CheckConstraint(
                condition=models.Q(progressive_billing_threshold__isnull=True)
                | models.Q(progressive_billing_threshold__gt=0),
                name="version_progressive_billing_threshold_gt_0",
            ),
            models.CheckConstraint(
                condition=models.Q(credits_per_period__isnull=True)
                | models.Q(credits_per_period__gte=0),
                name="version_credits_per_period_gte_0",
            ),
            # A rollover is a percent in (0, 100] and a number of periods, both or neither.
            models.CheckConstraint(
                condition=models.Q(
                    credits_rollover_percent__isnull=True, credits_rollover_periods__isnull=True
                )
                | models.Q(
                    credits_rollover_percent__gt=0,
                    credits_rollover_percent__lte=100,
                    credits_rollover_periods__gte=1,
                ),
                name="version_credits_rollover",
            ),
        ]

    def __str__(self) -> str:
        # "Pro v2": what finance calls it; the status is shown beside it where it matters.
        return f"{self.plan.name or self.plan.code} v{self.number}"


PER_HELP = _("How many units the price is for: 1,000,000 for a price per million tokens.")


class Charge(models.Model):
    """How one meter is charged on one version: the feature's consumption model."""

    SCHEME_CHOICES = [
        (PER_UNIT, _("Per unit")),
        (PACKAGE, _("Package")),
        (GRADUATED, _("Graduated")),
        (VOLUME, _("Volume")),
    ]

    version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="charges", verbose_name=_("version")
    )
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="charges", verbose_name=_("meter")
    )
    model = models.CharField(
        max_length=16, choices=ConsumptionModel.choices, verbose_name=_("model")
    )
    included_units = models.DecimalField(
        **AMOUNT, null=True, blank=True, verbose_name=_("included units")
    )
    credits_per_unit = models.DecimalField(
        **AMOUNT, null=True, blank=True, verbose_name=_("credits per unit")
    )
    when_exhausted = models.CharField(
        max_length=8,
        choices=WhenExhausted.choices,
        default=WhenExhausted.BLOCK,
        help_text=_(
            "Credits and balance charges: what happens to usage the wallet cannot pay "
            "for. A credits charge that bills needs pricing: the money price of such a unit."
        ),
        verbose_name=_("when exhausted"),
    )
    pricing_scheme = models.CharField(
        max_length=16,
        choices=SCHEME_CHOICES,
        blank=True,
        default="",
        verbose_name=_("pricing scheme"),
    )
    unit_price = models.DecimalField(**AMOUNT, null=True, blank=True, verbose_name=_("unit price"))
    package_size = models.DecimalField(
        **AMOUNT, null=True, blank=True, verbose_name=_("package size")
    )
    package_price = models.DecimalField(
        **AMOUNT, null=True, blank=True, verbose_name=_("package price")
    )
    # Per-unit pricing: how many units unit_price is for (tiers carry their own).
    per = models.DecimalField(
        **AMOUNT, default=Decimal(1), help_text=PER_HELP, verbose_name=_("per")
    )
    # A rate card (plans.rate_card_pricing): the meter's group_by properties
    # the charge prices by, its rows in `rates`; [] for one price.
    price_by = models.JSONField(default=list, blank=True, verbose_name=_("price by"))

    history = audit_history()

    class Meta:
        verbose_name = _("charge")
        verbose_name_plural = _("charges")
        ordering = ["version", "id"]
        constraints = [
            # One consumption model per feature: one charge per meter per version.
            models.UniqueConstraint(fields=["version", "meter"], name="charge_one_per_meter"),
            models.CheckConstraint(condition=models.Q(per__gt=0), name="charge_per_gt_0"),
        ]

    def __str__(self) -> str:
        return self.meter.name or self.meter.code

    def pricing_spec(self, tiers: tuple[TierSpec, ...] | None = None) -> PricingSpec | None:
        """The charge's pricing; `tiers` when the caller has read them already."""
        if not self.pricing_scheme:
            return None
        if tiers is None:
            tiers = tuple(
                TierSpec(up_to=t.up_to, unit_price=t.unit_price, flat_fee=t.flat_fee, per=t.per)
                for t in self.tiers.all()
            )
        return PricingSpec(
            scheme=self.pricing_scheme,
            unit_price=self.unit_price,
            per=self.per,
            package_size=self.package_size,
            package_price=self.package_price,
            tiers=tiers,
        )


class ChargeRate(models.Model):
    """One row of a charge's rate card: the usage it prices (`when`: values of
    some of the charge's price_by properties, {} for the default row) and its
    price (`pricing`, as the API writes it) or, on a credits charge, the credits
    it draws for every `per` units."""

    charge = models.ForeignKey(
        Charge, on_delete=models.CASCADE, related_name="rates", verbose_name=_("charge")
    )
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    when = models.JSONField(default=dict, blank=True, verbose_name=_("when"))
    pricing = models.JSONField(null=True, blank=True, verbose_name=_("pricing"))
    credits_per_unit = models.DecimalField(
        **AMOUNT, null=True, blank=True, verbose_name=_("credits per unit")
    )
    per = models.DecimalField(**AMOUNT, default=Decimal(1), verbose_name=_("per"))

    history = audit_history()

    class Meta:
        ordering = ["charge", "position", "id"]

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.when.items())) or "default"


class PriceTier(models.Model):
    charge = models.ForeignKey(
        Charge, on_delete=models.CASCADE, related_name="tiers", verbose_name=_("charge")
    )
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    up_to = models.DecimalField(
        **AMOUNT,
        null=True,
        blank=True,
        help_text=_(
            "Counts the units past the charge's included ones: with 1,000 included, a tier "
            "up to 5,000 ends at 6,000 units used. Inclusive; empty for the last, open tier."
        ),
        verbose_name=_("up to"),
    )
    unit_price = models.DecimalField(**AMOUNT, verbose_name=_("unit price"))
    per = models.DecimalField(
        **AMOUNT, default=Decimal(1), help_text=PER_HELP, verbose_name=_("per")
    )
    flat_fee = models.DecimalField(**AMOUNT, default=Decimal(0), verbose_name=_("flat fee"))

    history = audit_history()

    class Meta:
        verbose_name = _("price tier")
        verbose_name_plural = _("price tiers")
        ordering = ["charge", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(unit_price__gte=0), name="tier_unit_price_gte_0"
            ),
            models.CheckConstraint(condition=models.Q(flat_fee__gte=0), name="tier_flat_fee_gte_0"),
            models.CheckConstraint(condition=models.Q(per__gt=0), name="tier_per_gt_0"),
        ]

    def __str__(self) -> str:
        # Shown on the version's page, in the admin user's language.
        return gettext("Tier %(number)s") % {"number": self.position + 1}


class CreditPack(models.Model):
    """A purchasable block of credits, e.g. 100 credits for USD 99.00."""

    code = models.CharField(max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=255, blank=True, default="", verbose_name=_("name"))
    credits = models.DecimalField(**AMOUNT, verbose_name=_("credits"))
    price = MoneyField(**AMOUNT, default_currency=None, verbose_name=_("price"))
    active = models.BooleanField(default=True, verbose_name=_("active"))
    # The meter codes its credits pay for; empty: every meter (plans.meter_scope).
    applies_to = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The meters its credits pay for; empty: every meter."),
        verbose_name=_("applies to"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("credit pack")
        verbose_name_plural = _("credit packs")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits__gt=0), name="credit_pack_credits_gt_0"
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="credit_pack_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class TaxRate(models.Model):
    """A tax rate finance charges on invoices, e.g. TVA 20 % for France. Once an
    invoice was taxed at it, it is never changed or deleted, only archived
    (`active` off): the invoice keeps what it charged. The customers holding it
    as their own move to a replacement when it is archived (plans.services)."""

    code = models.CharField(max_length=CODE_MAX_LENGTH, unique=True, verbose_name=_("code"))
    name = models.CharField(
        max_length=100,
        help_text=_("Printed on invoices, e.g. 'TVA' or 'VAT'."),
        verbose_name=_("name"),
    )
    percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        help_text=_("e.g. 20 for 20 %; from 0 to 100."),
        verbose_name=_("percentage"),
    )
    country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        help_text=(
            _(
                "ISO 3166-1 alpha-2 code. A default rate with a country applies only to "
                "customers whose address is in that country; empty: every customer."
            )
        ),
        verbose_name=_("country"),
    )
    is_default = models.BooleanField(
        _("default"),
        default=False,
        help_text=_("Charged to every customer without tax rates of its own."),
    )
    vat_category = models.CharField(
        max_length=2,
        choices=VAT_CATEGORIES,
        default=STANDARD,
        db_default=STANDARD,
        help_text=_("Its VAT category on e-invoices (EN 16931 BT-118)."),
        verbose_name=_("VAT category"),
    )
    exemption_reason = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text=_("Why no VAT is charged, printed on e-invoices; required for Exempt."),
        verbose_name=_("exemption reason"),
    )
    active = models.BooleanField(
        default=True, help_text=_("Off: archived, charged no more."), verbose_name=_("active")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("tax rate")
        verbose_name_plural = _("tax rates")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(percentage__gte=0, percentage__lte=100),
                name="tax_rate_percentage_0_100",
            ),
            # One active default rate per country (and one without a country):
            # two would both be charged to the same customers (plans.tax_rates).
            models.UniqueConstraint(
                fields=["country"],
                condition=models.Q(is_default=True, active=True),
                name="tax_rate_one_default_per_country",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {format_decimal(self.percentage)} % ({self.code})"


from plans.cost_models import CostRate  # noqa: E402, F401
from plans.coupon_models import Coupon  # noqa: E402, F401
from plans.exchange_rate_models import ExchangeRate  # noqa: E402, F401
from plans.feature_models import Feature, VersionFeature  # noqa: E402, F401
from plans.simulation_models import PriceSimulation, PriceSimulationRow  # noqa: E402, F401

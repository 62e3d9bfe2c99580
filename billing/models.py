"""Subscriptions and their history, the bulk migrations of subscriptions between
versions, and the alerts raised on usage with the webhook endpoints and
deliveries that announce them. The usage storage (billing.usage_models), billed
periods, breakdowns and discounts have modules of their own, re-exported here.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from common.customer_text import customer_zone, day_time
from common.history import audit_history
from common.periods import whole_period
from customers.models import Customer

MONEY = {"max_digits": 28, "decimal_places": 10}


class Subscription(models.Model):
    """A customer on a plan version. At most one live (trialing or active)
    subscription per customer: two could charge the same meter twice."""

    TRIALING = "trialing"
    ACTIVE = "active"
    CANCELED = "canceled"
    ENDED = "ended"
    STATUSES = [
        (TRIALING, _("Trialing")),
        (ACTIVE, pgettext_lazy("status", "Active")),
        (CANCELED, _("Canceled")),
        (ENDED, _("Ended")),
    ]
    LIVE = (TRIALING, ACTIVE)

    ANNIVERSARY = "anniversary"
    CALENDAR = "calendar"
    ANCHORS = [(ANNIVERSARY, _("Anniversary of the start")), (CALENDAR, _("Calendar month"))]

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("customer")
    )
    version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("version"),
    )
    status = models.CharField(
        max_length=16, choices=STATUSES, db_index=True, verbose_name=_("status")
    )
    billing_anchor = models.CharField(
        max_length=16, choices=ANCHORS, default=ANNIVERSARY, verbose_name=_("billing anchor")
    )
    started_at = models.DateTimeField(verbose_name=_("started at"))
    # Periods are counted from here: the start, or the end of a trial.
    anchor_at = models.DateTimeField(verbose_name=_("anchor at"))
    trial_end = models.DateTimeField(null=True, blank=True, verbose_name=_("trial end"))
    current_period_start = models.DateTimeField(verbose_name=_("current period start"))
    current_period_end = models.DateTimeField(verbose_name=_("current period end"))
    seats = models.PositiveIntegerField(default=1, verbose_name=_("seats"))
    # Usage before this (an immediate plan change) was billed already.
    usage_from = models.DateTimeField(null=True, blank=True, verbose_name=_("usage from"))
    # Applied by the close at the end of the current period.
    scheduled_version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("scheduled version"),
    )
    cancel_at_period_end = models.BooleanField(
        default=False, verbose_name=_("cancel at period end")
    )
    # A deal: the version's terms this subscription replaces (plans.overrides), and
    # those that replace them from the next period (None: no change then).
    overrides = models.JSONField(default=dict, blank=True, verbose_name=_("overrides"))
    next_overrides = models.JSONField(null=True, blank=True, verbose_name=_("next overrides"))
    canceled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("canceled at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    history = audit_history()

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(status__in=("trialing", "active")),
                name="subscription_one_live_per_customer",
            ),
            models.CheckConstraint(
                condition=models.Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_not_empty",
            ),
        ]
        permissions = [
            ("migrate_subscription", "Can migrate subscriptions between versions"),
            ("set_deal_subscription", "Can set a subscription's deal and discount"),
        ]

    def __str__(self) -> str:
        """'Acme Inc — Pro v2 (active)': the customer (its name, else its external
        id), the plan's name and version, the status. Select the customer and
        version__plan with it where many are listed."""
        if self.customer_id is None or self.version_id is None:
            return gettext("New subscription")
        customer = self.customer.name or self.customer.external_id
        version = self.version
        status = self.get_status_display().lower()
        return f"{customer} — {version.plan.name} v{version.number} ({status})"

    @staticmethod
    def fixed_fees_billed_while(status: str) -> bool:
        """The trial rule, once: a subscription in its trial is billed no fixed fee
        (no base fee, no seats, no proration or seat change of either); its fees
        are billed from the period after the trial, in advance as any other's."""
        return status != Subscription.TRIALING

    @property
    def bills_fixed_fees(self) -> bool:
        return self.fixed_fees_billed_while(self.status)

    @classmethod
    def first_calendar_period(cls) -> models.Q:
        """The subscriptions whose current period whole_period makes part of a
        whole one (its `calendar_first`, as a filter): a calendar subscription's
        first, from its start. Keep the two together."""
        return models.Q(
            billing_anchor=cls.CALENDAR,
            current_period_start=models.F("anchor_at"),
            started_at=models.F("anchor_at"),
        )

    def whole_period(
        self, start: datetime, end: datetime, *, interval: str
    ) -> tuple[datetime, datetime]:
        """The whole period that this subscription's period [start, end) is a part
        of, at a version of `interval`, for every proration in it (with
        common.periods.period_share). A calendar subscription's first period,
        from its start, is part of the customer's month (common.periods.
        whole_period); its fixed fees are billed for that share. Every other
        period is whole, and so are those of a subscription that began with a
        trial (periods are anchored at the trial's end, anchor_at): the close
        bills the fees of the period after a trial whole."""
        calendar_first = (
            self.billing_anchor == self.CALENDAR and start == self.anchor_at == self.started_at
        )
        zone = customer_zone(self.customer) if calendar_first else UTC
        return whole_period(start, end, zone, interval=interval, calendar_first=calendar_first)


class SubscriptionChange(models.Model):
    """One row for every change to a subscription: what, when, how."""

    CREATED = "created"
    PLAN_CHANGE = "plan_change"
    SEATS = "seats"
    CANCEL = "cancel"
    KINDS = [
        (CREATED, _("Created")),
        (PLAN_CHANGE, _("Plan change")),
        (SEATS, _("Seats")),
        (CANCEL, pgettext_lazy("subscription change", "Cancel")),
    ]

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.PROTECT,
        related_name="changes",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(max_length=16, choices=KINDS, verbose_name=_("kind"))
    from_version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("from version"),
    )
    to_version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("to version"),
    )
    effective_at = models.DateTimeField(verbose_name=_("effective at"))
    how = models.CharField(max_length=16, blank=True, default="", verbose_name=_("how"))
    details = models.JSONField(default=dict, blank=True, verbose_name=_("details"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("subscription change")
        verbose_name_plural = _("subscription changes")
        ordering = ["subscription", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}, {day_time(self.effective_at, UTC)}"


class PlanMigration(models.Model):
    """Ops moving a set of subscriptions to one version (now, prorated, or at
    period end), run by a task after a preview. One per confirmed preview:
    `token` makes a confirmation sent twice one migration."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATUSES = [
        (PENDING, _("Pending")),
        (RUNNING, _("Running")),
        (DONE, _("Done")),
        (FAILED, _("Failed")),
    ]

    IMMEDIATE = "immediate"
    PERIOD_END = "period_end"
    EFFECTIVE = [(IMMEDIATE, _("Now, prorated")), (PERIOD_END, _("At the end of each period"))]

    token = models.UUIDField(unique=True, editable=False, verbose_name=_("token"))
    to_version = models.ForeignKey(
        "plans.PlanVersion", on_delete=models.PROTECT, related_name="+", verbose_name=_("target")
    )
    effective = models.CharField(max_length=16, choices=EFFECTIVE, verbose_name=_("effective"))
    # The moment of an immediate change, fixed by the preview; none at period end.
    at = models.DateTimeField(null=True, blank=True, verbose_name=_("at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, verbose_name=_("status")
    )
    total = models.PositiveIntegerField(default=0, verbose_name=_("total"))
    # Items finished, whatever their outcome (done, skipped or failed).
    done_count = models.PositiveIntegerField(default=0, verbose_name=_("done count"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("plan migration")
        verbose_name_plural = _("plan migrations")
        ordering = ["-id"]

    def __str__(self) -> str:
        return gettext("Migration #{number} to {version} ({status})").format(
            number=self.pk, version=self.to_version, status=self.get_status_display().lower()
        )


class PlanMigrationItem(models.Model):
    """One subscription of a migration, with the amounts its preview showed and
    the invoice the change wrote. Leaves pending once."""

    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    STATUSES = [
        (PENDING, _("Pending")),
        (DONE, _("Done")),
        (SKIPPED, _("Skipped")),
        (FAILED, _("Failed")),
    ]

    migration = models.ForeignKey(
        PlanMigration, on_delete=models.CASCADE, related_name="items", verbose_name=_("migration")
    )
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="+", verbose_name=_("subscription")
    )
    from_version = models.ForeignKey(
        "plans.PlanVersion",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("from version"),
    )
    status = models.CharField(
        max_length=16, choices=STATUSES, default=PENDING, verbose_name=_("status")
    )
    message = models.CharField(max_length=500, blank=True, default="", verbose_name=_("message"))
    # The message in the admin's other languages (common.stored_words); the
    # API reads `message`, in English.
    message_words = models.JSONField(
        blank=True, default=dict, verbose_name=_("message in other languages")
    )
    invoice = models.ForeignKey(
        "invoices.Invoice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("invoice"),
    )
    # Immediate: usage so far, credit, charge; period end: the next period's fixed fees.
    preview_usage = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("preview usage")
    )
    preview_credit = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("preview credit")
    )
    preview_charge = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("preview charge")
    )
    preview_next_fees = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("preview next fees")
    )
    preview_total = models.DecimalField(
        **MONEY, null=True, blank=True, verbose_name=_("preview total")
    )

    class Meta:
        verbose_name = _("plan migration item")
        verbose_name_plural = _("plan migration items")
        ordering = ["migration", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["migration", "subscription"], name="plan_migration_item_once"
            )
        ]
        indexes = [models.Index(fields=["migration", "status"], name="plan_migration_item_status")]

    def __str__(self) -> str:
        return gettext("#{subscription} in migration {migration} ({status})").format(
            subscription=self.subscription_id,
            migration=self.migration_id,
            status=self.get_status_display().lower(),
        )


class Alert(models.Model):
    """A notice that fired once: a usage threshold, a low balance, an automatic
    top-up or the spend limit, to the customer; a customer's low margin or a model
    no rate card prices, to the seller's team only. The unique key makes it fire once per period and
    threshold, however many checks race to raise it."""

    USAGE_THRESHOLD = "usage_threshold"
    LOW_BALANCE = "low_balance"
    AUTO_TOP_UP = "auto_top_up"
    SPEND_LIMIT = "spend_limit"
    PAYMENT_FAILED = "payment_failed"
    MARGIN_LOW = "margin_low"
    # A threshold of the budget the customer set itself (customers.limits).
    BUDGET_THRESHOLD = "budget_threshold"
    # A usage source sent a model no rate card names (billing.integrations.unpriced_alerts):
    # to the seller's team only; `customer` is the one whose call first carried it.
    UNPRICED_MODEL = "unpriced_model"
    KINDS = [
        (USAGE_THRESHOLD, _("Usage threshold")),
        (LOW_BALANCE, _("Low balance")),
        (AUTO_TOP_UP, _("Auto top-up")),
        (SPEND_LIMIT, _("Spend limit")),
        (PAYMENT_FAILED, _("Payment failed")),
        (MARGIN_LOW, _("Margin low")),
        (BUDGET_THRESHOLD, _("Budget threshold")),
        (UNPRICED_MODEL, _("Unpriced model")),
    ]
    # The webhook event of a kind, when it is not alert.<kind>.
    EVENT_TYPES = {MARGIN_LOW: "customer.margin_low"}

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="alerts", verbose_name=_("customer")
    )
    kind = models.CharField(max_length=32, choices=KINDS, verbose_name=_("kind"))
    # The billing period the alert belongs to; the next period arms it again.
    period_start = models.DateTimeField(verbose_name=_("period start"))
    # What fired within the period, e.g. "prompts:75", "spend_limit", "credits".
    key = models.CharField(max_length=255, verbose_name=_("key"))
    payload = models.JSONField(default=dict, blank=True, verbose_name=_("payload"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    emailed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("emailed at"))

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind", "period_start", "key"], name="alert_once_per_period"
            )
        ]
        indexes = [models.Index(fields=["kind", "created_at"], name="alert_kind_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.customer_id}, {self.period_start:%Y-%m-%d})"

    @property
    def event_type(self) -> str:
        return self.event_type_of(self.kind)

    @classmethod
    def event_type_of(cls, kind: str) -> str:
        return cls.EVENT_TYPES.get(kind, f"alert.{kind}")


INVOICE_PAID = "invoice.paid"
PURCHASE_PAID = "purchase.paid"
ENTITLEMENTS_CHANGED = "subscription.entitlements_changed"
STANDING_CHANGED = "customer.standing_changed"
HOLD_EXPIRED = "hold.expired"
# Every event a webhook endpoint can subscribe to, in one list.
WEBHOOK_EVENT_TYPES = [Alert.event_type_of(kind) for kind, _ in Alert.KINDS] + [
    INVOICE_PAID,
    PURCHASE_PAID,
    ENTITLEMENTS_CHANGED,
    STANDING_CHANGED,
    HOLD_EXPIRED,
]


class AlertTeamRecipient(models.Model):
    """One of the seller's own people, emailed a copy of the customers' alerts of
    the kinds chosen (an account owner who wants to know when a customer nears its
    cap or its spend limit)."""

    email = models.EmailField(unique=True, verbose_name=_("email"))
    kinds = models.JSONField(
        default=list,
        blank=True,
        help_text=_("The alert kinds copied to this address."),
        verbose_name=_("kinds"),
    )
    active = models.BooleanField(default=True, verbose_name=_("active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("team alert recipient")
        verbose_name_plural = _("team alert recipients")
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


# Webhook endpoints and their deliveries, in a module of their own.
# The usage storage, the records of what was billed, the breakdowns and coupons'
# discounts, in modules of their own.
from billing.accrual_models import AccruedLine  # noqa: E402, F401
from billing.billed_models import BilledPeriod, ThresholdBilling  # noqa: E402, F401
from billing.breakdown_models import (  # noqa: E402, F401
    UsageGroupValue,
    UsagePropertyDailyRollup,
    UsagePropertyRollup,
    UsagePropertyUniqueValue,
)
from billing.channel_models import ChannelMessage  # noqa: E402, F401
from billing.discount_models import Discount  # noqa: E402, F401
from billing.hold_models import Hold  # noqa: E402, F401
from billing.integration_models import (  # noqa: E402, F401
    IntegrationSource,
    RefusedRecord,
    UnpricedModel,
)
from billing.journal.models import (  # noqa: E402, F401
    DeferralStart,
    JournalAccount,
    JournalEntry,
    JournalPeriodLock,
    TrialBalance,
)
from billing.outbound_pause_models import OutboundPause  # noqa: E402, F401
from billing.report_models import MarginReport  # noqa: E402, F401
from billing.usage_models import (  # noqa: E402, F401
    EventKey,
    UsageDailyRollup,
    UsageEvent,
    UsageFoldWatermark,
    UsageRollup,
    UsageUniqueValue,
)
from billing.webhook_models import WebhookDelivery, WebhookEndpoint, webhook_secret  # noqa: E402, F401

"""The subscription forms of the admin: the add form (customer, a published
version named with its price, the start with the date and time pickers) and the
changes to a live subscription. The moments typed are in the customer's time
zone, which their labels name ('Start (Asia/Tokyo)'), as the customer's
invoices read their days. They validate with the check-only functions of
billing.subscriptions and show the domain's refusals on the field they concern;
the save runs the service once."""

from django import forms
from django.forms.models import ModelChoiceIterator
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin.deals import DealFields, deal_from, deal_setup, stored_deal
from billing.admin.discounts import DiscountFields
from billing.models import Subscription
from billing.subscriptions import deals, lifecycle
from common import customer_text
from common.admin_fields import ZonedDateTimeField
from common.admin_forms import ExactIntegerField, add_billing_error, money_text
from common.errors import BillingError
from customers.models import Customer
from plans.models import PlanVersion
from plans.selectors import versions_by_plan_name

# A price per period: '49.00 USD / month'.
PER_INTERVAL = {
    PlanVersion.MONTH: _("month"),
    PlanVersion.QUARTER: _("quarter"),
    PlanVersion.YEAR: _("year"),
}


def version_choice_text(version: PlanVersion) -> str:
    """A version as ops pick it: 'Pro v2 — 49.00 USD / month', 'Team v1 — 10.00
    USD a seat / month, 14-day trial', 'Usage v1 — usage only, in USD'."""
    per = PER_INTERVAL.get(version.interval, version.interval)
    prices = []
    if version.base_fee:
        prices.append(f"{money_text(version.base_fee, version.currency)} / {per}")
    if version.seat_price:
        prices.append(
            gettext("{price} a seat / {per}").format(
                price=money_text(version.seat_price, version.currency), per=per
            )
        )
    text = " + ".join(prices) or gettext("usage only, in {currency}").format(
        currency=version.currency
    )
    if version.trial_days:
        text += gettext(", {days}-day trial").format(days=version.trial_days)
    if version.status != PlanVersion.PUBLISHED:
        text += f" ({version.get_status_display().lower()})"
    return f"{version!s} — {text}"


class _PublishedOnly(ModelChoiceIterator):
    def __init__(self, field):
        super().__init__(field)
        self.queryset = self.queryset.filter(status=PlanVersion.PUBLISHED)


class PublishedVersionField(forms.ModelChoiceField):
    """Offers the published versions, by plan name, newest first, each with its
    price. A version no longer published (the page was drawn before it was
    archived, or it came in the address) is still taken, so that the domain
    says on the field why it cannot be subscribed to."""

    iterator = _PublishedOnly

    def __init__(self, **kwargs):
        versions = versions_by_plan_name(
            PlanVersion.objects.select_related("plan"), newest_first=True
        )
        super().__init__(queryset=versions, **kwargs)

    def label_from_instance(self, obj: PlanVersion) -> str:
        return version_choice_text(obj)


class SubscriptionCreateForm(forms.ModelForm):
    version = PublishedVersionField(
        label=_("Plan version"),
        empty_label=_("Pick a published version"),
        help_text=_("Only published versions take new subscriptions."),
    )
    start = ZonedDateTimeField(
        label=_("Start"),
        help_text=_(
            "In the customer's time zone (that of the customer chosen above). "
            "May be in the past: the first period starts then."
        ),
    )

    # The domain's refusals about the plan concern the version picked.
    field_map = {"plan": "version"}

    class Meta:
        model = Subscription
        fields = ["customer", "seats", "billing_anchor"]
        labels = {"billing_anchor": _("Billing periods")}
        help_texts = {
            "billing_anchor": _(
                "Anniversary: each period starts on the day of the start; "
                "calendar month: periods follow the months of the customer's time zone."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The start is read in the zone of the customer the form is submitted
        # with (or drawn for: ?customer=): the customer is picked on this form.
        customer = self._customer()
        self.fields["start"].read_in(
            customer_text.customer_zone(customer) if customer is not None else None,
            unknown=gettext("the customer's time zone"),
        )

    def _customer(self) -> Customer | None:
        """The customer the form is bound to or drawn for, if it is one."""
        key = self.data.get("customer") if self.is_bound else self.initial.get("customer")
        if key is None or not str(key).isdigit():
            return None
        return Customer.objects.filter(pk=int(key)).first()

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                # Checked only: save_model creates the subscription once the
                # whole page is valid.
                lifecycle.subscription_create_check(
                    customer=cleaned["customer"],
                    plan=cleaned["version"].plan,
                    version_number=cleaned["version"].number,
                    seats=cleaned["seats"],
                    billing_anchor=cleaned["billing_anchor"],
                )
            except BillingError as error:
                add_billing_error(self, error, self.field_map)
        return cleaned

    def create(self, cleaned) -> Subscription:
        return lifecycle.subscription_create(
            customer=cleaned["customer"],
            plan=cleaned["version"].plan,
            version_number=cleaned["version"].number,
            start=cleaned["start"],
            seats=cleaned["seats"],
            billing_anchor=cleaned["billing_anchor"],
        )


class SubscriptionChangeForm(DealFields, DiscountFields, forms.ModelForm):
    """The changes ops make to a live subscription: another version (now,
    prorated, or at period end) and the seat count; and finance's: the deal from
    the next period, and the discount. Saved through billing.subscriptions
    (lifecycle, deals, discounts). The admin gives each user the fields of their
    permissions only."""

    # The fields the page shows (set by the admin per user); the others are dropped
    # so that one the user cannot see is never validated.
    shown: frozenset[str] | None = None

    # The domain names the version (and its plan's currency) where this form
    # has new_version.
    field_map = {"version": "new_version", "plan": "new_version"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.shown is not None:
            for name in [name for name in self.fields if name not in self.shown]:
                del self.fields[name]
        if self.instance.pk is not None and "deal_meter" in self.fields:
            deal_setup(self, self.instance)
        if self.instance.pk is not None and "at" in self.fields:
            self.fields["at"].read_in(customer_text.customer_zone(self.instance.customer))

    new_version = PublishedVersionField(
        required=False,
        label=_("Move to version"),
        empty_label=_("Keep the current version"),
        help_text=_("A published version to move to; empty keeps the current one."),
    )
    effective = forms.ChoiceField(
        label=_("When"),
        choices=[
            ("period_end", _("At the end of the current period")),
            ("immediate", _("Now, prorated")),
        ],
        initial="period_end",
    )
    new_seats = ExactIntegerField(
        min_value=1, max_value=1_000_000, required=False, label=_("New seat count")
    )
    at = ZonedDateTimeField(
        label=_("Immediate change at"),
        required=False,
        help_text=_("When an immediate change applies, in the customer's time zone; empty: now."),
    )

    class Meta:
        model = Subscription
        fields = []

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                self.check(cleaned)
            except BillingError as error:
                add_billing_error(self, error, self.field_map)
        return cleaned

    def check(self, cleaned) -> None:
        """What apply() would refuse, found without writing anything."""
        self._each_change(
            cleaned, seats=lifecycle.seats_change_check, plan=lifecycle.plan_change_check
        )
        self.discount_check(self.instance, cleaned)

    def apply(self, cleaned) -> None:
        self._each_change(
            cleaned, seats=lifecycle.subscription_set_seats, plan=lifecycle.subscription_change_plan
        )
        self.discount_apply(self.instance, cleaned)
        if self.deal_changed():
            # As stored now: a plan change just made may have dropped the deal.
            fresh = Subscription.objects.get(pk=self.instance.pk)
            deal = deal_from(cleaned, stored=stored_deal(fresh), changed=self.changed_data)
            deals.subscription_set_overrides(subscription=fresh, overrides=deal)

    def deal_changed(self) -> bool:
        return any(name in self.changed_data for name in DealFields.FIELDS)

    def _each_change(self, cleaned, *, seats, plan) -> None:
        """Call `seats` for a new seat count and `plan` for a new version, in that
        order, with the same arguments whether checking or applying."""
        at = cleaned.get("at") or timezone.now()
        if self.deal_changed():
            version = cleaned.get("new_version") or self.instance.version
            # The deal is checked against the version it will apply to.
            deal = deal_from(cleaned, stored=stored_deal(self.instance), changed=self.changed_data)
            deals.overrides_check(version=version, overrides=deal)
        if cleaned.get("new_seats") and cleaned["new_seats"] != self.instance.seats:
            seats(subscription=self.instance, seats=cleaned["new_seats"], at=at)
        if cleaned.get("new_version"):
            plan(
                subscription=self.instance,
                version=cleaned["new_version"],
                effective=cleaned["effective"],
                at=at,
            )

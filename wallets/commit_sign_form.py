"""The admin's form to sign a commit (wallets.commits_admin shows it): the term
is picked from the subscription's own period starts and counted in its
periods, so it always covers whole periods; amounts are read as the user types
them (ExactDecimalField). What signing will do is said in sentences and a
schedule, from wallets.commits' own reads, before anything is written."""

from datetime import datetime
from decimal import Decimal

from django import forms
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.models import Subscription
from common import customer_text
from common.admin_forms import (
    ExactDecimalField,
    ExactIntegerField,
    add_billing_error,
    money_text,
    percent_text,
)
from common.errors import BillingError
from plans.models import Meter
from plans.overrides import subscription_spec
from wallets.commit_models import Commit
from wallets.commit_terms import MAX_PERIODS, CommitRequest, commit_schedule, periods_from
from wallets.commits import commit_sign

# Period starts offered for a term: the current period's and the next ones.
STARTS_OFFERED = 12
# A refusal's field (wallets.commits) -> the form's.
FIELD_MAP = {"rollover": "rollover_percent"}


def term_text(customer, start: datetime, end: datetime) -> str:
    """Dates as the customer reads them ('Nov 2026', '1 Nov 2026 - 31 Oct 2027'),
    in its zone, named."""
    zone = customer_text.customer_zone(customer)
    return customer_text.named_zone(customer_text.period(start, end, zone), zone)


class CommitSignForm(forms.Form):
    billing = forms.ChoiceField(
        choices=Commit.BILLINGS,
        initial=Commit.PREPAID,
        widget=forms.RadioSelect,
        label=_("Billing"),
        help_text=_(
            "Prepaid: invoiced in full now and drawn down by usage. Postpaid: usage billed "
            "as usual, what is missing at the term's end billed then."
        ),
    )
    amount = ExactDecimalField(max_digits=28, decimal_places=10, label=_("Amount"))
    currency = forms.CharField(max_length=3, label=_("Currency"))
    starts_at = forms.ChoiceField(
        label=_("Starts"), help_text=_("A period start of the subscription.")
    )
    periods = ExactIntegerField(
        min_value=1,
        max_value=MAX_PERIODS,
        initial=12,
        label=_("Term, in periods"),
        help_text=_("It ends with the last of them; the confirmation shows the dates."),
    )
    access = forms.ChoiceField(
        choices=Commit.ACCESSES,
        initial=Commit.PER_PERIOD,
        widget=forms.RadioSelect,
        label=_("Access"),
        help_text=_(
            "Prepaid only. Per period: an equal share to use in each period. Up front: "
            "the whole amount over the whole term."
        ),
    )
    applies_to = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Meters"),
        help_text=_("The usage the commit pays for; none ticked: all usage."),
    )
    overage_multiplier = ExactDecimalField(
        max_digits=28,
        decimal_places=10,
        required=False,
        label=_("Overage multiplier"),
        help_text=_(
            "Prepaid only. Usage beyond the commit is billed at its price times this; empty: 1."
        ),
    )
    rollover_percent = ExactDecimalField(
        max_digits=28,
        decimal_places=10,
        required=False,
        label=_("Rollover percent"),
        help_text=_(
            "Prepaid, per-period access only. Empty: unused access expires at its period's end."
        ),
    )
    rollover_periods = ExactIntegerField(
        min_value=1,
        max_value=MAX_PERIODS,
        required=False,
        label=_("Rollover expires after (periods)"),
    )

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscription = subscription
        self.customer = subscription.customer
        self.zone = customer_text.customer_zone(self.customer)
        self.fields["currency"].initial = subscription_spec(subscription).currency
        starts = periods_from(
            subscription, moment=subscription.current_period_start, count=STARTS_OFFERED
        )
        self.fields["starts_at"].choices = [
            (start.isoformat(), self._start_label(start, n == 0))
            for n, (start, _end) in enumerate(starts)
        ]
        self.fields["applies_to"].choices = [
            (code, f"{name} ({code})")
            for code, name in Meter.objects.order_by("code").values_list("code", "name")
        ]
        self.request: CommitRequest | None = None
        self.rows: list[tuple[datetime, datetime, Decimal]] = []

    def _start_label(self, start: datetime, current: bool) -> str:
        text = customer_text.named_zone(customer_text.day(start, self.zone), self.zone)
        return gettext("{day}, the current period").format(day=text) if current else text

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        starts_at = datetime.fromisoformat(cleaned["starts_at"])
        ends_at = periods_from(self.subscription, moment=starts_at, count=cleaned["periods"])[-1][1]
        prepaid = cleaned["billing"] == Commit.PREPAID
        self.request = CommitRequest(
            amount=cleaned["amount"],
            currency=cleaned["currency"].strip().upper(),
            starts_at=starts_at,
            ends_at=ends_at,
            billing=cleaned["billing"],
            # The access choice has a default; a postpaid commit has none.
            access=cleaned["access"] if prepaid else "",
            applies_to=tuple(cleaned["applies_to"]),
            overage_multiplier=cleaned.get("overage_multiplier"),
            rollover_percent=cleaned.get("rollover_percent"),
            rollover_periods=cleaned.get("rollover_periods"),
        )
        try:
            self.rows = commit_schedule(
                subscription=self.subscription,
                request=self.request,
                known_meters=self.known_meters(),
            )
        except BillingError as error:
            add_billing_error(self, error, FIELD_MAP)
        return cleaned

    def known_meters(self) -> set[str]:
        return set(
            Meter.objects.filter(code__in=self.request.applies_to).values_list("code", flat=True)
        )

    def sign(self, *, now: datetime) -> Commit:
        """Sign the validated request (commit_sign; a refusal raises, nothing written)."""
        return commit_sign(
            subscription=self.subscription,
            request=self.request,
            known_meters=self.known_meters(),
            now=now,
        )

    # What the confirmation page says.

    def _money(self, amount: Decimal) -> str:
        return money_text(amount, self.request.currency)

    def _meters(self) -> str:
        return ", ".join(self.request.applies_to) or gettext("every meter")

    def consequences(self) -> list[str]:
        r = self.request
        periods = self.cleaned_data["periods"]
        sentences = [
            ngettext(
                "{customer} commits to {amount} for {term}: {periods} period of its "
                "subscription to {plan}.",
                "{customer} commits to {amount} for {term}: {periods} periods of its "
                "subscription to {plan}.",
                periods,
            ).format(
                customer=self.customer,
                amount=self._money(r.amount),
                term=term_text(self.customer, r.starts_at, r.ends_at),
                periods=periods,
                plan=self.subscription.version.plan.name,
            )
        ]
        if r.billing == Commit.POSTPAID:
            last_day = customer_text.day(customer_text.last_day(r.starts_at, r.ends_at, self.zone))
            return [
                *sentences,
                gettext(
                    "No invoice now: usage of {meters} is billed as usual each period and "
                    "counted toward the commit."
                ).format(meters=self._meters()),
                gettext(
                    "At the term's end ({day}), if less than {amount} was counted, a true-up "
                    "invoice bills the difference."
                ).format(day=last_day, amount=self._money(r.amount)),
            ]
        sentences.append(
            gettext(
                "An invoice of {amount} (plus tax) is issued now, for the whole commit."
            ).format(amount=self._money(r.amount))
        )
        if r.access == Commit.UPFRONT:
            sentences.append(
                gettext("The whole amount is available over the whole term, as below.")
            )
        else:
            sentences.append(gettext("Each period has its share to use, as below."))
        sentences.append(
            gettext(
                "At each close, usage of {meters} draws it down, after pricing and before "
                "discounts and tax."
            ).format(meters=self._meters())
        )
        multiplier = r.overage_multiplier or Decimal(1)
        sentences.append(
            gettext("Usage beyond it is billed at its price times {multiplier}.").format(
                multiplier=customer_text.typed_number(multiplier.normalize())
            )
            if multiplier != 1
            else gettext("Usage beyond it is billed at its price.")
        )
        if r.rollover_percent:
            sentences.append(
                ngettext(
                    "Rollover: at each period's end, {percent} of what is left of its share "
                    "rolls over (rounded down), is drawn first, and expires after {periods} "
                    "more period, never past the term's end; the rest expires.",
                    "Rollover: at each period's end, {percent} of what is left of its share "
                    "rolls over (rounded down), is drawn first, and expires after {periods} "
                    "more periods, never past the term's end; the rest expires.",
                    r.rollover_periods,
                ).format(percent=percent_text(r.rollover_percent), periods=r.rollover_periods)
            )
        elif r.access == Commit.PER_PERIOD:
            sentences.append(gettext("What is left of a period's share expires at its end."))
        return sentences

    def schedule_rows(self) -> list[dict]:
        return [
            {"term": term_text(self.customer, start, end), "amount": self._money(amount)}
            for start, end, amount in self.rows
        ]

"""The portal's "Limits and alerts" section: each limit the customer set with what
was spent against it this period (billing.usage.customer_limits.limits_spent),
what is left and a bar; the budget's alert thresholds; where the alerts go; and
the history, newest first: the limit changes (who, when, from what to what, in
words) and the budget's threshold alerts that fired. A manage link also gets the
form (customers.limits_form). Every amount, quantity, percentage and moment is
written by the page's CustomerText; call under its language."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.utils.translation import gettext as _

from billing.models import Alert
from billing.usage.customer_limits import BUDGET, limits_spent
from billing.usage.reads import subscription_live
from common.customer_text import CustomerText
from customers.limits import limits_history, limits_stored
from customers.limits_form import LimitsForms, MeterChoice
from customers.limits_text import action_words, cap_name, change_words, channel_text, percents
from customers.models import Customer, CustomerLimitChange
from plans.models import Meter
from plans.overrides import subscription_spec

# The history shows this many of each (changes, alerts), newest first.
HISTORY_SHOWN = 50


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # "change" or "alert"
    when: str
    who: str
    words: tuple[str, ...]


def meter_choices(customer: Customer) -> list[MeterChoice]:
    """The meters a cap may name: those the customer's live plan charges (all
    meters without a live subscription)."""
    subscription = subscription_live(customer_id=customer.pk)
    meters = Meter.objects.order_by("name", "code")
    if subscription is not None:
        meters = meters.filter(code__in={c.meter for c in subscription_spec(subscription).charges})
    return [MeterChoice(m.code, m.name, tuple(m.group_by or ())) for m in meters]


def _who(change: CustomerLimitChange) -> str:
    if change.via == CustomerLimitChange.VIA_API:
        return _("API")
    return change.by


def _alert_words(alert: Alert, *, write: CustomerText, currency: str) -> tuple[str, ...]:
    """A budget threshold alert: the threshold and the spend when it fired (as
    its payload records them)."""
    payload = alert.payload or {}
    threshold = payload.get("threshold") or alert.key.rpartition(":")[2]
    words = []
    try:
        words.append(
            _("Budget alert: {threshold} of the budget reached").format(
                threshold=write.percent(Decimal(str(threshold)))
            )
        )
    except ArithmeticError:
        words.append(_("Budget alert"))
    spend, budget = payload.get("spend"), payload.get("budget")
    money = payload.get("currency") or currency
    if spend is not None:
        try:
            if budget is not None:
                words.append(
                    _("Spent then: {spend} of {budget}").format(
                        spend=write.money_text(Decimal(str(spend)), money),
                        budget=write.money_text(Decimal(str(budget)), money),
                    )
                )
            else:
                words.append(
                    _("Spent then: {spend}").format(
                        spend=write.money_text(Decimal(str(spend)), money)
                    )
                )
        except ArithmeticError:
            pass
    return tuple(words)


def limits_history_events(customer: Customer, *, write: CustomerText) -> list[Event]:
    """The limit changes and the budget's alerts, newest first."""
    currency = customer.currency
    names = dict(Meter.objects.values_list("code", "name"))
    events = [
        Event(
            change.changed_at,
            "change",
            write.day_time(change.changed_at),
            _who(change),
            tuple(
                change_words(
                    change.before or {},
                    change.after or {},
                    write=write,
                    currency=currency,
                    names=names,
                )
            ),
        )
        for change in limits_history(customer, most=HISTORY_SHOWN)
    ]
    alerts = Alert.objects.filter(customer=customer, kind=Alert.BUDGET_THRESHOLD).order_by(
        "-created_at", "-id"
    )[:HISTORY_SHOWN]
    events += [
        Event(
            alert.created_at,
            "alert",
            write.day_time(alert.created_at),
            "",
            _alert_words(alert, write=write, currency=currency),
        )
        for alert in alerts
    ]
    return sorted(events, key=lambda e: e.at, reverse=True)


def _spent_rows(customer: Customer, *, write: CustomerText, now: datetime) -> list[dict]:
    currency = customer.currency
    names = dict(Meter.objects.values_list("code", "name"))
    subscription = subscription_live(customer_id=customer.pk)
    rows = []
    for spent in limits_spent(customer=customer, subscription=subscription, now=now):
        if spent.money:

            def text(value):
                return write.money_text(value, currency)

        else:

            def text(value):
                return write.quantity(value)

        if spent.kind == BUDGET:
            name = _("Budget ({action})").format(action=action_words(spent.action))
        else:
            cap = spent.cap
            name = _("Cap on {what}").format(
                what=cap_name(
                    {"meter": cap.meter, "when": dict(cap.when)},
                    names,
                )
            )
        percent = spent.percent.to_integral_value(ROUND_DOWN)
        rows.append(
            {
                "kind": spent.kind,
                "name": name,
                "limit": text(spent.limit),
                "spent": text(spent.spent),
                "remaining": text(spent.remaining),
                "percent": int(min(Decimal(100), percent)),
                "percent_text": write.percent(percent),
                "over": spent.spent >= spent.limit,
            }
        )
    return rows


def limits_section(
    customer: Customer,
    *,
    write: CustomerText,
    now: datetime,
    manage: bool,
    forms: LimitsForms | None = None,
) -> dict:
    """The section's context: `forms` (bound to a refused POST) or, for a manage
    link, the form showing the limits as stored."""
    limits = limits_stored(customer)
    if manage and forms is None:
        forms = LimitsForms(
            stored=limits,
            currency=customer.currency,
            meters=meter_choices(customer),
            language=write.locale,
        )
    return {
        "rows": _spent_rows(customer, write=write, now=now),
        "thresholds": percents(limits.get("alert_thresholds") or (), write)
        if limits.get("alert_thresholds")
        else "",
        "channels": [channel_text(c) for c in limits.get("channels") or ()],
        "history": limits_history_events(customer, write=write),
        "manage": manage,
        "forms": forms if manage else None,
    }

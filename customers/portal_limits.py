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
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from billing.core.customer_text import CustomerText
from billing.models import Alert
from billing.usage.customer_limits import BUDGET, limits_spent
from billing.usage.reads import subscription_live
from customers import limits as customer_limits
from customers.limits import limits_history
from customers.limits_form import LimitsForms, MeterChoice
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


def _action_words(action: str) -> str:
    if action == customer_limits.ALERT:
        return _("alert only")
    return _("usage refused beyond it")


def _cap_name(cap: dict, names: dict) -> str:
    """'GPT tokens, model o3'; 'GPT tokens' for a cap on the whole meter."""
    name = names.get(cap["meter"], cap["meter"])
    when = cap.get("when") or {}
    if not when:
        return name
    values = ", ".join(f"{key} {value}" for key, value in when.items())
    return _("{meter}, {values}").format(meter=name, values=values)


def _cap_limit(cap: dict, write: CustomerText, currency: str) -> str:
    if "amount" in cap:
        return write.money_text(Decimal(cap["amount"]), currency)
    return _("{quantity} units").format(quantity=write.quantity(Decimal(cap["quantity"])))


def _percents(values, write: CustomerText) -> str:
    return ", ".join(write.percent(Decimal(v)) for v in values) or _("none")


def _channel_text(channel: dict) -> str:
    """Where an alert goes, as the portal names it: an email address, or the kind
    of webhook with its name or host (never its URL: it is a secret)."""
    if channel["kind"] == customer_limits.EMAIL:
        return channel["to"]
    kind = {"slack": "Slack", "teams": "Microsoft Teams", "discord": "Discord"}[channel["kind"]]
    label = channel.get("name") or urlsplit(channel["url"]).hostname or ""
    return f"{kind} ({label})" if label else kind


def change_words(
    change: CustomerLimitChange, *, write: CustomerText, currency: str, names: dict
) -> list[str]:
    """What a limit change changed, a sentence per thing, in the active language."""
    before, after = change.before or {}, change.after or {}
    words = []
    old, new = before.get("budget"), after.get("budget")
    if old != new:
        if old is None:
            words.append(
                _("Budget set to {amount} ({action})").format(
                    amount=write.money_text(Decimal(new["amount"]), currency),
                    action=_action_words(new["action"]),
                )
            )
        elif new is None:
            words.append(
                _("Budget removed (it was {amount})").format(
                    amount=write.money_text(Decimal(old["amount"]), currency)
                )
            )
        else:
            if old["amount"] != new["amount"]:
                words.append(
                    _("Budget changed from {before} to {after}").format(
                        before=write.money_text(Decimal(old["amount"]), currency),
                        after=write.money_text(Decimal(new["amount"]), currency),
                    )
                )
            if old["action"] != new["action"]:
                words.append(
                    _("When the budget is reached: {before}, now {after}").format(
                        before=_action_words(old["action"]), after=_action_words(new["action"])
                    )
                )

    def key(cap):
        return cap["meter"], tuple(sorted((cap.get("when") or {}).items()))

    old_caps = {key(c): c for c in before.get("caps") or ()}
    new_caps = {key(c): c for c in after.get("caps") or ()}
    for k, cap in new_caps.items():
        limit = _cap_limit(cap, write, currency)
        if k not in old_caps:
            words.append(
                _("Cap added on {what}: {limit}").format(what=_cap_name(cap, names), limit=limit)
            )
        elif old_caps[k] != cap:
            words.append(
                _("Cap on {what} changed from {before} to {after}").format(
                    what=_cap_name(cap, names),
                    before=_cap_limit(old_caps[k], write, currency),
                    after=limit,
                )
            )
    for k, cap in old_caps.items():
        if k not in new_caps:
            words.append(
                _("Cap removed on {what} (it was {limit})").format(
                    what=_cap_name(cap, names), limit=_cap_limit(cap, write, currency)
                )
            )
    old_t, new_t = before.get("alert_thresholds") or [], after.get("alert_thresholds") or []
    if old_t != new_t and not old_t:
        words.append(_("Alert thresholds set to {after}").format(after=_percents(new_t, write)))
    elif old_t != new_t and not new_t:
        words.append(
            _("Alert thresholds removed (they were {before})").format(
                before=_percents(old_t, write)
            )
        )
    elif old_t != new_t:
        words.append(
            _("Alert thresholds changed from {before} to {after}").format(
                before=_percents(old_t, write), after=_percents(new_t, write)
            )
        )
    old_c = [_channel_text(c) for c in before.get("channels") or ()]
    new_c = [_channel_text(c) for c in after.get("channels") or ()]
    words += [_("Alerts now also sent to {where}").format(where=w) for w in new_c if w not in old_c]
    words += [
        _("Alerts no longer sent to {where}").format(where=w) for w in old_c if w not in new_c
    ]
    return words or [_("No visible change")]


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
            tuple(change_words(change, write=write, currency=currency, names=names)),
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
            name = _("Budget ({action})").format(action=_action_words(spent.action))
        else:
            cap = spent.cap
            name = _("Cap on {what}").format(
                what=_cap_name(
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
    limits = customer.limits or {}
    if manage and forms is None:
        forms = LimitsForms(
            stored=limits,
            currency=customer.currency,
            meters=meter_choices(customer),
            language=write.locale,
        )
    return {
        "rows": _spent_rows(customer, write=write, now=now),
        "thresholds": _percents(limits.get("alert_thresholds") or (), write)
        if limits.get("alert_thresholds")
        else "",
        "channels": [_channel_text(c) for c in limits.get("channels") or ()],
        "history": limits_history_events(customer, write=write),
        "manage": manage,
        "forms": forms if manage else None,
    }

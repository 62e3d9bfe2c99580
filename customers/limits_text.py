"""The limits a customer set (customers.limits' stored document) in words: a
budget's action, a cap's name and limit, thresholds, where alerts go (never a
webhook's URL: it is a secret), and what a change changed. The one writer of
them, for the portal (customers.portal_limits), the e-mail telling the billing
contact of a change (billing.notifications.channel_messages) and the admin. Call
under the reader's language; figures through its CustomerText."""

from decimal import Decimal
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from common.customer_text import CustomerText
from customers import limits as customer_limits


def action_words(action: str) -> str:
    if action == customer_limits.ALERT:
        return _("alert only")
    return _("usage refused beyond it")


def cap_name(cap: dict, names: dict) -> str:
    """'GPT tokens, model o3'; 'GPT tokens' for a cap on the whole meter."""
    name = names.get(cap["meter"], cap["meter"])
    when = cap.get("when") or {}
    if not when:
        return name
    values = ", ".join(f"{key} {value}" for key, value in when.items())
    return _("{meter}, {values}").format(meter=name, values=values)


def cap_limit(cap: dict, write: CustomerText, currency: str) -> str:
    if "amount" in cap:
        return write.money_text(Decimal(cap["amount"]), currency)
    return _("{quantity} units").format(quantity=write.quantity(Decimal(cap["quantity"])))


def percents(values, write: CustomerText) -> str:
    return ", ".join(write.percent(Decimal(v)) for v in values) or _("none")


def channel_text(channel: dict) -> str:
    """Where an alert goes, as the portal names it: an email address, or the kind
    of webhook with its name or host (never its URL: it is a secret)."""
    if channel["kind"] == customer_limits.EMAIL:
        return channel["to"]
    kind = {"slack": "Slack", "teams": "Microsoft Teams", "discord": "Discord"}[channel["kind"]]
    label = channel.get("name") or urlsplit(channel["url"]).hostname or ""
    return f"{kind} ({label})" if label else kind


def change_words(
    before: dict, after: dict, *, write: CustomerText, currency: str, names: dict
) -> list[str]:
    """What a change of the limits from `before` to `after` (stored documents)
    changed, a sentence per thing, in the active language; `names` the meters'
    names by code."""
    words = []
    old, new = before.get("budget"), after.get("budget")
    if old != new:
        if old is None:
            words.append(
                _("Budget set to {amount} ({action})").format(
                    amount=write.money_text(Decimal(new["amount"]), currency),
                    action=action_words(new["action"]),
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
                        before=action_words(old["action"]), after=action_words(new["action"])
                    )
                )

    def key(cap):
        return cap["meter"], tuple(sorted((cap.get("when") or {}).items()))

    old_caps = {key(c): c for c in before.get("caps") or ()}
    new_caps = {key(c): c for c in after.get("caps") or ()}
    for k, cap in new_caps.items():
        limit = cap_limit(cap, write, currency)
        if k not in old_caps:
            words.append(
                _("Cap added on {what}: {limit}").format(what=cap_name(cap, names), limit=limit)
            )
        elif old_caps[k] != cap:
            words.append(
                _("Cap on {what} changed from {before} to {after}").format(
                    what=cap_name(cap, names),
                    before=cap_limit(old_caps[k], write, currency),
                    after=limit,
                )
            )
    for k, cap in old_caps.items():
        if k not in new_caps:
            words.append(
                _("Cap removed on {what} (it was {limit})").format(
                    what=cap_name(cap, names), limit=cap_limit(cap, write, currency)
                )
            )
    old_t, new_t = before.get("alert_thresholds") or [], after.get("alert_thresholds") or []
    if old_t != new_t and not old_t:
        words.append(_("Alert thresholds set to {after}").format(after=percents(new_t, write)))
    elif old_t != new_t and not new_t:
        words.append(
            _("Alert thresholds removed (they were {before})").format(before=percents(old_t, write))
        )
    elif old_t != new_t:
        words.append(
            _("Alert thresholds changed from {before} to {after}").format(
                before=percents(old_t, write), after=percents(new_t, write)
            )
        )
    old_c = [channel_text(c) for c in before.get("channels") or ()]
    new_c = [channel_text(c) for c in after.get("channels") or ()]
    words += [_("Alerts now also sent to {where}").format(where=w) for w in new_c if w not in old_c]
    words += [
        _("Alerts no longer sent to {where}").format(where=w) for w in old_c if w not in new_c
    ]
    return words or [_("No visible change")]

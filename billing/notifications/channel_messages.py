"""What the customer's own channels receive (customers.limits: e-mail, Slack,
Microsoft Teams, Discord), written once in words (BudgetWords: a budget threshold
alert; limit_change_email: a change of the limits) and laid out per channel, one
function a format: Slack's incoming-webhook JSON (`text` and `blocks`), a Teams
Workflows webhook's message carrying an Adaptive Card 1.4, Discord's `content`
and `embeds`, and an e-mail's subject and text.

Everything is in the customer's language, figures and days through its writer
(CustomerText): a French customer reads "170,00 USD" and "1 nov. - 30 nov. 2026".
Text the customer or the merchant typed (the customer's name) is escaped where a
format would read it as markup or a mention."""

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from common.customer_text import CustomerText
from customers.limits_text import change_words

STOP = "stop"
# The context of the short words of limits, which other pages may say otherwise.
LIMITS = "customer limits"
# The colour of a Discord embed's edge: amber below the budget, red at it.
AMBER = 0xE8A317
RED = 0xD83B01
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class BudgetWords:
    """A budget threshold alert in the reader's words: a title, a sentence, the
    figures as (label, value) pairs, what happens next, and the portal link."""

    title: str
    summary: str
    facts: tuple[tuple[str, str], ...]
    then: str
    link_label: str
    url: str
    reached: bool


def budget_words(*, write: CustomerText, data: dict, customer_name: str) -> BudgetWords | None:
    """The words of a budget_threshold alert's payload (billing.usage.alerts:
    spend, budget, remaining, currency, threshold, percentage, action, the period
    and the portal link), in `write`'s language; None for a payload without them."""
    needed = ("spend", "budget", "remaining", "threshold", "period_start", "period_end")
    if not set(needed) <= data.keys():
        return None
    currency = data.get("currency", "")
    spend, budget = Decimal(data["spend"]), Decimal(data["budget"])
    percentage = Decimal(data.get("percentage") or data["threshold"])
    start = datetime.fromisoformat(data["period_start"])
    end = datetime.fromisoformat(data["period_end"])
    with write.speaking():
        period = write.named(write.dates(start, end))
        names = {
            "customer": customer_name,
            "spend": write.money_text(spend, currency),
            "budget": write.money_text(budget, currency),
            "remaining": write.money_text(Decimal(data["remaining"]), currency),
            "percentage": write.percent(percentage),
            "period": period,
        }
        reached = percentage >= HUNDRED
        if reached:
            title = _("Your budget of %(budget)s is reached") % names
        else:
            title = _("You have used %(percentage)s of your budget") % names
        summary = (
            _(
                "%(customer)s has spent %(spend)s (%(percentage)s) of its %(budget)s budget "
                "in the period %(period)s: %(remaining)s left."
            )
            % names
        )
        then = (
            _("Usage that would go past the budget is refused until the next period.")
            if data.get("action", STOP) == STOP
            else _("Usage goes on past the budget: this budget only alerts.")
        )
        facts = (
            (pgettext(LIMITS, "Spent"), names["spend"]),
            (pgettext(LIMITS, "Budget"), names["budget"]),
            (pgettext(LIMITS, "Left"), names["remaining"]),
            (pgettext(LIMITS, "Alert threshold"), write.percent(Decimal(data["threshold"]))),
            (pgettext(LIMITS, "Period"), period),
        )
        return BudgetWords(
            title=title,
            summary=summary,
            facts=facts,
            then=then,
            link_label=_("See your usage and limits"),
            url=data.get("portal_url", ""),
            reached=reached,
        )


def email_text(words: BudgetWords) -> tuple[str, str]:
    """An e-mail's subject and text (its greeting is alert_email's)."""
    facts = "\n".join(_labelled(label, value) for label, value in words.facts)
    link = f"\n\n{_labelled(words.link_label, words.url)}" if words.url else ""
    return words.title, f"{words.summary}\n\n{facts}\n\n{words.then}{link}"


def _labelled(label: str, value: str) -> str:
    """'Spent: 170.00 USD' ('Dépensé : 170,00 USD'), in the active language."""
    return _("%(label)s: %(value)s") % {"label": label, "value": value}


def slack_message(words: BudgetWords) -> dict:
    """A Slack incoming webhook's JSON: `text` (the notification's and the
    fallback) and Block Kit `blocks`."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": words.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack(words.summary)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{_slack(label)}*\n{_slack(value)}"}
                for label, value in words.facts
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack(words.then)}]},
    ]
    if words.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": words.link_label[:75]},
                        "url": words.url,
                    }
                ],
            }
        )
    return {"text": _slack(f"{words.title}\n{words.summary}"), "blocks": blocks}


def teams_message(words: BudgetWords) -> dict:
    """A Microsoft Teams Workflows (Power Automate) incoming webhook's message:
    one attachment, an Adaptive Card 1.4."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": words.title,
                "weight": "Bolder",
                "size": "Medium",
                "color": "Attention" if words.reached else "Warning",
                "wrap": True,
            },
            {"type": "TextBlock", "text": words.summary, "wrap": True},
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in words.facts],
            },
            {"type": "TextBlock", "text": words.then, "wrap": True, "isSubtle": True},
        ],
    }
    if words.url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": words.link_label, "url": words.url}]
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def discord_message(words: BudgetWords) -> dict:
    """A Discord incoming webhook's JSON: `content` and one embed with the figures
    as fields, titled with a link to the portal. No mention is ever parsed."""
    embed = {
        "title": words.title[:256],
        "description": f"{words.summary}\n\n{words.then}"[:4096],
        "color": RED if words.reached else AMBER,
        "fields": [
            {"name": label[:256], "value": value[:1024], "inline": True}
            for label, value in words.facts
        ],
    }
    if words.url:
        embed["url"] = words.url
    return {
        "content": words.title[:2000],
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


WEBHOOK_FORMATS = {"slack": slack_message, "teams": teams_message, "discord": discord_message}


def webhook_body(kind: str, words: BudgetWords) -> str:
    """The JSON text a webhook channel of this kind is sent."""
    return json.dumps(WEBHOOK_FORMATS[kind](words), ensure_ascii=False, separators=(",", ":"))


def _slack(text: str) -> str:
    """Text as Slack's mrkdwn shows it literally: &, < and > escaped (so that a
    name cannot write a link or <!channel>)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# A change of the limits (customers.limits.limits_set), e-mailed to the billing contact.

ARROW = "\N{RIGHTWARDS ARROW}"


def limit_change_email(
    *,
    write: CustomerText,
    customer_name: str,
    currency: str,
    by: str,
    via: str,
    changed_at: datetime,
    before: dict,
    after: dict,
    names: dict,
    url: str,
) -> tuple[str, str]:
    """The subject and text of the e-mail that tells the billing contact who
    changed its limits, when, through what, and what changed, in the words the
    portal's history uses (customers.limits_text.change_words: "Budget changed
    from 300.00 USD to 1 234,50 USD"; `names` the meters' names by code). Webhook
    URLs are never written (they are secrets)."""
    with write.speaking():
        through = {
            "portal": _("in the portal"),
            "api": _("through the API"),
            "admin": _("in the admin"),
        }.get(via, via)
        opening = _("%(by)s changed the usage limits of %(customer)s %(via)s on %(moment)s:") % {
            "by": by,
            "customer": customer_name,
            "via": through,
            "moment": write.day_time(changed_at),
        }
        words = change_words(before, after, write=write, currency=currency, names=names)
        lines = [f"- {sentence}" for sentence in words]
        text = f"{opening}\n\n" + "\n".join(lines)
        if url:
            text += "\n\n" + _("See your limits and what was spent: %(url)s") % {"url": url}
        subject = _("Your usage limits were changed")
        return subject, f"{_('Hello,')}\n\n{text}\n"

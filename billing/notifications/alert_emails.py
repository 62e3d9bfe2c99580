"""An alert's email, in the words of the person it goes to: the customer's
language, time zone and number convention (its writer, CustomerText, as the
invoice emails and the portal write), or the seller's team's language for their
copy. The payload holds the facts as JSON (amounts and quantities as plain
strings, the period as instants); they are written here, when the email is
sent, so a French customer reads "1 234,50 USD" and "1 nov. - 30 nov. 2026"
whatever language the alert was raised in."""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.integration_models import IntegrationSource
from billing.models import Alert
from billing.notifications import channel_messages
from common import customer_text
from common.customer_text import CustomerText
from common.vocabulary import ConsumptionModel
from customers.models import Customer

SUBJECTS = {
    Alert.USAGE_THRESHOLD: gettext_lazy("A usage threshold is reached"),
    Alert.SPEND_LIMIT: gettext_lazy("Your spend limit is reached"),
    Alert.LOW_BALANCE: gettext_lazy("Your balance is low"),
    Alert.AUTO_TOP_UP: gettext_lazy("Your balance was topped up automatically"),
    Alert.PAYMENT_FAILED: gettext_lazy("A payment failed"),
    Alert.MARGIN_LOW: gettext_lazy("A customer's margin is below the threshold"),
    Alert.BUDGET_THRESHOLD: gettext_lazy("A budget threshold is reached"),
    Alert.UNPRICED_MODEL: gettext_lazy("A model no rate card prices"),
}


def alert_writer(alert: Alert, locale: str | None = None) -> CustomerText:
    """The customer's writer as the customer is now; in `locale` (the team's
    copy) when given, still in the customer's time zone."""
    write = CustomerText.of_customer(alert.customer)
    if locale is None:
        return write
    return CustomerText(customer_text.language(locale), write.zone)


def alert_email(alert: Alert, *, locale: str | None = None) -> tuple[str, str]:
    """The subject and plain-text body of an alert's email: a sentence per kind,
    with the period in the customer's time zone, in the customer's language (or
    `locale`). Reads the payload leniently (rows raised before a key existed
    lack it): a payload without the facts its sentence needs is listed as it is."""
    customer, data = alert.customer, alert.payload
    facts = Facts(alert_writer(alert, locale), data, customer)
    with facts.write.speaking():
        write = _SENTENCES.get(alert.kind)
        written = write(facts) if write else None
        if written is None:
            subject = str(SUBJECTS.get(alert.kind, alert.kind))
            details = "\n".join(f"{name}: {value}" for name, value in sorted(data.items()))
            about = _("%(subject)s (%(customer)s).") % {
                "subject": subject,
                "customer": customer.name,
            }
            written = subject, f"{about}\n\n{details}"
        subject, text = written
        return subject, f"{_('Hello,')}\n\n{text}\n"


class Facts:
    """An alert's payload read by its writer: each figure in the reader's
    convention, as it was stored when it cannot be read as a number."""

    def __init__(self, write: CustomerText, data: dict, customer: Customer):
        self.write, self.data, self.customer = write, data, customer
        self.currency = data.get("currency") or customer.currency

    def has(self, *keys: str) -> bool:
        return set(keys) <= self.data.keys()

    def quantity(self, key: str) -> str:
        number = _number(self.data.get(key))
        return "?" if number is None else self.write.quantity(number)

    def money(self, key: str) -> str:
        number = _number(self.data.get(key))
        if number is None:
            return f"{self.data.get(key)} {self.currency}"
        return self.write.money_text(number, self.currency)

    def percent(self, key: str) -> str:
        number = _number(self.data.get(key))
        return f"{self.data.get(key)}%" if number is None else self.write.percent(number)

    def period(self) -> str:
        """' in the period 1 Nov - 30 Nov 2026 (Europe/Paris)'; '' for none."""
        start, end = _instant(self.data.get("period_start")), _instant(self.data.get("period_end"))
        if start is not None and end is not None:
            dates = self.write.named(self.write.dates(start, end))
        elif self.data.get("period"):
            dates = self.data["period"]
        else:
            return ""
        return " " + _("in the period %(dates)s") % {"dates": dates}

    def moment(self, key: str) -> str:
        moment = _instant(self.data.get(key))
        return str(self.data.get(key)) if moment is None else self.write.day_time(moment)


def _number(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except (InvalidOperation, ValueError):
        return None


def _instant(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _usage_threshold(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("meter", "threshold"):
        return None
    data = facts.data
    beyond = (
        _("Usage beyond the included units is refused until the next period.")
        if data.get("model") == ConsumptionModel.HARD_CAP
        else _("Usage beyond the included units is billed at your plan's prices.")
    )
    name = data.get("meter_name") or data["meter"]
    percentage = facts.percent("percentage" if data.get("percentage") else "threshold")
    subject = _("You have used %(percentage)s of your included %(meter)s") % {
        "percentage": percentage,
        "meter": name,
    }
    text = _(
        "%(customer)s has used %(used)s of the %(included)s %(meter)s included%(period)s: "
        "%(percentage)s."
    ) % {
        "customer": facts.customer.name,
        "used": facts.quantity("quantity"),
        "included": facts.quantity("included"),
        "meter": name,
        "period": facts.period(),
        "percentage": percentage,
    }
    return subject, f"{text}\n\n{beyond}"


def _spend_limit(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("spend", "spend_limit"):
        return None
    soft = facts.data.get("mode", facts.customer.spend_limit_mode) == Customer.SPEND_LIMIT_SOFT
    beyond = (
        _("Usage continues and is billed.")
        if soft
        else _("Further usage is refused until the next period.")
    )
    text = _(
        "%(customer)s has spent %(spend)s%(period)s, reaching its spend limit of %(limit)s."
    ) % {
        "customer": facts.customer.name,
        "spend": facts.money("spend"),
        "period": facts.period(),
        "limit": facts.money("spend_limit"),
    }
    return str(SUBJECTS[Alert.SPEND_LIMIT]), f"{text}\n\n{beyond}"


def _low_balance(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("balance", "threshold"):
        return None
    names = {"customer": facts.customer.name, "period": facts.period()}
    if facts.data.get("wallet") == "money":
        names |= {"balance": facts.money("balance"), "threshold": facts.money("threshold")}
        text = _(
            "%(customer)s's prepaid balance is %(balance)s (at or below the %(threshold)s "
            "threshold)%(period)s."
        )
        advice = _("Top up the balance to keep your usage paid for.")
    else:
        names |= {"balance": facts.quantity("balance"), "threshold": facts.quantity("threshold")}
        text = _(
            "%(customer)s's prepaid credits balance is %(balance)s (at or below the "
            "%(threshold)s threshold)%(period)s."
        )
        advice = _("Buy credits to keep your usage paid for.")
    return str(SUBJECTS[Alert.LOW_BALANCE]), f"{text % names}\n\n{advice}"


def _auto_top_up(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("pack", "credits", "price"):
        return None
    data = facts.data
    invoice = (
        " " + _("(invoice %(number)s)") % {"number": data["invoice"]} if data.get("invoice") else ""
    )
    balance = (
        _("; the credits balance is now %(balance)s") % {"balance": facts.quantity("balance")}
        if data.get("balance")
        else ""
    )
    text = _(
        "%(customer)s's auto top-up bought a pack of %(credits)s credits (%(pack)s) for "
        "%(price)s%(invoice)s%(period)s%(balance)s."
    ) % {
        "customer": facts.customer.name,
        "credits": facts.quantity("credits"),
        "pack": data["pack"],
        "price": facts.money("price"),
        "invoice": invoice,
        "period": facts.period(),
        "balance": balance,
    }
    return str(SUBJECTS[Alert.AUTO_TOP_UP]), text


def _payment_failed(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("amount", "attempt"):
        return None
    data = facts.data
    what = (
        _("invoice %(number)s") % {"number": data["invoice"]}
        if data.get("invoice")
        else _("a purchase")
    )
    names = {
        "amount": facts.money("amount"),
        "what": what,
        "period": facts.period(),
        "attempt": data["attempt"],
        "attempts": data.get("attempts"),
    }
    if data.get("attempts"):
        text = _(
            "The payment of %(amount)s for %(what)s%(period)s failed (attempt %(attempt)s of "
            "%(attempts)s)."
        )
    else:
        text = _("The payment of %(amount)s for %(what)s%(period)s failed (attempt %(attempt)s).")
    error = "\n\n" + _("Reason: %(error)s") % {"error": data["error"]} if data.get("error") else ""
    then = (
        _("It will be tried again on %(moment)s.") % {"moment": facts.moment("next_attempt_at")}
        if data.get("next_attempt_at")
        else _("It will not be tried again.")
    )
    return str(SUBJECTS[Alert.PAYMENT_FAILED]), f"{text % names}{error}\n\n{then}"


def _margin_low(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("revenue", "cost", "margin", "margin_percent", "threshold"):
        return None
    text = _(
        "%(customer)s's margin%(period)s so far is %(percent)s, below the %(threshold)s "
        "threshold: revenue %(revenue)s, cost %(cost)s, margin %(margin)s."
    ) % {
        "customer": facts.customer.name,
        "period": facts.period(),
        "percent": facts.percent("margin_percent"),
        "threshold": facts.percent("threshold"),
        "revenue": facts.money("revenue"),
        "cost": facts.money("cost"),
        "margin": facts.money("margin"),
    }
    return str(SUBJECTS[Alert.MARGIN_LOW]), text


def _budget_threshold(facts: Facts) -> tuple[str, str] | None:
    # The words the customer's channels read (billing.notifications.channel_messages).
    words = channel_messages.budget_words(
        write=facts.write, data=facts.data, customer_name=facts.customer.name
    )
    return None if words is None else channel_messages.email_text(words)


def _unpriced_model(facts: Facts) -> tuple[str, str] | None:
    if not facts.has("source", "model", "source_model"):
        return None
    data = facts.data
    sent = data["source_model"]
    if data.get("requested_model") and data["requested_model"] != sent:
        sent = _("%(sent)s, asked for as %(requested)s") % {
            "sent": sent,
            "requested": data["requested_model"],
        }
    text = _(
        "%(source)s sent a call of model %(model)s (%(sent)s), first for %(customer)s, "
        "and no rate card names that model: its usage is priced at the card's default row. "
        "Map it to a model the card prices (Usage sources), or add it to the card."
    ) % {
        "source": dict(IntegrationSource.SOURCES).get(data["source"], data["source"]),
        "model": data["model"],
        "sent": sent,
        "customer": facts.customer.name,
    }
    return str(SUBJECTS[Alert.UNPRICED_MODEL]), text


_SENTENCES = {
    Alert.USAGE_THRESHOLD: _usage_threshold,
    Alert.SPEND_LIMIT: _spend_limit,
    Alert.LOW_BALANCE: _low_balance,
    Alert.AUTO_TOP_UP: _auto_top_up,
    Alert.PAYMENT_FAILED: _payment_failed,
    Alert.MARGIN_LOW: _margin_low,
    Alert.BUDGET_THRESHOLD: _budget_threshold,
    Alert.UNPRICED_MODEL: _unpriced_model,
}

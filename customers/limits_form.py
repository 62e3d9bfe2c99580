"""The form of the limits a customer sets (customers.limits), as the portal shows
it to a manage link and the admin can show it to finance: the budget and its
action, caps (a few rows: a meter, optionally one of its values, an amount or a
quantity), the alert thresholds and the channels the alerts go to.

Numbers are read as the person types them in `language` (typed_number_read:
"1 234,50" in French is 1234.50); the form sends limits_normalized the API's
document with canonical text, and shows its refusals on the fields they name.
Validate (and call limits_set) with `language` active: the messages are
gettext'd. Reads and writes nothing itself."""

import re
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.forms import formset_factory
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common import customer_text
from common.errors import InvalidRequest
from common.money import DecimalRefused
from common.typed_numbers import convention, typed_number_read
from customers import limits as customer_limits

AMOUNT = "amount"
QUANTITY = "quantity"
# Rows offered beyond those set, so that one can be added.
EMPTY_ROWS = 2
# A threshold list is split at semicolons and spaces, and at commas where the
# language does not write its decimals with one ("50, 80"; French "12,5 ; 50").
_SPACES_AND_SEMICOLONS = r"[;\s]+"
# The outbound guard's fixed refusals (common.webhook_targets), as the
# customer reads them.
WEBHOOK_WORDS = {
    "must be an https:// URL": gettext_lazy("must be an https:// address"),
    "the URL has no host": gettext_lazy("the address has no host"),
    "the URL's port is not valid": gettext_lazy("the address's port is not valid"),
    "the URL must not contain a user name or password": gettext_lazy(
        "the address must not contain a user name or password"
    ),
    "the host does not resolve": gettext_lazy("the host does not resolve"),
    "the host resolves to an address that is not public": gettext_lazy(
        "alerts are only sent to public addresses"
    ),
}
_NOT_PUBLIC = re.compile(r"address \S+ is not public")


@dataclass(frozen=True)
class MeterChoice:
    """A meter a cap may name: its code, its name and the properties it counts
    usage by (the values a cap may be limited to)."""

    code: str
    name: str
    group_by: tuple[str, ...] = ()


def _number(text: str, *, language: str) -> Decimal | None:
    """A typed number, more than zero (None for blank). Raises
    forms.ValidationError in the active language."""
    try:
        number = typed_number_read(text, language=language)
    except DecimalRefused as refused:
        raise forms.ValidationError(str(refused)) from None
    if number is not None and number <= 0:
        raise forms.ValidationError(_("Type a number more than zero."))
    return number


class LimitsForm(forms.Form):
    budget_amount = forms.CharField(
        label=gettext_lazy("Budget per period"), required=False, max_length=64
    )
    budget_action = forms.ChoiceField(
        label=gettext_lazy("When the budget is reached"),
        choices=[
            (customer_limits.STOP, gettext_lazy("Refuse more usage")),
            (customer_limits.ALERT, gettext_lazy("Alert only")),
        ],
    )
    thresholds = forms.CharField(
        label=gettext_lazy("Alert at (percent of the budget)"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("For example: 50; 80; 100"),
    )

    def __init__(self, *args, language: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.language = language

    def clean_budget_amount(self):
        return _number(self.cleaned_data["budget_amount"], language=self.language)

    def clean_thresholds(self):
        text = self.cleaned_data["thresholds"].replace("%", " ")
        decimal_mark, _thousands = convention(self.language)
        pattern = _SPACES_AND_SEMICOLONS if decimal_mark == "," else r"[;,\s]+"
        found = []
        for item in re.split(pattern, text.strip()):
            if item:
                found.append(_number(item, language=self.language))
        return found


class CapForm(forms.Form):
    meter = forms.ChoiceField(label=gettext_lazy("Meter"), required=False)
    property = forms.ChoiceField(label=gettext_lazy("Only for"), required=False)
    value = forms.CharField(
        label=gettext_lazy("Value"), required=False, max_length=customer_limits.MAX_VALUE
    )
    measure = forms.ChoiceField(
        label=gettext_lazy("Cap"),
        choices=[(AMOUNT, gettext_lazy("Amount")), (QUANTITY, gettext_lazy("Quantity"))],
    )
    limit = forms.CharField(label=gettext_lazy("Limit"), required=False, max_length=64)

    def __init__(self, *args, meters: list[MeterChoice], language: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.language = language
        self.fields["meter"].choices = [("", "—")] + [(m.code, m.name or m.code) for m in meters]
        properties = sorted({name for m in meters for name in m.group_by})
        self.fields["property"].choices = [("", _("all usage"))] + [(p, p) for p in properties]

    def clean_limit(self):
        return _number(self.cleaned_data["limit"], language=self.language)

    def clean(self):
        data = super().clean()
        if self.is_blank(data):
            return data
        if not data.get("meter"):
            self.add_error("meter", _("Choose the meter to cap."))
        if "limit" in data and data["limit"] is None:
            self.add_error("limit", _("Type the cap."))
        if data.get("property") and not (data.get("value") or "").strip():
            self.add_error("value", _("Type the value the cap is for."))
        return data

    @staticmethod
    def is_blank(data: dict) -> bool:
        return not (data.get("meter") or data.get("limit") or (data.get("value") or "").strip())


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("Send to"),
        choices=[
            (customer_limits.EMAIL, gettext_lazy("Email")),
            (customer_limits.SLACK, "Slack"),
            (customer_limits.TEAMS, "Microsoft Teams"),
            (customer_limits.DISCORD, "Discord"),
        ],
    )
    target = forms.CharField(
        label=gettext_lazy("Address or webhook URL"),
        required=False,
        max_length=customer_limits.MAX_URL,
    )
    name = forms.CharField(
        label=gettext_lazy("Name (optional)"),
        required=False,
        max_length=customer_limits.MAX_CHANNEL_NAME,
    )

    def __init__(self, *args, language: str = "", **kwargs):
        super().__init__(*args, **kwargs)

    @staticmethod
    def is_blank(data: dict) -> bool:
        return not ((data.get("target") or "").strip() or (data.get("name") or "").strip())


CapFormSet = formset_factory(
    CapForm, extra=0, max_num=customer_limits.MAX_CAPS, validate_max=True, absolute_max=50
)
ChannelFormSet = formset_factory(
    ChannelForm, extra=0, max_num=customer_limits.MAX_CHANNELS, validate_max=True, absolute_max=50
)


def _typed(number: str, *, language: str, money_currency: str = "") -> str:
    with customer_text.speaking(language):
        if money_currency:
            return customer_text.typed_money(Decimal(number), money_currency)
        return customer_text.typed_number(Decimal(number))


class LimitsForms:
    """The limits form with its caps and channels rows, bound to a POST or
    showing the limits as stored (`stored`, Customer.limits)."""

    def __init__(
        self,
        data=None,
        *,
        stored: dict,
        currency: str,
        meters: list[MeterChoice],
        language: str,
    ):
        self.language = language
        budget = stored.get("budget") or {}
        initial = {
            "budget_amount": _typed(budget["amount"], language=language, money_currency=currency)
            if budget
            else "",
            "budget_action": budget.get("action", customer_limits.STOP),
            "thresholds": "; ".join(
                _typed(t, language=language) for t in stored.get("alert_thresholds") or ()
            ),
        }
        caps = [self._cap_initial(cap, language, currency) for cap in stored.get("caps") or ()]
        channels = [
            {
                "kind": c["kind"],
                "target": c.get("to") or c.get("url", ""),
                "name": c.get("name", ""),
            }
            for c in stored.get("channels") or ()
        ]
        caps += [{"measure": AMOUNT}] * min(EMPTY_ROWS, customer_limits.MAX_CAPS - len(caps))
        channels += [{"kind": customer_limits.EMAIL}] * min(
            EMPTY_ROWS, customer_limits.MAX_CHANNELS - len(channels)
        )
        self.main = LimitsForm(data, initial=initial, language=language, prefix="limits")
        kwargs = {"meters": meters, "language": language}
        self.caps = CapFormSet(
            data, initial=None if data is not None else caps, prefix="caps", form_kwargs=kwargs
        )
        self.channels = ChannelFormSet(
            data,
            initial=None if data is not None else channels,
            prefix="channels",
            form_kwargs={"language": language},
        )
        # The form row of each item of the document's lists (blank rows are left out).
        self._rows: dict[str, list[int]] = {"caps": [], "channels": []}

    @staticmethod
    def _cap_initial(cap: dict, language: str, currency: str) -> dict:
        (name, value), *_rest = list((cap.get("when") or {}).items()) or [("", "")]
        if "amount" in cap:
            measure = AMOUNT
            limit = _typed(cap["amount"], language=language, money_currency=currency)
        else:
            measure = QUANTITY
            limit = _typed(cap["quantity"], language=language)
        return {
            "meter": cap["meter"],
            "property": name,
            "value": value,
            "measure": measure,
            "limit": limit,
        }

    def is_valid(self) -> bool:
        return all([self.main.is_valid(), self.caps.is_valid(), self.channels.is_valid()])

    def document(self) -> dict:
        """The limits as the API's document (API.md "Customer limits"), from the
        valid forms."""
        data = self.main.cleaned_data
        document: dict = {}
        if data["budget_amount"] is not None:
            document["budget"] = {
                "amount": str(data["budget_amount"]),
                "action": data["budget_action"],
            }
        caps = []
        for index, form in enumerate(self.caps.forms):
            row = form.cleaned_data
            if not row or CapForm.is_blank(row):
                continue
            cap: dict = {"meter": row["meter"]}
            if row.get("property"):
                cap["when"] = {row["property"]: row["value"].strip()}
            cap[row["measure"]] = str(row["limit"])
            caps.append(cap)
            self._rows["caps"].append(index)
        channels = []
        for index, form in enumerate(self.channels.forms):
            row = form.cleaned_data
            if not row or ChannelForm.is_blank(row):
                continue
            where = "to" if row["kind"] == customer_limits.EMAIL else "url"
            channel = {"kind": row["kind"], where: row["target"]}
            if row.get("name"):
                channel["name"] = row["name"]
            channels.append(channel)
            self._rows["channels"].append(index)
        document["caps"] = caps
        document["alert_thresholds"] = [str(t) for t in data["thresholds"]]
        document["channels"] = channels
        return document

    def refused(self, refusal: InvalidRequest) -> None:
        """Show limits_normalized's refusal on the fields it names."""
        for path, messages in refusal.fields.items():
            head, _dot, rest = path.partition(".")
            for message in messages:
                self._add(head, rest, message)

    def _add(self, head: str, rest: str, message: str) -> None:
        if head == "budget":
            field = "budget_action" if rest == "action" else "budget_amount"
            self.main.add_error(field, message)
        elif head == "alert_thresholds":
            self.main.add_error("thresholds", message)
        elif head in ("caps", "channels") and rest.split(".")[0].isdigit():
            index, _dot, field = rest.partition(".")
            rows = self._rows[head]
            formset = self.caps if head == "caps" else self.channels
            if int(index) >= len(rows):
                formset.forms[0].add_error(None, message)
                return
            form = formset.forms[rows[int(index)]]
            if head == "caps":
                name = field.split(".")[0]
                name = {"when": "value", "amount": "limit", "quantity": "limit"}.get(name, name)
                form.add_error(name if name in form.fields else None, message)
            else:
                words = WEBHOOK_WORDS.get(message)
                if words is None and _NOT_PUBLIC.fullmatch(message):
                    words = WEBHOOK_WORDS["the host resolves to an address that is not public"]
                name = "target" if field in ("to", "url") else field
                form.add_error(name if name in form.fields else None, str(words or message))
        else:
            self.main.add_error(None, message)

    @property
    def errors_any(self) -> bool:
        return bool(
            self.main.errors
            or any(f.errors for f in self.caps.forms)
            or any(f.errors for f in self.channels.forms)
            or self.caps.non_form_errors()
            or self.channels.non_form_errors()
        )

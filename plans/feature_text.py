"""A feature's value as finance types it in the admin and reads it there.

Typed: yes or no (or true / false) for a boolean feature, or the same word in
another admin language (oui / non, ja / nein), shown in the user's; for a config one a
number (50), a text (gpt-4o) or a list of texts separated by commas
(gpt-4o, o1), a list of one or none written in brackets ([gpt-4o], []). What
is typed passes plans.feature_grants.feature_value, the one rule of a
feature's value; a refusal says why in words, not in JSON."""

import re
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from common import customer_text
from common.vocabulary import FeatureKind
from plans.feature_grants import MAX_LIST, MAX_NUMBER, MAX_TEXT, BadValue, feature_value

VALUE_HELP = gettext_lazy(
    "Boolean feature: yes or no. Config feature: a number (50), a text (gpt-4o) or a "
    "list of texts separated by commas (gpt-4o, o1); a list of one in brackets: [gpt-4o]."
)

# The words of each admin language (config.user_language): a value typed in one
# reads the same for a user of another.
YES = frozenset({"yes", "true", "oui", "ja"})
NO = frozenset({"no", "false", "non", "nein"})
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
# 1,000 or 12,500,000: a number with thousands separators, not a list of texts.
GROUPED_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def value_from_text(kind: str, text: str) -> object:
    """The normalized value `text` gives a feature of this kind (as
    feature_value returns it); BadValue, in finance's words, says why not."""
    text = text.strip()
    if kind == FeatureKind.BOOLEAN:
        word = text.lower()
        if word not in YES | NO:
            raise BadValue(
                _('This feature is on or off: enter "{yes}" or "{no}".').format(
                    yes=yes_word(True), no=yes_word(False)
                )
            )
        parsed: object = word in YES
    else:
        parsed = _config_value(text)
    try:
        return feature_value(kind, parsed)
    except BadValue as bad:
        raise BadValue(_refusal(parsed, bad)) from None


def _config_value(text: str) -> object:
    if not text:
        raise BadValue("Enter a value: a number (50), a text (gpt-4o) or a list (gpt-4o, o1).")
    if text.startswith("[") and text.endswith("]"):
        inside = text[1:-1].strip()
        return _items(inside) if inside else ()
    if GROUPED_NUMBER.match(text):
        items = ", ".join(text.split(","))
        raise BadValue(
            f"{text} reads as a number with thousands separators: write it "
            f"{text.replace(',', '')}, or [{items}] for a list of texts."
        )
    if "," in text:
        return _items(text)
    if NUMBER.match(text):
        return Decimal(text)
    return text


def _items(text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(","))
    if not all(items):
        raise BadValue("The list has an empty item: separate its texts by single commas.")
    return items


def _refusal(parsed: object, bad: BadValue) -> str:
    """What feature_value refused, said of what finance typed."""
    if isinstance(parsed, Decimal):
        return f"Too large a number: at most {MAX_NUMBER:,} either way."
    if isinstance(parsed, str):
        return f"Too long a text: at most {MAX_TEXT} characters (this one has {len(parsed)})."
    if isinstance(parsed, tuple) and len(parsed) > MAX_LIST:
        return f"Too long a list: at most {MAX_LIST} texts (this one has {len(parsed)})."
    if isinstance(parsed, tuple):
        return f"A text of the list is too long: at most {MAX_TEXT} characters each."
    return f"{str(bad)[:1].upper()}{str(bad)[1:]}."


def value_input(value: object) -> str:
    """A stored value as the admin's field shows it for editing: read back by
    value_from_text as the same value (a text holding a comma, or reading as a
    number, is the exception; the form keeps an unchanged value as stored)."""
    if isinstance(value, bool):
        return yes_word(value)
    if isinstance(value, int | float | Decimal):
        return format(Decimal(str(value)).normalize(), "f") if value else "0"
    if isinstance(value, list | tuple):
        joined = ", ".join(value)
        return joined if len(value) > 1 else f"[{joined}]"
    return str(value)


def yes_word(value: bool) -> str:
    """The word a user types for a boolean feature's value, in their language."""
    if value:
        return pgettext("a boolean feature's value, as typed", "yes")
    return pgettext("a boolean feature's value, as typed", "no")


def value_text(value: object) -> str:
    """A value as finance reads it: 'Yes', 'No', '1,000', 'gpt-4o', 'gpt-4o, o1';
    an empty list is 'none'."""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, int | float | Decimal):
        return customer_text.quantity(Decimal(str(value)))
    if isinstance(value, list | tuple):
        return ", ".join(value) if value else _("none")
    return str(value)

"""An amount or quantity as a person types it in the admin, read once, in the
convention of the language they chose (their admin language, config.user_language):

- English: a decimal point, commas between thousands: "1,234.50", "1.50".
- French, German and Spanish: a decimal comma, points between thousands:
  "1.234,50", "1,50" (Japanese writes as English does).
- Every language: spaces between thousands, the no-break and narrow no-break
  spaces too ("1 234,50" as French writes it).

The rule for a number that could be read two ways:
1. Input that is well formed in the user's convention is read in it. Thousands are
   groups of exactly three digits after a first group of one to three that does not
   start with 0, so a German "1.500" is 1500 and an English "1,500" is 1500: that
   is how those conventions write fifteen hundred, and refusing it would refuse
   every thousand typed correctly.
2. Input that is not well formed in the user's convention but is in the other one
   ("1,50" for an English user, "1.50" for a German one) is refused with both
   readings, the other convention's and the one that takes every mark for a
   thousands separator: "did you mean 1.50 or 150?". Nothing is guessed; when
   both readings are the same number ("1.000.000" for an English user), it is read.
3. Anything else is refused, saying what to type: a currency sign or code ("$10",
   "10 €", "EUR 10"), NaN or Infinity, an exponent ("1e3"), other characters.

What the number may be (negative, its digits and decimal places) is for the form
field and the domain to say, as for any other value."""

import re
import unicodedata
from decimal import Decimal

from django.utils.translation import gettext as _

from common import customer_text
from common.money import DecimalRefused, is_known_currency

# The marks of each language's convention: (decimal mark, thousands mark).
POINT, COMMA = ".", ","
CONVENTIONS = {
    "en": (POINT, COMMA),
    "fr": (COMMA, POINT),
    "de": (COMMA, POINT),
    "es": (COMMA, POINT),
}
# Spaces separate thousands in every convention; French writes a narrow no-break space.
SPACES = "\N{SPACE}\N{NO-BREAK SPACE}\N{NARROW NO-BREAK SPACE}\N{THIN SPACE}"
_SPACES = re.compile(f"[{SPACES}]")
MINUS_SIGNS = ("-", "\N{MINUS SIGN}")
# A longer text is refused unread (no amount AMOUNT stores needs more).
MAX_TYPED = 64
_DIGITS = re.compile(r"[0-9]+")
_NUMBER_CHARACTERS = re.compile(r"[0-9., ]+")
_EXPONENT = re.compile(r"[0-9.,]*[0-9][eE][+-]?[0-9]+")
_LETTERS = re.compile(r"[^\W\d_]+")
_NON_FINITE = {"nan", "snan", "inf", "infinity"}
# A number written the English way, as the example in a refusal.
EXAMPLE = Decimal("1234.50")


def convention(language: str) -> tuple[str, str]:
    """The (decimal mark, thousands mark) of a language; English's for any other."""
    return CONVENTIONS.get(customer_text.language(language), CONVENTIONS["en"])


def typed_number_read(text: str, *, language: str) -> Decimal | None:
    """The number `text` says in `language`'s convention; None for blank text.
    Raises DecimalRefused, whose message (in the active language) says what to
    type instead; its code names the rule: 'ambiguous', 'currency', 'non_finite',
    'exponent', 'too_long' or 'invalid'."""
    typed = text.strip()
    if not typed:
        return None
    if len(typed) > MAX_TYPED:
        raise DecimalRefused(
            _("Type at most {count} characters.").format(count=MAX_TYPED), "too_long"
        )
    _refuse_what_is_no_number(typed)
    sign, body = "", typed
    if body.startswith(MINUS_SIGNS):
        sign, body = "-", body[1:]
    body = _SPACES.sub(" ", body)
    if not _NUMBER_CHARACTERS.fullmatch(body):
        raise _invalid(language)
    decimal_mark, thousands_mark = convention(language)
    mine = _read(body, decimal_mark, thousands_mark)
    if mine is not None:
        return Decimal(sign + mine)
    other = _read(body, thousands_mark, decimal_mark)
    if other is None:
        raise _invalid(language)
    # Every mark taken for a thousands separator: what "1,50" used to be saved as.
    grouped = re.sub(r"\D", "", body)
    if Decimal(other) == Decimal(grouped):
        return Decimal(sign + other)
    with customer_text.speaking(language):
        first = customer_text.typed_number(Decimal(sign + other), grouped=True)
        second = customer_text.typed_number(Decimal(sign + grouped), grouped=True)
    raise DecimalRefused(
        _("“{typed}” can be read two ways: did you mean {first} or {second}?").format(
            typed=typed, first=first, second=second
        ),
        "ambiguous",
    )


def _refuse_what_is_no_number(typed: str) -> None:
    """A currency, NaN or Infinity, an exponent: refused, saying what to type."""
    if any(unicodedata.category(character) == "Sc" for character in typed):
        raise _currency()
    words = _LETTERS.findall(typed)
    if any(is_known_currency(word.upper()) for word in words):
        raise _currency()
    if typed.lstrip("+-\N{MINUS SIGN}").casefold() in _NON_FINITE:
        raise DecimalRefused(
            _("Type a number: “{typed}” is not one.").format(typed=typed), "non_finite"
        )
    if _EXPONENT.fullmatch(typed.lstrip("+-\N{MINUS SIGN}")):
        raise DecimalRefused(
            _("Type the number in full, without an exponent (“{typed}”).").format(typed=typed),
            "exponent",
        )


def _currency() -> DecimalRefused:
    return DecimalRefused(_("Type the amount without its currency sign."), "currency")


def _invalid(language: str) -> DecimalRefused:
    with customer_text.speaking(language):
        example = customer_text.typed_number(EXAMPLE, grouped=True)
    return DecimalRefused(_("Type a number like {example}.").format(example=example), "invalid")


def _read(body: str, decimal_mark: str, thousands_mark: str) -> str | None:
    """`body` (digits, marks, plain spaces) as a plain decimal string ('1234.50')
    when it is well formed with these marks; None when it is not."""
    whole, has_mark, fraction = body.partition(decimal_mark)
    if has_mark and not _DIGITS.fullmatch(fraction):
        return None  # no digit after the mark, or a second mark or a space among them
    digits = _ungrouped(whole, thousands_mark)
    if digits is None or not (digits or fraction):
        return None
    return f"{digits or '0'}.{fraction}" if fraction else digits


def _ungrouped(whole: str, thousands_mark: str) -> str | None:
    """The digits of a whole part written without marks ('1234') or grouped by
    thousands with one kind of mark ('1,234', '1 234'); None otherwise."""
    if not whole or _DIGITS.fullmatch(whole):
        return whole
    marks = {character for character in whole if not character.isdigit()}
    if len(marks) != 1 or not marks <= {thousands_mark, " "}:
        return None
    first, *groups = whole.split(marks.pop())
    if not (_DIGITS.fullmatch(first) and len(first) <= 3 and not first.startswith("0")):
        return None
    if not all(_DIGITS.fullmatch(group) and len(group) == 3 for group in groups):
        return None
    return first + "".join(groups)

"""What a customer reads, written once: days, periods, quantities, amounts,
percentages and country names, in the customer's language and time zone.

Every page and document a customer (or finance, about a customer) reads prints
through here: invoice lines as the close writes them, invoice and credit note
PDFs, emails, the portal and the admin's invoice and customer pages. A document
is read in the locale and zone saved with it (its customer snapshot,
`CustomerText.of_snapshot`), so that every place prints the same days even after
the customer moved.

One rule per thing written:
- A day is "16 Nov 2026" (en), "16 nov. 2026" (fr), "16. Nov. 2026" (de),
  "16 nov 2026" (es), "2026年11月16日" (ja).
- A period is the half-open [start, end) read as inclusive days in the zone:
  the day holding `end` belongs to the next period, so consecutive periods
  never share a day in print. [1 Nov 00:00, 1 Dec 00:00) reads "1 Nov - 30 Nov
  2026"; one ending 20 Nov 14:00 ends "19 Nov" (the next starts "20 Nov").
- A prorated fee is written as billed, by the second: where its part starts
  (to the minute when not at midnight) and its share of the whole period, the
  same share its quantity reads as: "26 Nov 16:38 - 30 Nov 2026, 0.1436 of Nov
  2026", "3 seats x 0.1436" (shown_share: share x price gives the amount).
- Numbers are grouped by thousands, exact, without trailing zeros: 1,000,000
  (en, ja), 1 000 000 (fr), 1.000.000 (de, es: config/formats/es); amounts keep
  their currency's minor digits (none for JPY: 1,235) and are followed by its
  ISO code where the currency is not said beside them: "1.234,50 EUR".
- Functions write in the active language: callers write under `speaking(...)`
  or through a `CustomerText`, whose methods switch to its language themselves.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from django.utils import dateformat, formats, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from common.money import currency_exponent, quantize_money
from common.periods import month_start, period_share
from common.vocabulary import LineKind

# The languages the admin is written in (config.user_language), with their names
# in themselves.
ADMIN_LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch"}
# The languages a customer is written to (the first one for any other): the
# admin's, and Spanish and Japanese, which only customers read (their documents,
# emails and portal: locale/es and locale/ja hold those words only). The
# customer form's choices.
LANGUAGES = {**ADMIN_LANGUAGES, "es": "Español", "ja": "日本語"}
DEFAULT_LANGUAGE = "en"
# French, German and Spanish put a no-break space before the percent sign.
PERCENT_SPACE = dict.fromkeys(("fr", "de", "es"), "\N{NO-BREAK SPACE}")
# A prorated line's quantity is seats x its share, both to 10 decimal places:
# seats read back within this of a whole number.
SEATS_READ_EXACT = Decimal("0.0001")
# A prorated line's share of its whole period is written to 4 places (as the API
# gives it), more where those would not give its amount, up to the 10 stored.
SHARE_PLACES = 4
SHARE_STORED_PLACES = 10


def language(value: object) -> str:
    """The language a customer is written to: theirs if supported ("fr",
    "fr-CA" -> "fr"), otherwise English."""
    if isinstance(value, str):
        code = value.strip().lower().replace("_", "-").split("-", 1)[0]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def zone(name: object) -> ZoneInfo:
    """The time zone named `name` (a customer's, saved or current); UTC for none
    or one this system does not know."""
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def customer_zone(customer) -> ZoneInfo:
    """The customer's time zone as it is now (validated when it is saved)."""
    return zone(customer.timezone)


@contextmanager
def speaking(locale: object):
    """The customer's language (`language(locale)`) for the text written inside."""
    with translation.override(language(locale)):
        yield


def quantity(value: Decimal | int) -> str:
    """A count or quantity, grouped, exact, no trailing zeros: 1,000,000 (en),
    1 000 000 (fr), 1.000.000 (de); 0.0000025."""
    value = Decimal(value)
    value = value.normalize() if value else Decimal(0)
    # normalize() writes 1E+6 for a million; quantize back to whole units then.
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return formats.number_format(value, use_l10n=True, force_grouping=True)


def money(amount: Decimal, currency: str) -> str:
    """An amount with at least its currency's minor digits, grouped: '1,234.50'
    (en), '1 234,50' (fr), '1.234,50' (de), '6,700' (JPY), '0.0000025'."""
    amount = Decimal(amount) + 0  # folds -0 into 0
    digits = _money_digits(amount, currency)
    return formats.number_format(amount, decimal_pos=digits, use_l10n=True, force_grouping=True)


def _money_digits(amount: Decimal, currency: str) -> int:
    """The currency's minor digits, or the amount's own where it has more (a price)."""
    return max(currency_exponent(currency), -amount.normalize().as_tuple().exponent)


MILLION = Decimal(1_000_000)


def unit_price(price: Decimal, per: Decimal | None, currency: str, *, named: bool = False) -> str:
    """A line's unit price with how many units it is for, everywhere a line shows
    one: '0.05' (per 1: the price alone, as an amount), '2.50 per 1M', '2,50 par 1
    million' (fr), '2,50 pro 1 Mio.' (de), '0.40 per 1,000'; with `named`, the
    currency after the amount ('2.50 USD per 1M')."""
    return with_per(money_text(price, currency) if named else money(price, currency), per)


def with_per(price_text: str, per: Decimal | None) -> str:
    """A price as written, followed by how many units it is for: '2.50 per 1M';
    as written for per 1 (or none)."""
    per = Decimal(1) if per is None else Decimal(per)
    return price_text if per == 1 else f"{price_text} {per_units(per)}"


def per_units(per: Decimal) -> str:
    """How many units a price is for, after it: 'per 1M' (a whole number of
    millions: 'per 5M'), else 'per 1,000', 'per 2.5'."""
    if per >= MILLION and per % MILLION == 0:
        millions = int(per / MILLION)
        return ngettext("per {count}M", "per {count}M", millions).format(count=quantity(millions))
    return _("per {count}").format(count=quantity(per))


def typed_number(value: Decimal, *, grouped: bool = False) -> str:
    """A number as someone types it, with the digits it has: '1.50', '1234.5' (en),
    '1,50', '1234,5' (fr, de); grouped by thousands on request ('1,234.50')."""
    value = Decimal(value) + 0
    places = max(0, -value.as_tuple().exponent)
    return formats.number_format(value, decimal_pos=places, use_l10n=True, force_grouping=grouped)


def typed_money(amount: Decimal, currency: str) -> str:
    """An amount as someone types it, with at least its currency's minor digits
    (what was typed "39,90" shows back so): '39.90', '1234.50' (en), '39,90' (fr,
    de), '6700' (JPY), '0.002'."""
    amount = Decimal(amount) + 0
    digits = _money_digits(amount, currency)
    return formats.number_format(amount, decimal_pos=digits, use_l10n=True, force_grouping=False)


def money_text(amount: Decimal, currency: str) -> str:
    """An amount followed by its currency: '1,234.50 USD', '1 234,50 EUR'."""
    return f"{money(amount, currency)}\N{NO-BREAK SPACE}{currency}"


def iban(value: str) -> str:
    """An IBAN as it is printed (ISO 13616): groups of four, 'FR76 3000 6000 0112 ...'."""
    compact = "".join(str(value or "").split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def percent(value: Decimal) -> str:
    """A percentage without needless zeros: '20%' (en), '5,5 %' (fr), '19 %' (de)."""
    space = PERCENT_SPACE.get(translation.get_language() or "", "")
    return f"{quantity(Decimal(value))}{space}%"


def country_name(code: str) -> str:
    """An ISO 3166-1 alpha-2 code's country name ('DE' -> 'Germany', 'Allemagne',
    'Deutschland'); the code itself when unknown."""
    try:
        names = Locale.parse(language(translation.get_language())).territories
    except (UnknownLocaleError, ValueError):
        return code
    return names.get(code.upper(), code)


def local_day(moment: datetime, in_zone: ZoneInfo) -> date:
    return moment.astimezone(in_zone).date()


def last_day(
    start: datetime, end: datetime, in_zone: ZoneInfo, anchor: datetime | None = None
) -> date:
    """The last day a person reads in [start, end) (documents, pages and
    e-invoices alike), never before the first day. A period that ends where the
    next one begins ends the day before the one holding `end` (that day starts
    the next period): `end` at a midnight of `in_zone`, or at the time of day of
    the schedule's `anchor` in `in_zone` or in UTC (across a change of summer
    time too). `anchor` is the period's start unless given: each period a
    document shows is read with a boundary of its schedule (Invoice.
    period_anchor). A period cut during a day (a cancellation or a plan change at
    13:00 on the 28th) billed that day too, and ends on it."""
    anchor = start if anchor is None else anchor
    local_end, utc_end = end.astimezone(in_zone), end.astimezone(UTC)
    boundary = (
        local_end.time() == time(0)
        or local_end.time() == anchor.astimezone(in_zone).time()
        or utc_end.time() == anchor.astimezone(UTC).time()
    )
    last = local_end.date() - timedelta(days=1) if boundary else local_end.date()
    return max(local_day(start, in_zone), last)


def day(moment: datetime | date, in_zone: ZoneInfo | None = None) -> str:
    """A day: '16 Nov 2026' (in `in_zone` for an instant)."""
    if isinstance(moment, datetime):
        moment = local_day(moment, in_zone or UTC)
    return dateformat.format(moment, pgettext("a day: day, month, year", "j M Y"))


def day_time(moment: datetime, in_zone: ZoneInfo) -> str:
    """An instant to the minute, saying its zone: '6 Nov 2026, 00:00 UTC'."""
    local = moment.astimezone(in_zone)
    return _("{day}, {time} {zone}").format(
        day=day(local.date()), time=dateformat.format(local, "H:i"), zone=str(in_zone)
    )


def day_range(first: date, last: date) -> str:
    """Inclusive days: '16 Nov - 30 Nov 2026', '20 Dec 2026 - 19 Jan 2027', or one day."""
    if first == last:
        return day(first)
    if first.year == last.year:
        text = dateformat.format(first, pgettext("a day in a range, its year follows", "j M"))
    else:
        text = day(first)
    return _("{first} – {last}").format(first=text, last=day(last))  # noqa: RUF001 (a date range takes an en dash)


def date_range(
    start: datetime, end: datetime, in_zone: ZoneInfo, anchor: datetime | None = None
) -> str:
    """The period [start, end) as inclusive days in `in_zone` (last_day: a
    document's periods are read with its schedule's `anchor`)."""
    return day_range(local_day(start, in_zone), last_day(start, end, in_zone, anchor))


def period(start: datetime, end: datetime, in_zone: ZoneInfo) -> str:
    """'Nov 2026' for a whole calendar month in `in_zone`, its days otherwise."""
    local_start = start.astimezone(in_zone)
    if month_start(local_start) == start and month_start(local_start, months=1) == end:
        return dateformat.format(local_start, pgettext("a calendar month", "M Y"))
    return date_range(start, end, in_zone)


def named_zone(text: str, in_zone: ZoneInfo | str) -> str:
    """A date or period saying which time zone it is read in."""
    return _("{dates} ({zone})").format(dates=text, zone=str(in_zone))


def part_range(start: datetime, end: datetime, in_zone: ZoneInfo) -> str:
    """A part [start, end) of a period in `in_zone` as date_range writes it, its
    start to the minute where it is not a local midnight: '26 Nov 14:05 - 30
    Nov 2026'. Its end is the period's, written as the period's days are (the
    day holding it belongs to the next period)."""
    local_start = start.astimezone(in_zone)
    if local_start.time() == time(0):
        return date_range(start, end, in_zone)
    # Its end is the period's: read with the period's anchor, the end itself.
    first, last = local_start.date(), last_day(start, end, in_zone, anchor=end)
    if first.year == last.year:
        first_text = dateformat.format(first, pgettext("a day in a range, its year follows", "j M"))
    else:
        first_text = day(first)
    first_text = pgettext("a day, then a time of day", "{day} {time}").format(
        day=first_text, time=dateformat.format(local_start, "H:i")
    )
    return _("{first} – {last}").format(first=first_text, last=day(last))  # noqa: RUF001


def shown_share(
    share: Decimal,
    whole_price: Decimal | None = None,
    currency: str = "",
    amount: Decimal | None = None,
) -> Decimal:
    """A prorated line's share of its whole period as every text writes it: to 4
    places (the API's), or the fewest more for which it times `whole_price` (the
    line's fees for the whole period: its unit price times its seats) rounds to
    the amount billed, `amount` or else that price times the exact share,
    rounded: 0.1436 of 59.00 is 8.47, as billed for 4.3068 of 30 days."""
    share = Decimal(share)
    billed = None
    if whole_price is not None:
        whole_price = abs(Decimal(whole_price))
        billed = quantize_money(share * whole_price, currency) if amount is None else abs(amount)
    for places in range(SHARE_PLACES, SHARE_STORED_PLACES + 1):
        shown = share.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if billed is None or quantize_money(shown * whole_price, currency) == billed:
            break
    return shown


def share_text(share: Decimal, *, whole_price=None, currency: str = "", amount=None) -> str:
    """A prorated line's share as written (shown_share): '0.1436'."""
    return quantity(shown_share(share, whole_price, currency, amount))


def proration(
    start: datetime,
    end: datetime,
    *,
    whole: tuple[datetime, datetime],
    zone,
    whole_price: Decimal | None = None,
    currency: str = "",
) -> str:
    """The part [start, end) of the whole period `whole` as billed, by the
    second: its ends in the zone (part_range) and its share of the whole
    period (share_text, of `whole_price` in `currency` when given), naming that
    period: '26 Nov 14:05 - 30 Nov 2026, 0.1436 of Nov 2026'. A part that is
    not whole says so, to the minute and in its share."""
    share = period_share(start, end, whole=whole)
    return _("{dates}, {share} of {period}").format(
        dates=part_range(start, end, zone),
        share=share_text(share, whole_price=whole_price, currency=currency),
        period=period(*whole, zone),
    )


def proration_description(*, fee_kind: str, sign: int, name: str, seats: int, days: str) -> str:
    """'Unused time on Chat Growth (v1), 16 Nov - 30 Nov 2026, 0.5 of Nov 2026'
    (`days`: the proration's text, proration()), or the same for the seats of
    that version."""
    if fee_kind == LineKind.SEATS:
        if sign < 0:
            text = ngettext(
                "Unused time on {count} seat of {plan}, {days}",
                "Unused time on {count} seats of {plan}, {days}",
                seats,
            )
        else:
            text = ngettext(
                "Remaining time on {count} seat of {plan}, {days}",
                "Remaining time on {count} seats of {plan}, {days}",
                seats,
            )
        return text.format(count=quantity(seats), plan=name, days=days)
    if sign < 0:
        return _("Unused time on {plan}, {days}").format(plan=name, days=days)
    return _("Remaining time on {plan}, {days}").format(plan=name, days=days)


def _spoken(function, *, zoned: bool = False):
    """A function of this module as a writer's method, in its language (and zone)."""

    def method(self, *args, **keywords):
        with self.speaking():
            return function(*args, self.zone, **keywords) if zoned else function(*args)

    method.__doc__ = function.__doc__
    return method


def rate_group(values) -> str:
    """A rate card row's values as a line names them: 'gpt-4o · input'; the
    default row (no values) as 'other usage'."""
    return " · ".join(values) or _("other usage")


@dataclass(frozen=True)
class CustomerText:
    """The writer of one customer's text: its language, time zone and (for a
    document) currency. Each method writes in that language, whatever the
    active one is."""

    locale: str
    zone: ZoneInfo
    currency: str = ""

    @classmethod
    def of_snapshot(cls, snapshot: dict | None, currency: str = "") -> "CustomerText":
        """A document's writer: the locale and zone saved with it (its customer
        snapshot); English and UTC for a snapshot without them."""
        snapshot = snapshot or {}
        return cls(language(snapshot.get("locale")), zone(snapshot.get("timezone")), currency)

    @classmethod
    def of_customer(cls, customer) -> "CustomerText":
        """A customer's writer as the customer is now (a new document, the portal)."""
        return cls(language(customer.locale), customer_zone(customer))

    def speaking(self):
        return translation.override(self.locale)

    dates = _spoken(date_range, zoned=True)
    named = _spoken(named_zone, zoned=True)
    quantity = _spoken(quantity)
    percent = _spoken(percent)
    country = _spoken(country_name)
    rate_group = _spoken(rate_group)
    # An instant to the minute in the zone, naming it: when credits expire.
    day_time = _spoken(day_time, zoned=True)
    # The last day a person reads in [start, end): until when access is usable.
    last_day = _spoken(last_day, zoned=True)

    def day(self, moment: datetime | date | None) -> str:
        """'2 Dec 2026' in the zone; '' for none."""
        if moment is None:
            return ""
        with self.speaking():
            return day(moment, self.zone)

    def quantity_of(self, line) -> str:
        """An invoice line's quantity as its PDF and the admin print it
        (line_quantity of its kind, quantity, share, unit price and amount)."""
        return self.line_quantity(
            line.kind,
            line.quantity,
            share=line.share,
            unit_price=line.unit_price,
            amount=line.amount,
        )

    def line_quantity(
        self,
        kind: str,
        value: Decimal,
        *,
        share: Decimal | None = None,
        unit_price: Decimal | None = None,
        amount: Decimal | None = None,
    ) -> str:
        """A line's quantity: a prorated fee's its `share` of a whole period as
        billed ('0.1436', share_text: times `unit_price` it gives `amount`), of
        several seats (a seat line, a seat change, a plan change's proration of
        seats) as seats and share ('3 seats x 0.1436'), any other as a number."""
        value = Decimal(value)
        if not share:
            return self.quantity(value)
        seats = value / share
        whole_seats = seats.to_integral_value()
        if abs(seats - whole_seats) >= SEATS_READ_EXACT:
            return self.quantity(value)
        whole_price = None if unit_price is None else Decimal(unit_price) * whole_seats
        with self.speaking():
            part = share_text(share, whole_price=whole_price, currency=self.currency, amount=amount)
            # One seat reads as its share, but on a seat line (a base fee's proration is one).
            if kind != LineKind.SEATS and abs(whole_seats) == 1:
                return part
            return ngettext(
                "{count} seat × {share}",  # noqa: RUF001 (a multiplication sign)
                "{count} seats × {share}",  # noqa: RUF001
                abs(int(whole_seats)),
            ).format(count=quantity(whole_seats), share=part)

    def money(self, amount: Decimal | None, currency: str = "") -> str:
        """An amount in `currency`, the document's by default; '' for none."""
        if amount is None:
            return ""
        with self.speaking():
            return money(Decimal(amount), currency or self.currency)

    def unit_price(self, price: Decimal | None, per: Decimal | None, currency: str = "") -> str:
        """A line's unit price per its `per` units, in `currency` (the
        document's by default); '' for none."""
        if price is None:
            return ""
        with self.speaking():
            return unit_price(Decimal(price), per, currency or self.currency)

    def money_text(self, amount: Decimal, currency: str = "") -> str:
        with self.speaking():
            return money_text(Decimal(amount), currency or self.currency)

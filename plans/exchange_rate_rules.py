"""Exchange rates' rules and their writes: what a rate may say (two known
currencies, a rate above zero and at most MAX_RATE with at most RATE_PLACES
decimals, a moment, a source) and the history kept (a row is added, never
edited: a later rate of the pair supersedes it from its own moment). One pair
and moment has one rate: the database's unique constraint decides, and a second
is a 409 naming the first. The model is plans.exchange_rate_models; the lookup
plans.exchange_rates."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.translation import gettext

from common.errors import Conflict
from common.money import format_decimal
from common.periods import EARLIEST_INSTANT, LATEST_INSTANT
from plans.exchange_rate_models import MAX_RATE, RATE_PLACES
from plans.field_checks import FieldErrors, check_currency, check_number
from plans.models import ExchangeRate

FIELDS = ("base", "quote", "rate", "effective_from", "source")
MAX_SOURCE = ExchangeRate._meta.get_field("source").max_length


def check_exchange_rate(errors: FieldErrors, fields: Mapping[str, object]) -> None:
    """Add to `errors` a message for each field of `fields` (FIELDS) that breaks a rule."""
    base, quote, rate = fields.get("base"), fields.get("quote"), fields.get("rate")
    check_currency(errors, "base", base)
    check_currency(errors, "quote", quote)
    if "quote" not in errors.errors and "base" not in errors.errors and base == quote:
        errors.add(
            "quote",
            "A rate converts between two currencies: quote must differ from base",
            words=gettext("A rate converts between two currencies: choose another quote currency"),
        )
    check_number(errors, "rate", rate, required=True, positive=True, max_places=RATE_PLACES)
    if "rate" not in errors.errors and rate > MAX_RATE:
        errors.add(
            "rate",
            f"At most {format_decimal(MAX_RATE)}: one unit of a currency in another",
            words=gettext("At most {max}: one unit of a currency in another").format(
                max=format_decimal(MAX_RATE)
            ),
        )
    moment = fields.get("effective_from")
    if moment is None:
        errors.add("effective_from", "This field is required")
    elif not isinstance(moment, datetime) or moment.tzinfo is None:
        errors.add("effective_from", "A moment with its offset, e.g. 2026-11-01T00:00:00Z")
    elif not EARLIEST_INSTANT <= moment < LATEST_INSTANT:
        errors.add(
            "effective_from",
            f"Between {EARLIEST_INSTANT:%Y-%m-%d} and {LATEST_INSTANT:%Y-%m-%d}",
        )
    source = fields.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.add(
            "source",
            "Name where the rate comes from, e.g. ECB reference",
            words=gettext("Name where the rate comes from, e.g. ECB reference"),
        )
    elif len(source) > MAX_SOURCE:
        errors.add("source", f"At most {MAX_SOURCE} characters")


def _taken(base: str, quote: str, moment: datetime) -> Conflict:
    existing = ExchangeRate.objects.filter(base=base, quote=quote, effective_from=moment).first()
    named = f"exchange rate {existing.pk} ({existing})" if existing else "another rate"
    return Conflict(
        f"{base}->{quote} has a rate from {moment.isoformat()} already: {named}. A rate is "
        "never edited: add one from another moment to supersede it",
        fields={"effective_from": [f"The pair has a rate from this moment already: {named}"]},
        field_words={
            "effective_from": [
                gettext(
                    "The pair has a rate from this moment already: {rate}. Add one from "
                    "another moment to supersede it."
                ).format(rate=named)
            ]
        },
    )


def exchange_rate_create(
    *,
    base: object,
    quote: object,
    rate: Decimal | None,
    effective_from: datetime | None,
    source: object,
    created_by: str = "",
) -> ExchangeRate:
    """Add a rate: 1 `base` = `rate` `quote` from `effective_from` until the
    pair's next. 400 naming each field that breaks a rule; 409 naming the rate
    the pair has from that moment already. Nothing is written on a refusal."""
    fields = {
        "base": base,
        "quote": quote,
        "rate": rate,
        "effective_from": effective_from,
        "source": source,
    }
    errors = FieldErrors()
    check_exchange_rate(errors, fields)
    errors.raise_if_any("invalid exchange rate")
    try:
        with transaction.atomic():
            return ExchangeRate.objects.create(**fields, created_by=created_by[:200])
    except IntegrityError:
        raise _taken(base, quote, effective_from) from None


def exchange_rates_create(
    *, rows: Sequence[Mapping[str, object]], created_by: str = ""
) -> list[ExchangeRate]:
    """Add many rates at once (a pasted table), all or none: each row checked as
    exchange_rate_create checks one, its errors named "<row number>.<field>"
    (from 1); a pair and moment given twice is refused on its second row, and
    one the pair has already is a 409 naming the row and the rate. Nothing is
    written unless every row is added."""
    errors = FieldErrors()
    seen: dict[tuple, int] = {}
    for number, fields in enumerate(rows, start=1):
        row_errors = FieldErrors(prefix=f"{number}.")
        check_exchange_rate(row_errors, fields)
        errors.errors.update(row_errors.errors)
        errors.words.update(row_errors.words)
        if row_errors.errors:
            continue
        key = (fields["base"], fields["quote"], fields["effective_from"])
        if key in seen:
            errors.add(
                f"{number}.effective_from",
                f"Row {seen[key]} gives this pair a rate from the same moment",
                words=gettext("Row {row} gives this pair a rate from the same moment").format(
                    row=seen[key]
                ),
            )
        seen.setdefault(key, number)
    errors.raise_if_any("invalid exchange rates")
    made = []
    with transaction.atomic():
        for number, fields in enumerate(rows, start=1):
            try:
                with transaction.atomic():
                    made.append(
                        ExchangeRate.objects.create(
                            **{name: fields[name] for name in FIELDS}, created_by=created_by[:200]
                        )
                    )
            except IntegrityError:
                taken = _taken(fields["base"], fields["quote"], fields["effective_from"])
                raise Conflict(
                    f"row {number}: {taken}",
                    fields={f"{number}.effective_from": taken.fields["effective_from"]},
                    field_words={f"{number}.effective_from": taken.admin_fields["effective_from"]},
                ) from None
    return made


def exchange_rates(
    *, base: str | None = None, quote: str | None = None, at: datetime | None = None
) -> QuerySet:
    """The rates, of a base and/or quote currency when named, in the order
    added; with `at`, each pair's rate in effect then (a pair with none then is
    left out; an inverse pair's rate is its own row, not derived here)."""
    rows = ExchangeRate.objects.all()
    if base:
        rows = rows.filter(base=base)
    if quote:
        rows = rows.filter(quote=quote)
    if at is not None:
        latest = ExchangeRate.objects.filter(
            base=OuterRef("base"), quote=OuterRef("quote"), effective_from__lte=at
        ).order_by("-effective_from")
        rows = rows.filter(effective_from=Subquery(latest.values("effective_from")[:1]))
    return rows.order_by("id")

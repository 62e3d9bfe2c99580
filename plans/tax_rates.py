"""Writes to the tax rates (plans.services names them too): a rate's terms freeze
once an invoice was taxed at it, and archiving a rate customers hold as their own
moves them to the rate `replaced_by` names, or without one leaves them without it
(the defaults apply to one left with no rate of its own). The refusals' words for the admin are
in the admin user's language; the API's in English (it activates no other)."""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from common.e_invoice_codes import STANDARD, ZERO_RATED
from common.errors import Conflict, InvalidRequest
from common.money import format_decimal
from plans.locks import tax_rate_lock, tax_rates_lock
from plans.models import TaxRate
from plans.validation import validate_tax_rate

TAX_RATE_TERMS = ("code", "name", "percentage", "country")
# How a rate is classified on e-invoices: changeable even once it taxed invoices
# (no amount moves with them).
TAX_RATE_CLASSIFICATION = ("vat_category", "exemption_reason")


def tax_rate_create(
    *,
    code: str,
    name: str,
    percentage: Decimal,
    country: str = "",
    is_default: bool = False,
    active: bool = True,
    vat_category: str | None = None,
    exemption_reason: str = "",
) -> TaxRate:
    """Create a rate. Without a VAT category, one above 0 % is standard-rated (S)
    and one at 0 % zero-rated (Z): a client that names none, as before e-invoices,
    keeps creating the rates it did."""
    country = country or ""
    if not vat_category:
        positive = isinstance(percentage, Decimal) and percentage.is_finite() and percentage > 0
        vat_category = STANDARD if positive else ZERO_RATED
    exemption_reason = exemption_reason or ""
    validate_tax_rate(
        code=code,
        name=name,
        percentage=percentage,
        country=country,
        vat_category=vat_category,
        exemption_reason=exemption_reason,
    )
    default_rate_check(pk=None, country=country, is_default=is_default, active=active)
    try:
        with transaction.atomic():
            return TaxRate.objects.create(
                code=code,
                name=name.strip(),
                percentage=percentage,
                country=country,
                is_default=is_default,
                active=active,
                vat_category=vat_category,
                exemption_reason=exemption_reason,
            )
    except IntegrityError as exc:
        if refused := _default_refused(exc, country=country):
            raise refused from exc
        raise Conflict(
            f"a tax rate with code {code!r} already exists", fields={"code": ["already exists"]}
        ) from exc


def default_rate_check(*, pk: int | None, country: str, is_default: bool, active: bool) -> None:
    """A second active default rate for one country (or a second one without a
    country) is refused (400): both would be charged to the same customers, a
    stacked VAT no e-invoice can carry. The database refuses it too
    (tax_rate_one_default_per_country)."""
    if not (is_default and active):
        return
    defaults = TaxRate.objects.filter(is_default=True, active=True).exclude(pk=pk).order_by("code")
    other = defaults.filter(country=country or "").first()
    if other is not None:
        where = f"for {country}" if country else "without a country"
        problem = f"tax rate {other.code!r} is already the default {where}"
        if country:
            words = _("{rate} is already the default rate for {country}: untick its Default first.")
        else:
            words = _(
                "{rate} is already the default rate without a country: untick its Default first."
            )
    else:
        # A default without a country is charged in every country beside that
        # country's own default (plans.taxes.customer_tax_rates): stacked too.
        other = (defaults.filter(country="") if country else defaults.exclude(country="")).first()
        if other is None:
            return
        if country:
            problem = f"tax rate {other.code!r} is the default of every country, {country} too"
            words = _(
                "{rate} is the default rate of every country, {country} too: both would be "
                "charged. Untick its Default first."
            )
        else:
            problem = f"tax rate {other.code!r} is the default for {other.country}"
            words = _(
                "{rate} is the default rate for {other_country}: a default of every country "
                "would be charged beside it. Untick its Default first."
            )
    raise InvalidRequest(
        f"invalid default: {problem}",
        fields={"default": [problem]},
        words=words.format(rate=rate_name(other), country=country, other_country=other.country),
    )


def _default_refused(exc: IntegrityError, *, country: str) -> InvalidRequest | None:
    """The database's refusal of a second default rate (a race past
    default_rate_check) as the 400 it would have given; None for another."""
    if "tax_rate_one_default_per_country" not in str(exc) and "is_default" not in str(exc):
        return None
    where = f"for {country}" if country else "without a country"
    problem = f"another tax rate is already the default {where}"
    return InvalidRequest(f"invalid default: {problem}", fields={"default": [problem]})


def tax_rate_in_use(rate: TaxRate) -> bool:
    """Whether an invoice was taxed at the rate: its terms are then frozen."""
    return rate.invoice_tax_lines.exists()


def tax_rate_archive_check(
    *, rate: TaxRate, active: bool | None, replaced_by: object = None
) -> TaxRate | None:
    """The rate that archiving `rate` (`active` False; None: left as it is) moves
    the customers holding it as their own to: the active rate `replaced_by` names,
    or None (archived plainly: they hold it no more, tax_rate_update). 400 naming
    replaced_by for a replacement without archiving, an unknown or archived rate,
    the rate itself, or a rate of another country than the rate's (a rate without
    a country applies everywhere, so it may replace any). Reads only;
    tax_rate_update calls it with the rates locked."""
    if replaced_by is None:
        return None
    replacement = TaxRate.objects.filter(code=replaced_by).first()
    if active is not False:
        problem = "only when the rate is archived (active: false)"
        words = _("Customers move to another rate only when this rate is archived: untick Active.")
    elif replacement is None:
        problem = f"unknown tax rate {replaced_by!r}"
        words = _("That rate no longer exists: choose another rate for the customers.")
    elif replacement.pk == rate.pk:
        problem = "is the rate being archived"
        words = _("{rate} is the rate being archived: choose another one.").format(
            rate=rate_name(rate)
        )
    elif not replacement.active:
        problem = f"tax rate {replacement.code!r} is archived"
        words = _("{rate} is archived too: choose an active rate.").format(
            rate=rate_name(replacement)
        )
    elif rate.country and replacement.country not in ("", rate.country):
        problem = (
            f"tax rate {replacement.code!r} applies in {replacement.country}, "
            f"{rate.code} in {rate.country}"
        )
        words = _(
            "{replacement} applies in {its_country} and {rate} in {country}: "
            "choose a rate of {country} or one without a country."
        ).format(
            replacement=rate_name(replacement),
            its_country=replacement.country,
            rate=rate_name(rate),
            country=rate.country,
        )
    else:
        return replacement
    raise InvalidRequest(
        f"invalid replaced_by: {problem}", fields={"replaced_by": [problem]}, words=words
    )


def rate_name(rate: TaxRate) -> str:
    """'MwSt. 19 %': a tax rate as finance names it (the percentage tells names apart)."""
    return f"{rate.name} {format_decimal(rate.percentage)} %"


def _holders_move(rate: TaxRate, replacement: TaxRate | None) -> int:
    """The customers holding `rate` as their own hold `replacement` instead (once,
    for one holding both), or, without one, hold it no more (then their rates are
    the defaults, as for any customer without rates of its own); how many held it.
    Under their row locks, in primary-key order, taken after the rates'
    (plans.locks), as customers.locks takes them (no key update: a close
    committing their invoices takes key shares of them). Their Stripe customers
    hold no tax rates: nothing to send them."""
    holders = rate.customers.select_for_update(of=("self",), no_key=True)
    held_by = len(holders.order_by("pk").values_list("pk"))
    links = TaxRate.customers.through.objects
    if replacement is None:
        links.filter(taxrate=rate).delete()
        return held_by
    holding_both = links.filter(taxrate=replacement).values("customer_id")
    links.filter(taxrate=rate, customer_id__in=holding_both).delete()
    links.filter(taxrate=rate).update(taxrate=replacement)
    return held_by


def tax_rate_update(*, rate: TaxRate, replaced_by: str | None = None, **changes) -> TaxRate:
    """Change a tax rate. Once an invoice was taxed at it, only `active`,
    `is_default` and its classification (`vat_category`, `exemption_reason`) may
    change: archive it and create another for a new percentage. Its category is
    checked against its percentage when either changes (validate_tax_rate).
    Archiving a rate customers hold as their own moves them, in the same
    transaction, to `replaced_by` (the code of the rate they hold instead; what is
    refused: tax_rate_archive_check), or without it leaves them without it (the
    defaults apply to one left with no rate of its own); `rate.released` says how
    many held it. Locks the rate and its replacement, then its holders."""
    unknown = set(changes) - {*TAX_RATE_TERMS, *TAX_RATE_CLASSIFICATION, "is_default", "active"}
    if unknown:
        raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
    with transaction.atomic():
        codes = [replaced_by] if isinstance(replaced_by, str) else []
        locked = {r.pk: r for r in tax_rates_lock(ids=[rate.pk], codes=codes)}
        rate = locked[rate.pk]
        described = (*TAX_RATE_TERMS, *TAX_RATE_CLASSIFICATION)
        values = {name: getattr(rate, name) for name in described} | {
            name: value for name, value in changes.items() if name in described
        }
        values["country"] = values["country"] or ""
        values["exemption_reason"] = values["exemption_reason"] or ""
        classified = ("percentage", *TAX_RATE_CLASSIFICATION)
        reclassified = any(values[name] != getattr(rate, name) for name in classified)
        changed = [name for name in TAX_RATE_TERMS if values[name] != getattr(rate, name)]
        if changed and tax_rate_in_use(rate):
            raise Conflict(
                f"tax rate {rate.code} has taxed invoices: its {', '.join(changed)} cannot "
                "change; archive it (active: false) and create a new rate",
                fields={name: ["cannot change once invoices were taxed at it"] for name in changed},
            )
        replacement = tax_rate_archive_check(
            rate=rate, active=changes.get("active"), replaced_by=replaced_by
        )
        validate_tax_rate(**values, check_category=reclassified)
        for name, value in values.items():
            setattr(rate, name, value)
        rate.is_default = changes.get("is_default", rate.is_default)
        archiving = rate.active and changes.get("active") is False
        rate.active = changes.get("active", rate.active)
        default_rate_check(
            pk=rate.pk, country=rate.country, is_default=rate.is_default, active=rate.active
        )
        try:
            with transaction.atomic():
                rate.save()
        except IntegrityError as exc:
            if refused := _default_refused(exc, country=rate.country):
                raise refused from exc
            raise
        moving = archiving or replacement is not None
        rate.released = _holders_move(rate, replacement) if moving else 0
    return rate


def tax_rate_delete(*, rate: TaxRate) -> None:
    with transaction.atomic():
        rate = tax_rate_lock(rate.pk)
        if tax_rate_in_use(rate):
            raise Conflict(
                f"tax rate {rate.code} has taxed invoices: archive it (active: false) instead",
                words=_(
                    "{rate} has taxed invoices, so it is kept: archive it (untick Active) instead."
                ).format(rate=rate_name(rate)),
            )
        rate.delete()

"""Writes for customers: create and update, validated; a change is announced to
the apps that keep a copy of the customer's details (customers.reactions)."""

from decimal import Decimal

from django.db import IntegrityError, transaction

from common.errors import Conflict, InvalidRequest
from customers.billing_entities import billing_entity_by_code, default_billing_entity
from customers.e_invoice_details import E_INVOICE_CHECKED, seller_payment_means
from customers.locks import customer_lock
from customers.models import (
    CUSTOMER_DETAILS,
    E_INVOICE_DETAILS,
    LOCALES,
    BillingEntity,
    Customer,
    alert_threshold_errors,
    customer_e_invoice_errors,
    invoice_emails_errors,
    payment_terms_errors,
)
from customers.reactions import customer_changed
from plans.locks import tax_rates_lock
from plans.models import TaxRate
from plans.validation import address_trimmed, validate_customer


def validate_customer_settings(
    *,
    alert_thresholds: object,
    spend_limit_mode: object,
    payment_terms_days: object,
    locale: object = "en",
    tax_exempt: object = Customer.TAX_NONE,
    invoice_emails: object = None,
) -> None:
    """The customer's own settings: alert thresholds, spend limit mode, payment
    terms, the invoices' language, tax exemption and recipients."""
    fields = {}
    if locale not in dict(LOCALES):
        fields["locale"] = [f"must be one of {', '.join(dict(LOCALES))}"]
    exemptions = [value for value, _ in Customer.TAX_EXEMPTIONS]
    if tax_exempt not in exemptions:
        fields["tax_exempt"] = [f"must be one of {', '.join(exemptions)}"]
    if errors := invoice_emails_errors([] if invoice_emails is None else invoice_emails):
        fields["invoice_emails"] = errors
    if errors := payment_terms_errors(payment_terms_days):
        fields["payment_terms_days"] = errors
    if errors := alert_threshold_errors(alert_thresholds):
        fields["alert_thresholds"] = errors
    modes = [mode for mode, _ in Customer.SPEND_LIMIT_MODES]
    if spend_limit_mode not in modes:
        fields["spend_limit_mode"] = [f"must be one of {', '.join(modes)}"]
    if fields:
        raise InvalidRequest("invalid customer", fields=fields)


def validate_customer_e_invoicing(
    values: dict, seller: BillingEntity | None = None, *, before: dict | None = None
) -> None:
    """The customer's VAT number and e-invoice details (customer_e_invoice_errors)
    as `seller` (its entity; None: the default) bills it: 400 naming each field
    wrong, nothing written. `before`: what an update changes, and the seller of
    then: only what the update makes wrong is refused, so that a customer saved
    before a rule existed (a check digit, a mandate for direct debit) can still
    have its other details changed; the check before numbering names the rest."""
    fields = _e_invoice_errors(values, seller)
    if before is not None and fields:
        earlier = _e_invoice_errors(before["values"], before["seller"])
        fields = {name: texts for name, texts in fields.items() if earlier.get(name) != texts}
    if fields:
        first, texts = next(iter(fields.items()))
        raise InvalidRequest(f"invalid customer: {first}: {texts[0]}", fields=fields)


def _e_invoice_errors(values: dict, seller: BillingEntity | None) -> dict:
    seller = seller if seller is not None else default_billing_entity()
    return customer_e_invoice_errors(
        **{name: values.get(name) or "" for name in E_INVOICE_CHECKED},
        seller_means=seller_payment_means(seller),
    )


def tax_rates_by_code(codes: object) -> list[TaxRate]:
    """The active tax rates with these codes, in the order given; 400 for an
    unknown or archived code. Locks them (plans.locks, before the customer's row):
    an archive under way is waited for, and the rate it archived refused."""
    if not isinstance(codes, list | tuple) or not all(isinstance(c, str) for c in codes):
        raise InvalidRequest("invalid customer", fields={"tax_rates": ["must be a list of codes"]})
    rates = {rate.code: rate for rate in tax_rates_lock(codes=codes, no_key=True)}
    errors = [
        f"unknown tax rate {code!r}" if code not in rates else f"tax rate {code!r} is archived"
        for code in codes
        if code not in rates or not rates[code].active
    ]
    if len(set(codes)) != len(codes):
        errors.append("a tax rate is listed twice")
    if errors:
        raise InvalidRequest(
            f"invalid customer: tax_rates: {errors[0]}", fields={"tax_rates": errors}
        )
    return [rates[code] for code in codes]


def _as_json_numbers(percentages: list) -> list:
    # A JSONField cannot hold a Decimal: whole numbers are stored as ints.
    return [
        (int(p) if p == p.to_integral_value() else float(p)) if isinstance(p, Decimal) else p
        for p in percentages
    ]


def customer_create(
    *,
    external_id: str,
    name: str,
    currency: str,
    email: str = "",
    timezone_name: str = "UTC",
    address: dict | None = None,
    tax_id: str | None = None,
    spend_limit: Decimal | None = None,
    spend_limit_mode: str = Customer.SPEND_LIMIT_HARD,
    alert_thresholds: list | None = None,
    payment_terms_days: int | None = None,
    locale: str = "en",
    tax_exempt: str = Customer.TAX_NONE,
    tax_rates: list[str] | None = None,
    invoice_emails: list[str] | None = None,
    billing_entity: str | None = None,
    buyer_reference: str | None = "",
    order_reference: str | None = "",
    leitweg_id: str | None = "",
    peppol_id: str | None = "",
    e_invoice_format: str | None = "",
    sepa_mandate_reference: str | None = "",
    debtor_iban: str | None = "",
    card_last_digits: str | None = "",
    card_holder_name: str | None = "",
) -> Customer:
    """Create a customer. `billing_entity`: the code of the entity that bills it;
    None, the default entity (whichever is the default when it is invoiced).
    The e-invoice details (E_INVOICE_DETAILS): None or "" for none."""
    e_invoicing = {
        "buyer_reference": buyer_reference or "",
        "order_reference": order_reference or "",
        "leitweg_id": leitweg_id or "",
        "peppol_id": peppol_id or "",
        "e_invoice_format": e_invoice_format or "",
        "sepa_mandate_reference": sepa_mandate_reference or "",
        "debtor_iban": debtor_iban or "",
        "card_last_digits": card_last_digits or "",
        "card_holder_name": card_holder_name or "",
    }
    address = {} if address is None else address_trimmed(address)
    invoice_emails = [] if invoice_emails is None else invoice_emails
    alert_thresholds = [] if alert_thresholds is None else alert_thresholds
    validate_customer(
        external_id=external_id,
        currency=currency,
        timezone=timezone_name,
        spend_limit=spend_limit,
        address=address,
    )
    validate_customer_settings(
        alert_thresholds=alert_thresholds,
        spend_limit_mode=spend_limit_mode,
        payment_terms_days=payment_terms_days,
        locale=locale,
        tax_exempt=tax_exempt,
        invoice_emails=invoice_emails,
    )
    seller = billing_entity_by_code(billing_entity)
    validate_customer_e_invoicing({"tax_id": tax_id, **e_invoicing}, seller)
    try:
        with transaction.atomic():
            rates = tax_rates_by_code(tax_rates or [])
            customer = Customer.objects.create(
                external_id=external_id,
                name=name,
                email=email,
                currency=currency,
                timezone=timezone_name,
                address=address,
                tax_id=tax_id or "",
                spend_limit=spend_limit,
                spend_limit_mode=spend_limit_mode,
                alert_thresholds=_as_json_numbers(alert_thresholds),
                payment_terms_days=payment_terms_days,
                locale=locale,
                tax_exempt=tax_exempt,
                invoice_emails=invoice_emails,
                billing_entity=seller,
                **e_invoicing,
            )
            customer.tax_rates.set(rates)
            return customer
    except IntegrityError as exc:
        raise Conflict(
            f"a customer with external_id {external_id!r} already exists",
            fields={"external_id": ["already exists"]},
        ) from exc


def customer_update(*, customer: Customer, **changes) -> Customer:
    """Change a customer's details. Its currency is fixed once set: wallets,
    subscriptions and invoices are in it. `billing_entity` (a code; None or "":
    the default) changes who bills its next invoices, not those issued."""
    if "currency" in changes and changes["currency"] != customer.currency:
        raise InvalidRequest(
            "a customer's currency cannot change", fields={"currency": ["cannot change"]}
        )
    fields = CUSTOMER_DETAILS
    tax_rate_codes = changes.pop("tax_rates", None)
    new_seller = "billing_entity" in changes
    seller = billing_entity_by_code(changes.pop("billing_entity", None))
    unknown = set(changes) - set(fields) - {"currency"}
    if unknown:
        raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
    stored = {f: getattr(customer, f) for f in fields}
    values = stored | changes
    values["address"] = address_trimmed(values["address"])
    validate_customer(
        external_id=customer.external_id,
        currency=customer.currency,
        timezone=values["timezone"],
        spend_limit=values["spend_limit"],
        address=values["address"],
    )
    validate_customer_settings(
        alert_thresholds=values["alert_thresholds"],
        spend_limit_mode=values["spend_limit_mode"],
        payment_terms_days=values["payment_terms_days"],
        locale=values["locale"],
        tax_exempt=values["tax_exempt"],
        invoice_emails=values["invoice_emails"],
    )
    validate_customer_e_invoicing(
        values,
        seller if new_seller else customer.billing_entity,
        before={"values": stored, "seller": customer.billing_entity},
    )
    with transaction.atomic():
        rates = None if tax_rate_codes is None else tax_rates_by_code(tax_rate_codes)
        customer = customer_lock(customer.pk)
        for name in ("tax_id", *E_INVOICE_DETAILS):
            values[name] = values[name] or ""
        values["alert_thresholds"] = _as_json_numbers(values["alert_thresholds"])
        for name in fields:
            setattr(customer, name, values[name])
        if new_seller:
            customer.billing_entity = seller
        customer.save()
        if rates is not None:
            customer.tax_rates.set(rates)
        customer_changed(customer=customer)
    return customer

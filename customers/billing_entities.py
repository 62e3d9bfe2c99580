"""Billing entities (the sellers): which one bills a customer, and their writes.

Exactly one entity is the default, the seller of every customer that names none:
a partial unique index allows at most one, and billing_entity_save never leaves
none. An installation without any entity row (a database emptied by a test, or
one not migrated yet) bills as the BILLING_SELLER_* settings say, as before."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from common.errors import Conflict, InvalidRequest
from customers.models import BillingEntity, Customer
from plans.field_checks import FieldErrors
from plans.taxes import is_eu_cross_border_business
from plans.validation import address_trimmed, check_address


def seed_values(seller: dict) -> dict:
    """A billing entity's fields from a BILLING_SELLER setting (config.settings):
    what the first entity is created with (migration customers 0007), and the
    seller of an installation that has no entity row."""
    bank = seller.get("bank") or {}
    return {
        "code": "default",
        "legal_name": seller.get("name") or "",
        "address_lines": "\n".join(seller.get("address") or []),
        "country": str(seller.get("country") or "").upper()[:2],
        "tax_id": seller.get("tax_id") or "",
        "bank_name": bank.get("bank_name") or "",
        "iban": bank.get("iban") or "",
        "bic": bank.get("bic") or "",
        "email": seller.get("email") or "",
        "payment_instructions": seller.get("payment_instructions") or "",
        # The prefixes documents were numbered with before entities existed: their
        # sequences go on counting.
        "invoice_prefix": "INV",
        "credit_note_prefix": "CN",
        "is_default": True,
    }


def default_billing_entity() -> BillingEntity:
    """The default entity; without any row, an unsaved one from the settings."""
    entity = BillingEntity.objects.filter(is_default=True).first()
    return entity if entity is not None else BillingEntity(**seed_values(settings.BILLING_SELLER))


def billing_entity_zone(entity: BillingEntity | None = None) -> str:
    """The zone a seller's reports read their windows in (what "November" means
    on its margins): the entity's `timezone` (the default entity's when none is
    named), UTC while entities have none."""
    seller = entity or default_billing_entity()
    return getattr(seller, "timezone", "") or "UTC"


def customer_billing_entity(customer) -> BillingEntity:
    """The entity that bills this customer now: its own, or the default."""
    if customer.billing_entity_id is None:
        return default_billing_entity()
    return customer.billing_entity


def seller_from_email(*, sender_email: str, contact_email: str, configured: str) -> str:
    """The From address of a seller's email: the entity's own sender, else the one the
    installation set for that kind of email (BILLING_INVOICE_FROM_EMAIL,
    BILLING_ALERT_FROM_EMAIL), else the entity's contact email, else DEFAULT_FROM_EMAIL."""
    return sender_email or configured or contact_email or settings.DEFAULT_FROM_EMAIL


def billing_entity_by_code(code: object) -> BillingEntity | None:
    """The entity a customer names by its code (the API's `billing_entity`);
    None or "" names none (the default). 400 for an unknown code."""
    if code in (None, ""):
        return None
    entity = BillingEntity.objects.filter(code=code).first() if isinstance(code, str) else None
    if entity is None:
        known = ", ".join(BillingEntity.objects.values_list("code", flat=True))
        raise InvalidRequest(
            f"unknown billing entity {code!r}",
            fields={"billing_entity": [f"unknown billing entity {code!r}; known: {known}"]},
        )
    return entity


@transaction.atomic
def billing_entity_save(*, entity: BillingEntity) -> BillingEntity:
    """Validate and save an entity (history rows included). Made the default, it
    takes over from the former default (saved too, so its history says so); the
    default cannot stop being it other than by another taking over. Refused
    whole (400) when a field is wrong."""
    try:
        # The one default is kept below, not refused: its constraint is left out here.
        entity.full_clean(exclude=["is_default"])
    except ValidationError as error:
        fields = {name: list(messages) for name, messages in error.message_dict.items()}
        first = next(iter(fields.items()))
        raise InvalidRequest(
            f"invalid billing entity: {first[0]}: {first[1][0]}", fields=fields
        ) from error
    # Every entity row, locked in id order: two saves making a default wait in turn.
    rows = BillingEntity.objects.select_for_update().order_by("pk")
    others = [row for row in rows if row.pk != entity.pk]
    former = next((row for row in others if row.is_default), None)
    if entity.is_default and former is not None:
        former.is_default = False
        former.save(update_fields=["is_default"])
    elif not entity.is_default and former is None:
        raise Conflict(
            f"{entity} must stay the default billing entity: one always is; make another "
            "entity the default instead",
            fields={"is_default": ["one billing entity is always the default"]},
        )
    entity.save()
    return entity


def customers_waiting_for_vat_number(entity: BillingEntity) -> list[Customer]:
    """The customers `entity` bills that it cannot invoice while it has no VAT
    number (invoices.sellers.seller_check): EU businesses in another member
    state. Their drafts are not finalized and their threshold invoices are not
    written until the number is added. None when the entity has one."""
    if entity.pk is None or entity.tax_id:
        return []
    billed = Customer.objects.filter(billing_entity=entity)
    if entity.is_default:
        billed = Customer.objects.filter(Q(billing_entity=entity) | Q(billing_entity__isnull=True))
    candidates = billed.exclude(tax_id="").order_by("name", "external_id")
    return [customer for customer in candidates if _waits(entity, customer)]


def _waits(entity: BillingEntity, customer: Customer) -> bool:
    """Whether `customer` is an EU business in another member state than `entity`
    (the invoice it needs carries the seller's VAT number)."""
    buyer = {"address": customer.address or {}, "tax_id": customer.tax_id}
    return bool(customer.tax_id) and is_eu_cross_border_business(
        seller_country=entity.country, buyer=buyer
    )


def vat_number_waited_for(customer: Customer) -> BillingEntity | None:
    """The entity billing `customer` when it cannot invoice it for want of its own
    VAT number (customers_waiting_for_vat_number); else None."""
    entity = customer_billing_entity(customer)
    if entity.pk is None or entity.tax_id:
        return None
    return entity if _waits(entity, customer) else None


def waiting_for_vat_number_words(entity: BillingEntity, waiting: list[Customer]) -> str:
    """'2 customers of Example SAS are EU businesses in another country (Acme
    GmbH, Kunde AG): their invoices wait for this entity's VAT number …'."""
    shown = [customer.name or customer.external_id for customer in waiting[:5]]
    if len(waiting) > 5:
        shown.append(f"and {len(waiting) - 5} more")
    count = len(waiting)
    who = "1 customer" if count == 1 else f"{count} customers"
    are = "is an EU business" if count == 1 else "are EU businesses"
    return (
        f"{who} of {entity.legal_name} {are} in another country ({', '.join(shown)}): "
        "their invoices wait for this entity's VAT number (drafts are not finalized and "
        "threshold invoices are not written). Add the VAT number under Tax and "
        "registration."
    )


def billed_by(entity: BillingEntity):
    """The customers `entity` bills: those naming it, and those naming none when
    it is the default."""
    named = Q(billing_entity=entity)
    if entity.is_default:
        named |= Q(billing_entity__isnull=True)
    return Customer.objects.filter(named)


# The API's names of an entity's fields (API.md v1.3, "Books per seller"), where
# they differ from the model's: its refusals name what the caller sent.
API_FIELDS = {
    "invoice_prefix": "number_prefix",
    "tax_id": "vat_id",
    "is_default": "default",
    "address_lines": "address",
    "country": "address.country",
}


def address_lines_of(address: dict) -> str:
    """An address object (line1, line2, postal_code, city, state) as the lines an
    entity prints: the postal code and city on one line."""
    town = " ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
    lines = [address.get("line1"), address.get("line2"), town, address.get("state")]
    return "\n".join(line.strip() for line in lines if line and line.strip())


def street_of(address: dict) -> str:
    """The street an e-invoice carries (BT-35): line1, and line2 after a comma."""
    lines = [address.get("line1"), address.get("line2")]
    return ", ".join(line.strip() for line in lines if line and line.strip())


def billing_entity_create(
    *,
    code: str,
    legal_name: str,
    functional_currency: str,
    number_prefix: str,
    address: dict,
    timezone: str = "UTC",
    vat_id: str = "",
    credit_note_prefix: str | None = None,
    is_default: bool = False,
    e_invoicing: bool = False,
    registration_id: str = "",
    iban: str = "",
    bic: str = "",
    peppol_id: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    payment_means: str = BillingEntity.CREDIT_TRANSFER,
    sepa_creditor_id: str = "",
    email: str = "",
    sender_email: str = "",
    bank_name: str = "",
    payment_instructions: str = "",
    invoice_footer: str = "",
) -> BillingEntity:
    """Create an entity as the API names it (POST /api/v1/billing-entities):
    invoices numbered NUMBER_PREFIX-YYYY-NNNNNN, credit notes in a sequence of
    their own (`credit_note_prefix`, default the number prefix and CN). A code
    taken is a 409; any other rule broken, a 400 naming the API's field;
    nothing is written on a refusal (billing_entity_save)."""
    errors = FieldErrors()
    address = address_trimmed(address)
    check_address(errors, "address", address)
    errors.raise_if_any("invalid billing entity")
    if BillingEntity.objects.filter(code=code).exists():
        raise Conflict(
            f"billing entity {code!r} exists already", fields={"code": ["already exists"]}
        )
    entity = BillingEntity(
        code=code,
        legal_name=legal_name,
        functional_currency=functional_currency,
        timezone=timezone,
        invoice_prefix=number_prefix,
        credit_note_prefix=credit_note_prefix or f"{number_prefix}CN",
        address_lines=address_lines_of(address),
        country=address.get("country") or "",
        tax_id=vat_id,
        is_default=is_default,
        street=street_of(address),
        postal_code=address.get("postal_code") or "",
        city=address.get("city") or "",
        e_invoicing=e_invoicing,
        registration_id=registration_id,
        iban=iban,
        bic=bic,
        peppol_id=peppol_id,
        contact_name=contact_name,
        contact_phone=contact_phone,
        payment_means=payment_means,
        sepa_creditor_id=sepa_creditor_id,
        email=email,
        sender_email=sender_email,
        bank_name=bank_name,
        payment_instructions=payment_instructions,
        invoice_footer=invoice_footer,
    )
    try:
        return billing_entity_save(entity=entity)
    except (InvalidRequest, Conflict) as refused:
        fields = {API_FIELDS.get(name, name): texts for name, texts in refused.fields.items()}
        first, texts = next(iter(fields.items()), ("", [refused.message]))
        raise type(refused)(
            f"invalid billing entity: {first}: {texts[0]}", fields=fields
        ) from refused

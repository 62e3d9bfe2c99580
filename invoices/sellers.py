"""The seller a document carries. An invoice copies its billing entity
(customers.BillingEntity) when it is finalized, a credit note when it is issued,
as the invoice copies its customer's details when it is written: a change to the
entity shows on the next document, never on one already issued. A draft shows
its customer's entity as it is now."""

from django.core.files.storage import default_storage
from django.db.models import Q

from common.errors import Conflict
from customers.billing_entities import customer_billing_entity
from customers.models import BillingEntity
from plans.taxes import is_eu_cross_border_business

# The seller's details only e-invoices carry, and their values where it has none.
E_INVOICE_KEYS = {
    "e_invoicing": False,
    "street": "",
    "postal_code": "",
    "city": "",
    "peppol_id": "",
    "contact_name": "",
    "contact_phone": "",
    "payment_means": "credit_transfer",
    "sepa_creditor_id": "",
}


def seller_snapshot(entity) -> dict:
    """What documents print of an entity (a BillingEntity, or its historical model
    in a migration): plain JSON, kept on the document."""
    return {
        "entity_id": entity.pk,
        "code": entity.code,
        "name": entity.legal_name,
        "address": [line.strip() for line in entity.address_lines.splitlines() if line.strip()],
        "country": entity.country,
        "tax_id": entity.tax_id,
        "registration_id": entity.registration_id,
        "bank": {"bank_name": entity.bank_name, "iban": entity.iban, "bic": entity.bic},
        "email": entity.email,
        "sender_email": entity.sender_email,
        "payment_instructions": entity.payment_instructions,
        "footer": entity.invoice_footer,
        # The stored file's name: an entity given a new logo keeps the old file.
        "logo": entity.logo.name if entity.logo else "",
        # What its e-invoices carry besides (invoices.e_invoices); a historical
        # model in an earlier migration has none of them.
        **{key: getattr(entity, key, default) for key, default in E_INVOICE_KEYS.items()},
    }


def invoice_seller(invoice) -> dict:
    """The seller an invoice prints: its copy once finalized; a draft's (or an
    invoice finalized before entities existed) its customer's entity now."""
    if invoice.seller_snapshot:
        return invoice.seller_snapshot
    return seller_snapshot(customer_billing_entity(invoice.customer))


def seller_words(snapshot: dict, *, issued: bool) -> str:
    """The seller as finance reads it on an admin page: 'Example GmbH'; a draft's
    'Example GmbH (when issued: the customer's billing entity now)'."""
    name = snapshot.get("name") or snapshot.get("code") or "—"
    return name if issued else f"{name} (when issued: the customer's billing entity now)"


def invoices_of_entity(invoices, entity: BillingEntity):
    """The invoices `entity` issued, and the drafts it will issue (their customer's
    entity now: its own, or the default for a customer naming none)."""
    now = Q(billing_entity__isnull=True, customer__billing_entity=entity)
    if entity.is_default:
        now |= Q(billing_entity__isnull=True, customer__billing_entity__isnull=True)
    return invoices.filter(Q(billing_entity=entity) | now)


def credit_note_seller(note) -> dict:
    return note.seller_snapshot or invoice_seller(note.invoice)


def invoice_billing_entity(invoice) -> BillingEntity:
    """The entity whose sequences number the invoice's credit notes: the one that
    issued it (migration invoices 0015 gave those issued before entities existed
    the first one); a draft's customer's."""
    if invoice.billing_entity_id is not None:
        return invoice.billing_entity
    return customer_billing_entity(invoice.customer)


def seller_logo(snapshot: dict) -> bytes | None:
    """The logo's bytes, or None (none set, or its file is gone)."""
    name = snapshot.get("logo") or ""
    if not name or not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as file:
        return file.read()


def seller_check(*, invoice, entity: BillingEntity) -> None:
    """Refuse (409) to finalize an invoice the entity cannot legally issue: to an
    EU business in another member state (invoiced with its VAT number) from an
    entity without a VAT number of its own, which such an invoice must carry."""
    buyer = invoice.customer_snapshot or {}
    if entity.tax_id or not is_eu_cross_border_business(seller_country=entity.country, buyer=buyer):
        return
    raise Conflict(
        f"{buyer.get('name') or invoice.customer.name} is billed by {entity.legal_name}, "
        "which has no VAT number: add it on the billing entity before finalizing",
        fields={"billing_entity": [f"{entity.legal_name} has no VAT number"]},
    )

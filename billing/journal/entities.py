"""The sellers whose books the journal keeps, by the code its entries carry."""

from billing.journal.models import JournalEntry
from common.errors import InvalidRequest
from customers.models import BillingEntity


def books_entities() -> list[str]:
    """The sellers that keep books: the entities; on an installation without
    entity rows, the codes its entries carry ("default", as it bills)."""
    codes = sorted(BillingEntity.objects.values_list("code", flat=True))
    if codes:
        return codes
    return sorted(set(JournalEntry.objects.values_list("billing_entity", flat=True).distinct()))


def books_entity(code: str | None) -> str:
    """The seller asked for, checked (400 naming `billing_entity` when unknown:
    neither an entity nor a code entries carry); none asked for, the only one
    there is (400 naming them when more)."""
    known = books_entities()
    if code:
        if code in known or JournalEntry.objects.filter(billing_entity=code).exists():
            return code
        raise InvalidRequest(
            f"unknown billing entity {code!r}; known: {', '.join(known)}",
            fields={"billing_entity": [f"unknown billing entity {code!r}"]},
        )
    if len(known) <= 1:
        return known[0] if known else "default"
    raise InvalidRequest(
        f"billing_entity is required: the books are per entity ({', '.join(known)})",
        fields={"billing_entity": [f"required: one of {', '.join(known)}"]},
    )


def functional_currency_of(code: str) -> str:
    entity = BillingEntity.objects.filter(code=code).first()
    if entity is not None:
        return entity.functional_currency
    written = (
        JournalEntry.objects.filter(billing_entity=code)
        .values_list("functional_currency", flat=True)
        .first()
    )
    return written or "USD"

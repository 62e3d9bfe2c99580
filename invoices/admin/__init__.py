"""Invoices in the admin, a module per model: invoices (with their credit note,
void and mark-uncollectible pages), credit notes, emails, payments, purchases,
Stripe events and dunning. Importing the package registers them all."""

from invoices.admin import (
    credit_notes,
    dunning,
    emails,
    invoices,
    payments,
    purchases,
    stripe_events,
)

__all__ = [
    "credit_notes",
    "dunning",
    "emails",
    "invoices",
    "payments",
    "purchases",
    "stripe_events",
]

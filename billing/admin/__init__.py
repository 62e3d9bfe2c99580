"""The billing admin: subscriptions (with the bulk migration action), plan
migrations, alerts and webhooks, price simulations, the margins report, sending
after a restore, holds, and the records usage sources sent that were refused.
Importing the package registers them all."""

from billing.admin import (
    holds,
    integrations,
    journal,
    margins,
    notifications,
    outbound_pause,
    plan_migrations,
    refused_records,
    simulations,
    subscriptions,
)

__all__ = [
    "holds",
    "integrations",
    "journal",
    "margins",
    "notifications",
    "outbound_pause",
    "plan_migrations",
    "refused_records",
    "simulations",
    "subscriptions",
]

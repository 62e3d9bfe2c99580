"""The billing admin: subscriptions (with the bulk migration action), plan
migrations, alerts and webhooks, price simulations and the margins report.
Importing the package registers them all."""

from billing.admin import (
    integrations,
    journal,
    margins,
    notifications,
    plan_migrations,
    simulations,
    subscriptions,
)

__all__ = [
    "integrations",
    "journal",
    "margins",
    "notifications",
    "plan_migrations",
    "simulations",
    "subscriptions",
]

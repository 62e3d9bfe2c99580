"""The billing admin: subscriptions (with the bulk migration action), plan
migrations, alerts and webhooks, price simulations, the margins report and
sending after a restore. Importing the package registers them all."""

from billing.admin import (
    integrations,
    journal,
    margins,
    notifications,
    outbound_pause,
    plan_migrations,
    simulations,
    subscriptions,
)

__all__ = [
    "integrations",
    "journal",
    "margins",
    "notifications",
    "outbound_pause",
    "plan_migrations",
    "simulations",
    "subscriptions",
]

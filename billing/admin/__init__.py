"""The billing admin: subscriptions (with the bulk migration action), plan
migrations, alerts and webhooks, and price simulations. Importing the package
registers them all."""

from billing.admin import notifications, plan_migrations, subscriptions
from billing.simulation import admin as simulation_admin

__all__ = ["notifications", "plan_migrations", "simulation_admin", "subscriptions"]

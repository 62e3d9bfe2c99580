"""The billing admin: subscriptions (with the bulk migration action), plan
migrations, alerts and webhooks. Importing the package registers them all."""

from billing.admin import notifications, plan_migrations, subscriptions

__all__ = ["notifications", "plan_migrations", "subscriptions"]

"""Customers in the admin, a module per model: customers (with their billing,
usage, dunning and commits on their page), billing entities and API keys.
Importing the package registers them all."""

from customers.admin import api_keys, billing_entities, customers

__all__ = ["api_keys", "billing_entities", "customers"]

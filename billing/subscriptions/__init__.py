"""Subscriptions: create, change plan, cancel, seats, bulk migration."""

"""Alerts and outgoing webhooks."""

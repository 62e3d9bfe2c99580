"""The billing API: events, subscriptions, usage and the check, plan migrations."""

"""The catalog in the admin, a module per model: plans, their versions (with
their charges, features, lifecycle and price pages), meters, features, coupons,
credit packs, tax rates, cost rates and exchange rates. Forms validate with plans.validation
(the same rules as the API); saves and actions go through plans.services.
Importing the package registers them all."""

from plans.admin import (
    cost_rates,
    coupons,
    credit_packs,
    exchange_rates,
    features,
    meters,
    plan_versions,
    plans,
    tax_rates,
)

__all__ = [
    "cost_rates",
    "coupons",
    "credit_packs",
    "exchange_rates",
    "features",
    "meters",
    "plan_versions",
    "plans",
    "tax_rates",
]

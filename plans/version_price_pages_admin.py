"""The pages a plan version has besides its change page, for PlanVersionAdmin's
bases (before AuditHistoryAdmin, whose History page the price history replaces):
price history, compare with published, try prices. All read-only: viewing plan
versions is enough."""

from plans.price_history_admin import PriceHistoryMixin
from plans.price_sandbox_admin import PriceSandboxMixin
from plans.version_compare_admin import VersionCompareMixin


class VersionPricePagesMixin(PriceHistoryMixin, VersionCompareMixin, PriceSandboxMixin):
    pass

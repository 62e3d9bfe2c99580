"""The words of the domain that several apps store and compare: each consumption
model of a charge and each kind of invoice line, defined once."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsumptionModel(models.TextChoices):
    """How a metered feature is consumed: one model per charge."""

    OVERAGE = "overage", _("Soft cap: included units, then priced overage")
    HARD_CAP = "hard_cap", _("Hard cap: included units, then blocked")
    CREDITS = "credits", _("Prepaid credits drawn per unit")
    BALANCE = "balance", _("Prepaid money balance drawn per unit")


# Metered against an included allowance (usage alerts, the check's "remaining").
ALLOWANCE_MODELS = (ConsumptionModel.OVERAGE.value, ConsumptionModel.HARD_CAP.value)
# Drawn from a wallet at ingestion.
DRAWN_MODELS = (ConsumptionModel.CREDITS.value, ConsumptionModel.BALANCE.value)


class WhenExhausted(models.TextChoices):
    """What a wallet-drawn charge does with usage its wallet cannot pay for."""

    BLOCK = "block", _("Block: the check refuses usage the wallet cannot pay for")
    BILL = "bill", _("Bill: usage the wallet cannot pay for is invoiced at the close")


class LineKind(models.TextChoices):
    """What an invoice line bills, in the order an invoice lists them."""

    BASE_FEE = "base_fee", _("Base fee")
    SEATS = "seats", _("Seats")
    USAGE = "usage", _("Usage")
    OVERAGE = "overage", _("Overage")
    PRORATION_CREDIT = "proration_credit", _("Proration credit")
    PRORATION_CHARGE = "proration_charge", _("Proration charge")
    MINIMUM_COMMITMENT = "minimum_commitment", _("Minimum commitment true-up")
    UNCOVERED_USAGE = "uncovered_usage", _("Usage not covered by the wallet")
    LATE_USAGE = "late_usage", _("Late usage")
    USAGE_INVOICED = "usage_invoiced", _("Usage invoiced earlier")
    CREDIT_PACK = "credit_pack", _("Credit pack purchase")
    CREDITS = "credits", _("Credits purchase")
    TOP_UP = "top_up", _("Balance top-up")
    CREDITS_APPLIED = "credits_applied", _("Credits applied")
    COMMIT = "commit", _("Commit")
    COMMIT_DRAWDOWN = "commit_drawdown", _("Commit drawdown")
    COMMIT_OVERAGE = "commit_overage", _("Commit overage")
    COMMIT_TRUE_UP = "commit_true_up", _("Commit true-up")
    DISCOUNT = "discount", _("Discount")
    TAX = "tax", _("Tax")


class FeatureKind(models.TextChoices):
    """What a plan grants of a feature: on or off, or a value (a limit, a list)."""

    BOOLEAN = "boolean", _("Boolean: granted or not")
    CONFIG = "config", _("Config: a number, a text or a list of texts")


class CouponDuration(models.TextChoices):
    """How many period invoices a coupon's discount applies to."""

    ONCE = "once", _("Once: the next period invoice")
    REPEATING = "repeating", _("Repeating: the next N period invoices")
    FOREVER = "forever", _("Forever: every period invoice")

"""Exchange rates finance enters (re-exported by plans.models): 1 `base` =
`rate` `quote` from `effective_from` until the next rate of the same pair.
Rows are never edited: a later row of the pair supersedes one from its own
moment, so the history stays. Looked up by plans.exchange_rates; written by
plans.exchange_rate_rules."""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from common.money import format_decimal

# The most one unit of a currency may be worth in another: the weakest
# currencies are ~25,000 to the dollar, far below it.
MAX_RATE = Decimal(10**9)
RATE_PLACES = 10
# A rate as stored: up to 10 integer digits (MAX_RATE has 10) and 10 decimals.
RATE = {"max_digits": 10 + RATE_PLACES, "decimal_places": RATE_PLACES}


class ExchangeRate(models.Model):
    base = models.CharField(
        max_length=3, verbose_name=_("base currency"), help_text=_("One unit of it, e.g. USD.")
    )
    quote = models.CharField(
        max_length=3,
        verbose_name=_("quote currency"),
        help_text=_("What one unit of the base currency is worth in, e.g. EUR."),
    )
    rate = models.DecimalField(
        **RATE,
        verbose_name=_("rate"),
        help_text=_("1 base = rate quote, e.g. 0.9210; at most 10 decimal places."),
    )
    effective_from = models.DateTimeField(
        verbose_name=_("effective from"),
        help_text=_("The rate applies from this moment until the pair's next rate."),
    )
    source = models.CharField(
        max_length=200,
        verbose_name=_("source"),
        help_text=_("Where the rate comes from, e.g. ECB reference."),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    # Who entered it, as words: an admin user's name or an API key's, since a
    # key is no user.
    created_by = models.CharField(
        max_length=200, blank=True, default="", verbose_name=_("created by")
    )

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["base", "quote", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["base", "quote", "effective_from"], name="exchange_rate_pair_moment"
            ),
            models.CheckConstraint(
                condition=models.Q(rate__gt=0, rate__lte=MAX_RATE), name="exchange_rate_range"
            ),
            models.CheckConstraint(
                condition=~models.Q(base=models.F("quote")), name="exchange_rate_two_currencies"
            ),
        ]

    def __str__(self) -> str:
        moment = self.effective_from.isoformat() if self.effective_from else ""
        return f"1 {self.base} = {format_decimal(self.rate)} {self.quote} from {moment}"

"""The customer list's own columns (customers.admin.CustomerAdmin): on a 1280 px
screen every column shows (templates/admin/customers/customer/change_list.html),
so a long address or zone wraps where it reads well, and a spend limit says
what it does in a word."""

import re

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from billing.core.admin_forms import money_text
from customers.models import Customer

# A spend limit's mode in the customer list, short: the form says it whole.
SPEND_LIMIT_MODE_WORDS = {
    Customer.SPEND_LIMIT_HARD: _("refused past it"),
    Customer.SPEND_LIMIT_SOFT: _("alert only"),
}


def breakable_after(text: str, marks: str) -> str:
    """`text` as HTML, a line break allowed after each of `marks` in it."""
    parts = re.split(f"(?<=[{re.escape(marks)}])", text)
    return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in parts))


class CustomerListColumns:
    """CustomerAdmin's list columns of a customer's own fields."""

    @admin.display(description=_("email"), ordering="email")
    def email_display(self, customer: Customer) -> str:
        """The address with a line break allowed after its "@" and each ".", so
        that a narrow column wraps it there rather than in the middle of a word."""
        return breakable_after(customer.email, "@.") if customer.email else "—"

    @admin.display(description=_("timezone"), ordering="timezone")
    def timezone_display(self, customer: Customer) -> str:
        """The zone's name with a line break allowed after each "/"
        (America/<wbr>New_York)."""
        return breakable_after(customer.timezone, "/")

    @admin.display(description=_("spend limit"), ordering="spend_limit")
    def spend_limit_display(self, customer: Customer) -> str:
        """The limit and, when there is one, whether it refuses or alerts: one
        column, so that the list keeps its standing and dunning on a 1280 px screen."""
        if customer.spend_limit is None:
            return "—"
        mode = SPEND_LIMIT_MODE_WORDS.get(customer.spend_limit_mode, customer.spend_limit_mode)
        return f"{money_text(customer.spend_limit, customer.currency)} ({mode})"

"""The words of the customer list's own columns (customers.admin.customers): on
a 1280 px screen every column shows
(templates/admin/customers/customer/change_list.html), so a long address or
zone wraps where it reads well, and a spend limit says what it does in a word."""

import re

from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

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

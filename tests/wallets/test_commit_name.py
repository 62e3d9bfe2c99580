"""A commit is named with its amount as every page writes it (issue 76: "Prepaid
12000 USD" beside "12,000.00 USD"): through the customer-facing writer, in the
active language."""

from decimal import Decimal as D

import pytest
from django.utils import translation

from wallets.commit_models import Commit

NBSP = "\N{NO-BREAK SPACE}"
NNBSP = "\N{NARROW NO-BREAK SPACE}"


@pytest.mark.parametrize(
    ("language", "name"),
    [
        ("en", f"Prepaid 12,000.00{NBSP}USD"),
        ("de", f"Vorausbezahlt 12.000,00{NBSP}USD"),
    ],
)
def test_a_commit_is_named_with_its_amount_as_pages_write_it(language, name):
    commit = Commit(billing=Commit.PREPAID, amount=D("12000"), currency="USD")

    with translation.override(language):
        assert str(commit) == name


def test_a_yen_commit_has_no_minor_digits():
    commit = Commit(billing=Commit.POSTPAID, amount=D("1500000"), currency="JPY")

    with translation.override("en"):
        assert str(commit) == f"Postpaid 1,500,000{NBSP}JPY"

"""A rate card in the version comparison and the price history (issue 50): its
rows matched by their `when`, so a row repriced, added or removed reads as such,
and a card added to a charge reads as its rows."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from plans.admin.version_compare import ADDED, REMOVED, CompareRow, compare_sections
from plans.price_history import price_history
from plans.price_wording import rate_text
from plans.pricing import GRADUATED, PACKAGE, PricingSpec, TierSpec
from plans.rate_card_pricing import RateSpec
from plans.selectors import version_spec
from plans.services import plan_create, plan_version_copy_as_draft, plan_version_update
from plans.validation import ChargeSpec, VersionSpec
from tests.rate_cards import CARD, GPT_INPUT, card_charge, llm_tokens, per_unit, rate

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, 8, tzinfo=UTC)
PER_M = "per 1M"
NOV_2 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
NOV_3 = datetime(2026, 11, 3, 10, tzinfo=UTC)

MINI = (("model", "gpt-4o-mini"),)
# The draft's card: gpt-4o input repriced, gpt-4o-mini added, claude-sonnet removed.
DRAFT_CARD = (rate(GPT_INPUT, "2.00"), CARD[1], rate(MINI, "1.00"), CARD[3])


@pytest.fixture
def published(db):
    llm_tokens()
    with time_machine.travel(NOV_1, tick=False):
        return plan_create(
            code="tokens",
            name="Tokens",
            version=VersionSpec(currency="USD", charges=(card_charge(),)),
            publish=True,
        )


def draft_of(published):
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=published)
    with time_machine.travel(NOV_3, tick=False):
        return plan_version_update(
            version=draft,
            spec=replace(version_spec(version=draft), charges=(card_charge(DRAFT_CARD),)),
        )


def test_the_comparison_has_a_row_per_rate_saying_what_changed(published):
    draft = draft_of(published)

    (_, tokens, _) = compare_sections(version_spec(version=published), version_spec(version=draft))

    assert tokens.title == "Charge: LLM tokens"
    rates = [row for row in tokens.rows if "rate" in row.label.lower()]
    assert rates == [
        CompareRow(
            "Rate gpt-4o · input",
            f"2.50 USD {PER_M}",
            f"2.00 USD {PER_M}",
            f"2.50 USD {PER_M} → 2.00 USD {PER_M}",
        ),
        CompareRow("Rate gpt-4o · output", f"10.00 USD {PER_M}", f"10.00 USD {PER_M}", ""),
        CompareRow("Rate gpt-4o-mini", "—", f"1.00 USD {PER_M}", ADDED),
        CompareRow("Default rate", f"4.00 USD {PER_M}", f"4.00 USD {PER_M}", ""),
        CompareRow("Rate claude-sonnet", f"3.00 USD {PER_M}", "—", REMOVED),
    ]
    assert {row.label: row for row in tokens.rows}["Priced by"] == CompareRow(
        "Priced by", "model, token_type", "model, token_type", ""
    )
    assert tokens.changed == 3


def test_the_price_history_reads_each_row_repriced_added_or_removed(published):
    draft = draft_of(published)

    changes = price_history(version=draft)

    assert changes[0].at == NOV_3
    assert changes[0].lines == (
        f"LLM tokens: rate gpt-4o · input: 2.50 USD {PER_M} → 2.00 USD {PER_M}",
        f"LLM tokens: rate gpt-4o-mini added (1.00 USD {PER_M})",
        f"LLM tokens: rate claude-sonnet removed (3.00 USD {PER_M})",
    )
    # The copy changed nothing; the card was created with the version.
    assert changes[1].lines[0] == "Created as a draft, copied from v1"
    assert f"LLM tokens: default rate added (4.00 USD {PER_M})" in changes[1].lines


def test_a_charge_made_a_card_reads_as_its_rows(published, admin_client):
    # given: a draft whose plain charge becomes a card
    with time_machine.travel(NOV_2, tick=False):
        draft = plan_version_copy_as_draft(version=published)
        plan_version_update(
            version=draft,
            spec=replace(
                version_spec(version=draft),
                charges=(ChargeSpec("llm_tokens", "overage", D(0), pricing=per_unit("0.000004")),),
            ),
        )
    with time_machine.travel(NOV_3, tick=False):
        plan_version_update(
            version=draft,
            spec=replace(
                version_spec(version=draft),
                charges=(card_charge((rate(MINI, "1.00"), CARD[3])),),
            ),
        )

    # then: the history page says so
    html = admin_client.get(f"/admin/plans/planversion/{draft.pk}/history/").content.decode()
    for line in (
        "LLM tokens: pricing scheme “Per unit” → —",
        "LLM tokens: unit price 0.000004 USD → —",
        "LLM tokens: priced by — → model, token_type",
        f"LLM tokens: rate gpt-4o-mini added (1.00 USD {PER_M})",
        f"LLM tokens: default rate added (4.00 USD {PER_M})",
        # the save before: the card made a plain charge
        f"LLM tokens: rate claude-sonnet removed (3.00 USD {PER_M})",
    ):
        assert line in html, line


def test_a_rows_price_in_words_for_each_scheme():
    graduated = PricingSpec(
        GRADUATED,
        tiers=(TierSpec(D(100000), D("3.00"), per=D(1000000)), TierSpec(None, D("0.002"))),
    )
    assert rate_text(RateSpec(pricing=graduated), "USD") == (
        "Graduated: up to: 100,000, unit price 3.00 USD per 1M; "
        "up to: no limit, unit price 0.002 USD"
    )
    package = PricingSpec(PACKAGE, package_size=D(1000), package_price=D("0.50"))
    assert rate_text(RateSpec(pricing=package), "USD") == "0.50 USD per 1,000"
    assert rate_text(RateSpec(credits_per_unit=D(5), per=D(1000)), "USD") == ("5 credits per 1,000")

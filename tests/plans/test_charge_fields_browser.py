"""A charge form shows only the fields its consumption model and pricing scheme
make meaningful (issue 55), in a real browser (Debian's Chromium through
Playwright): each model and scheme in turn, a charge added with "Add another
Charge", a field filled then hidden is not saved, and a published version's
charges list only their own terms. Screenshots are saved in the test's output
directory."""

import os
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import User

from plans import services
from plans.models import Charge, Plan, PlanVersion
from plans.pricing import PricingSpec, TierSpec
from plans.validation import ChargeSpec, VersionSpec
from tests.factories import MeterFactory

SWITCHED = (
    "included_units",
    "credits_per_unit",
    "when_exhausted",
    "pricing_scheme",
    "unit_price",
    "per",
    "package_size",
    "package_price",
    "tiers",
    "rate_card",
)
PRICE = {"pricing_scheme"}
OVERAGE = {"included_units", "rate_card"} | PRICE
WALLET = {"when_exhausted", "rate_card"}
BY_SCHEME = {
    "": set(),
    "per_unit": {"unit_price", "per"},
    "package": {"package_size", "package_price"},
    "graduated": {"tiers"},
    "volume": {"tiers"},
}


def shown(page, charge: int) -> set[str]:
    """The switched fields of charge form `charge` the browser shows."""
    found = set()
    for name in SWITCHED:
        if name == "tiers":
            selector = f"#charges-{charge}-tiers-group"
        else:
            selector = f"#id_charges-{charge}-{name}"
        if page.locator(selector).is_visible():
            found.add(name)
    return found


def log_in(page, base: str, path: str) -> None:
    User.objects.create_superuser("admin", password="admin-password-1")
    page.goto(f"{base}/admin/login/?next={path}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-password-1")
    page.click("input[type=submit]")


@pytest.mark.django_db(transaction=True)
def test_each_model_and_scheme_shows_its_own_fields(live_server, browser_page, output_dir):
    # given: two meters and a draft version with no charge yet
    MeterFactory(code="calls", name="API calls", event_name="api.call")
    MeterFactory(code="runs", name="Agent runs", event_name="agent.run")
    plan = Plan.objects.create(code="pro", name="Pro")
    draft = services.plan_version_create(plan=plan, version=VersionSpec(currency="USD"))
    page = browser_page
    log_in(page, live_server.url, f"/admin/plans/planversion/{draft.pk}/change/")
    page.wait_for_selector("#id_base_fee")

    # when: a charge is added; no model picked yet
    page.locator("a.djn-add-handler.djn-model-plans-charge").first.click()

    # then: only the meter and the model are asked for
    assert shown(page, 0) == set()
    assert page.locator("#id_charges-0-meter").count() == 1
    assert page.locator("#id_charges-0-model").is_visible()

    # when/then: each model, and for the priced ones each scheme
    page.select_option("#id_charges-0-model", "hard_cap")
    assert shown(page, 0) == {"included_units"}
    page.screenshot(path=os.path.join(output_dir, "1-hard-cap.png"), full_page=True)
    for scheme, fields in BY_SCHEME.items():
        page.select_option("#id_charges-0-model", "overage")
        page.select_option("#id_charges-0-pricing_scheme", scheme)
        assert shown(page, 0) == OVERAGE | fields, scheme
        page.select_option("#id_charges-0-model", "balance")
        assert shown(page, 0) == WALLET | PRICE | fields, scheme
    page.select_option("#id_charges-0-model", "overage")
    page.select_option("#id_charges-0-pricing_scheme", "per_unit")
    page.screenshot(path=os.path.join(output_dir, "2-overage-per-unit.png"), full_page=True)
    page.select_option("#id_charges-0-pricing_scheme", "graduated")
    assert page.locator("#charges-0 a.djn-add-handler.djn-model-plans-pricetier").is_visible()
    page.screenshot(path=os.path.join(output_dir, "3-overage-graduated.png"), full_page=True)

    # credits: no price unless usage the credits cannot pay for is billed
    page.select_option("#id_charges-0-model", "credits")
    assert shown(page, 0) == {"credits_per_unit"} | WALLET
    page.screenshot(path=os.path.join(output_dir, "4-credits-block.png"), full_page=True)
    page.select_option("#id_charges-0-when_exhausted", "bill")
    page.select_option("#id_charges-0-pricing_scheme", "package")
    assert shown(page, 0) == {"credits_per_unit"} | WALLET | PRICE | BY_SCHEME["package"]
    page.screenshot(path=os.path.join(output_dir, "5-credits-bill-package.png"), full_page=True)

    # a rate card carries the prices: the charge's own price goes
    page.select_option("#id_charges-0-model", "overage")
    page.fill("#id_charges-0-price_by_text", "model")
    assert shown(page, 0) == {"included_units", "rate_card"}
    page.fill("#id_charges-0-price_by_text", "")
    assert shown(page, 0) == OVERAGE | BY_SCHEME["package"]

    # when: balance, a unit price typed, then package picked instead
    page.click("#charges-0 .select2-selection")
    page.fill(".select2-search__field", "calls")
    page.locator(".select2-results__option", has_text="API calls").click()
    page.select_option("#id_charges-0-model", "balance")
    page.select_option("#id_charges-0-when_exhausted", "block")
    page.select_option("#id_charges-0-pricing_scheme", "per_unit")
    page.fill("#id_charges-0-unit_price", "0.02")
    page.select_option("#id_charges-0-pricing_scheme", "package")
    page.fill("#id_charges-0-package_size", "1000")
    page.fill("#id_charges-0-package_price", "5.00")

    # and: a second charge, added with "Add another Charge", a hard cap
    page.locator("a.djn-add-handler.djn-model-plans-charge").last.click()
    assert shown(page, 1) == set()
    page.click("#charges-1 .select2-selection")
    page.fill(".select2-search__field", "runs")
    page.locator(".select2-results__option", has_text="Agent runs").click()
    page.select_option("#id_charges-1-model", "hard_cap")
    assert shown(page, 1) == {"included_units"}
    assert shown(page, 0) == WALLET | PRICE | BY_SCHEME["package"]
    page.fill("#id_charges-1-included_units", "500")
    page.screenshot(path=os.path.join(output_dir, "6-two-charges.png"), full_page=True)
    page.click("input[name=_continue]")

    # then: saved as shown; the unit price typed before package was picked is not kept
    page.wait_for_selector(".messagelist .success")
    assert page.locator(".errorlist").count() == 0
    calls = Charge.objects.get(version=draft, meter__code="calls")
    runs = Charge.objects.get(version=draft, meter__code="runs")
    assert (calls.model, calls.pricing_scheme, calls.unit_price) == ("balance", "package", None)
    assert (calls.package_size, calls.package_price) == (D(1000), D("5.00"))
    assert (runs.model, runs.included_units, runs.pricing_scheme) == ("hard_cap", D(500), "")
    assert shown(page, 0) == WALLET | PRICE | BY_SCHEME["package"]
    assert shown(page, 1) == {"included_units"}
    page.screenshot(path=os.path.join(output_dir, "7-saved.png"), full_page=True)


def terms(page, charge: int) -> dict[str, str]:
    items = page.locator(f"#charges-{charge} .charge-term")
    return {
        items.nth(i).locator(".charge-term-label").inner_text(): items.nth(i)
        .locator(".charge-term-value")
        .inner_text()
        for i in range(items.count())
    }


@pytest.mark.django_db(transaction=True)
def test_a_published_version_lists_only_each_charges_own_terms(
    live_server, browser_page, output_dir
):
    # given: a published version with a charge of each model
    for code in ("prompts", "storage", "runs", "tokens"):
        MeterFactory(code=code, name=code.title(), event_name=f"{code}.used")
    spec = VersionSpec(
        currency="USD",
        charges=(
            ChargeSpec(
                "prompts",
                "overage",
                D(1000),
                pricing=PricingSpec("per_unit", unit_price=D("2.50"), per=D(1000)),
            ),
            ChargeSpec("storage", "hard_cap", D(50)),
            ChargeSpec("runs", "credits", credits_per_unit=D(2)),
            ChargeSpec(
                "tokens",
                "balance",
                pricing=PricingSpec(
                    "graduated",
                    tiers=(
                        TierSpec(up_to=D(100), unit_price=D("0.01")),
                        TierSpec(up_to=None, unit_price=D("0.008")),
                    ),
                ),
            ),
        ),
    )
    plan = Plan.objects.create(code="pro", name="Pro")
    version = services.plan_version_create(plan=plan, version=spec)
    services.plan_version_publish(version=version)
    assert PlanVersion.objects.get(pk=version.pk).status == PlanVersion.PUBLISHED
    page = browser_page
    log_in(page, live_server.url, f"/admin/plans/planversion/{version.pk}/change/")
    page.wait_for_selector("#charges-0 .charge-terms")

    # then: each charge lists its own terms, and tiers only where it has them
    assert terms(page, 0) == {
        "Included units": "1,000",
        "Pricing scheme": "Per unit",
        "Unit price": "2.50 USD per 1,000",
    }
    assert terms(page, 1) == {"Included units": "50"}
    assert terms(page, 2) == {
        "Credits per unit": "2",
        "When exhausted": "Block: the check refuses usage the wallet cannot pay for",
    }
    assert terms(page, 3) == {
        "When exhausted": "Block: the check refuses usage the wallet cannot pay for",
        "Pricing scheme": "Graduated",
    }
    assert [page.locator(f"#charges-{i}-tiers-group").is_visible() for i in range(4)] == [
        False,
        False,
        False,
        True,
    ]
    assert page.locator("#charges-3-tiers-group tbody tr").count() == 2
    assert "Package" not in page.inner_text("#charges-group")
    page.screenshot(path=os.path.join(output_dir, "published.png"), full_page=True)

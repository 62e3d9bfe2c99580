"""The catalog admin: pages load, forms validate with the catalog rules, saves go
through the services, and a published version is read-only."""

import html
from decimal import Decimal

import pytest
from django.core.management import call_command

from plans.models import Charge, Meter, Plan, PlanVersion, PriceTier

pytestmark = pytest.mark.django_db


def made_demo() -> None:
    call_command("load_demo", "--catalog-only", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture(scope="module")
def _demo_once(module_transaction):
    return module_transaction.once(made_demo, "demo")


@pytest.fixture
def demo(_demo_once, db):
    """load_demo's catalog, made once for the module (tests/shared_rows.py)."""
    return _demo_once.for_test()


def version_post(
    plan: Plan, charges: list[dict], *, features: tuple[dict, ...] = (), **terms
) -> dict:
    """The add/change form of a plan version, as the browser posts it; `features`:
    the features inline's new rows ({"feature": pk, "value": text})."""
    data = {
        "plan": plan.pk,
        "currency": "USD",
        "interval": "month",
        "base_fee": "29.00",
        "seat_price": "",
        "minimum_commitment": "",
        "trial_days": "0",
        "credits_per_period": "",
        "charges-TOTAL_FORMS": str(len(charges)),
        "charges-INITIAL_FORMS": "0",
        "charges-MIN_NUM_FORMS": "0",
        "charges-MAX_NUM_FORMS": "1000",
        "features-TOTAL_FORMS": str(len(features)),
        "features-INITIAL_FORMS": "0",
        "features-MIN_NUM_FORMS": "0",
        "features-MAX_NUM_FORMS": "1000",
        **terms,
    }
    for i, grant in enumerate(features):
        data[f"features-{i}-feature"] = grant["feature"]
        data[f"features-{i}-value"] = grant["value"]
    for i, charge in enumerate(charges):
        tiers = charge.pop("tiers", [])
        for field in [
            "meter",
            "model",
            "included_units",
            "credits_per_unit",
            "pricing_scheme",
            "unit_price",
            "per",
            "package_size",
            "package_price",
        ]:
            data[f"charges-{i}-{field}"] = charge.get(field, "")
        # The select's initial choice, as the browser posts it.
        data[f"charges-{i}-when_exhausted"] = charge.get("when_exhausted", "block")
        data[f"charges-{i}-tiers-TOTAL_FORMS"] = str(len(tiers))
        data[f"charges-{i}-tiers-INITIAL_FORMS"] = "0"
        data[f"charges-{i}-tiers-MIN_NUM_FORMS"] = "0"
        data[f"charges-{i}-tiers-MAX_NUM_FORMS"] = "1000"
        for k, tier in enumerate(tiers):
            for field in ["up_to", "unit_price", "per", "flat_fee"]:
                data[f"charges-{i}-tiers-{k}-{field}"] = tier.get(field, "")
    return data


def catalog_counts() -> tuple[int, ...]:
    return (PlanVersion.objects.count(), Charge.objects.count(), PriceTier.objects.count())


@pytest.mark.parametrize(
    "model", ["meter", "plan", "planversion", "creditpack", "customer", "apikey"]
)
def test_changelist_and_add_pages_load(admin_client, demo, model):
    app = "customers" if model in {"customer", "apikey"} else "plans"
    assert admin_client.get(f"/admin/{app}/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{app}/{model}/add/").status_code == 200
    assert admin_client.get(f"/admin/{app}/{model}/?q=a").status_code == 200


def test_version_change_pages_load(admin_client, demo):
    for version in PlanVersion.objects.all():
        assert admin_client.get(f"/admin/plans/planversion/{version.pk}/change/").status_code == 200


def test_add_draft_version_with_graduated_tiers_inline(admin_client, demo):
    # given
    plan = Plan.objects.get(code="team_hybrid")
    data = version_post(
        plan,
        [
            {
                "meter": Meter.objects.get(code="llm_tokens").pk,
                "model": "overage",
                "included_units": "1000000",
                "pricing_scheme": "graduated",
                "tiers": [
                    {"up_to": "4000000", "unit_price": "0.000008", "flat_fee": "0"},
                    {"up_to": "", "unit_price": "0.000006", "flat_fee": "1.50"},
                ],
            }
        ],
        base_fee="49.00",
        seat_price="12.00",
    )

    # when
    response = admin_client.post("/admin/plans/planversion/add/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    version = PlanVersion.objects.get(plan=plan, number=2)
    assert version.status == PlanVersion.DRAFT
    assert version.base_fee == Decimal("49.00")
    assert version.seat_price == Decimal("12.00")
    charge = version.charges.get()
    assert (charge.meter.code, charge.model, charge.included_units) == (
        "llm_tokens",
        "overage",
        Decimal(1_000_000),
    )
    tiers = [(t.up_to, t.unit_price, t.flat_fee) for t in charge.tiers.all()]
    assert tiers == [
        (Decimal(4_000_000), Decimal("0.000008"), Decimal(0)),
        (None, Decimal("0.000006"), Decimal("1.50")),
    ]


@pytest.mark.parametrize(
    ("charges", "message"),
    [
        (
            [
                {
                    "model": "overage",
                    "pricing_scheme": "graduated",
                    "tiers": [
                        {"up_to": "100", "unit_price": "0.1"},
                        {"up_to": "200", "unit_price": "0.05"},
                    ],
                }
            ],
            "The last tier needs no upper limit: leave 'Up to' empty",
        ),
        (
            [
                {
                    "model": "overage",
                    "pricing_scheme": "volume",
                    "tiers": [
                        {"up_to": "100", "unit_price": "0.1"},
                        {"up_to": "50", "unit_price": "0.05"},
                        {"up_to": "", "unit_price": "0.01"},
                    ],
                }
            ],
            "Tiers must rise: each 'Up to' must be above the one before (100)",
        ),
        (
            [
                {
                    "model": "hard_cap",
                    "included_units": "500",
                    "pricing_scheme": "per_unit",
                    "unit_price": "0.1",
                }
            ],
            "A hard cap charge has no price: remove the pricing",
        ),
        (
            [{"model": "overage", "included_units": "5"}],
            "A soft cap charge needs a price: pick a pricing scheme",
        ),
        ([{"model": "credits"}], "A credits charge needs the credits each unit uses"),
        (
            [{"model": "overage", "pricing_scheme": "per_unit", "unit_price": "0.12345678901"}],
            "Ensure that there are no more than 10 decimal places.",
        ),
        (
            [{"model": "overage", "pricing_scheme": "per_unit", "unit_price": "-1"}],
            "Cannot be negative",
        ),
        (
            [{"model": "overage", "pricing_scheme": "per_unit", "unit_price": "1", "per": "0"}],
            "Must be more than zero",
        ),
        (
            [
                {
                    "model": "overage",
                    "pricing_scheme": "package",
                    "package_size": "1000",
                    "package_price": "1",
                    "per": "1000",
                }
            ],
            "'Per' applies to per unit prices and tiers: a package's size says how many units "
            "its price is for",
        ),
        (
            [
                {
                    "model": "overage",
                    "pricing_scheme": "volume",
                    "tiers": [{"up_to": "", "unit_price": "1", "per": "-5"}],
                }
            ],
            "Must be more than zero",
        ),
        (
            [
                {"model": "overage", "pricing_scheme": "per_unit", "unit_price": "0.1"},
                {"model": "hard_cap", "included_units": "10"},
            ],
            "This meter is charged already (charge 1): a version charges each meter once",
        ),
    ],
)
def test_invalid_charges_show_form_errors_and_save_nothing(admin_client, demo, charges, message):
    # given
    plan = Plan.objects.get(code="ai_assistant")
    meter = Meter.objects.get(code="prompts")
    for charge in charges:
        charge["meter"] = meter.pk
    before = catalog_counts()

    # when
    response = admin_client.post("/admin/plans/planversion/add/", version_post(plan, charges))

    # then
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert catalog_counts() == before


def test_prices_per_a_million_and_per_a_thousand_are_set_in_the_admin(admin_client, demo):
    # given: tokens at 2.50 per 1,000,000; prompts in volume tiers per 1,000
    plan = Plan.objects.get(code="team_hybrid")
    data = version_post(
        plan,
        [
            {
                "meter": Meter.objects.get(code="llm_tokens").pk,
                "model": "overage",
                "included_units": "0",
                "pricing_scheme": "per_unit",
                "unit_price": "2.50",
                "per": "1000000",
            },
            {
                "meter": Meter.objects.get(code="prompts").pk,
                "model": "overage",
                "included_units": "0",
                "pricing_scheme": "volume",
                "tiers": [
                    {"up_to": "10000", "unit_price": "0.50", "per": "1000"},
                    {"up_to": "", "unit_price": "0.40", "per": "1000", "flat_fee": "1"},
                ],
            },
        ],
    )

    # when
    response = admin_client.post("/admin/plans/planversion/add/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    version = PlanVersion.objects.get(plan=plan, number=2)
    tokens, prompts = version.charges.order_by("id")
    assert (tokens.unit_price, tokens.per) == (Decimal("2.50"), Decimal(1_000_000))
    assert prompts.per == Decimal(1)
    assert [(t.unit_price, t.per) for t in prompts.tiers.all()] == [
        (Decimal("0.50"), Decimal(1000)),
        (Decimal("0.40"), Decimal(1000)),
    ]
    page = admin_client.get(f"/admin/plans/planversion/{version.pk}/change/").content.decode()
    assert "How many units the price is for: 1,000,000 for a price per million tokens." in page


def test_version_terms_are_validated_with_the_catalog_rules(admin_client, demo):
    plan = Plan.objects.get(code="ai_assistant")
    before = catalog_counts()

    response = admin_client.post(
        "/admin/plans/planversion/add/",
        version_post(plan, [], base_fee="19.999", currency="USD"),
    )
    assert "USD amounts have at most 2 decimal places" in response.content.decode()

    response = admin_client.post(
        "/admin/plans/planversion/add/", version_post(plan, [], currency="EUR")
    )
    assert "bills in USD: all its versions share one currency." in response.content.decode()

    response = admin_client.post(
        "/admin/plans/planversion/add/", version_post(plan, [], currency="ZZZ")
    )
    # The currency is picked from a list: a code not on it is not offered.
    assert "Select a valid choice. ZZZ is not one of the available choices." in (
        response.content.decode()
    )
    assert catalog_counts() == before


def test_published_version_is_read_only_in_the_admin(admin_client, demo):
    # given
    version = PlanVersion.objects.get(plan__code="ai_assistant", number=1)
    charge = version.charges.get()
    url = f"/admin/plans/planversion/{version.pk}/change/"

    # when: the page is a view page, and a forged POST is refused
    page = admin_client.get(url).content.decode()
    response = admin_client.post(
        url,
        version_post(
            version.plan,
            [
                {
                    "meter": charge.meter_id,
                    "model": "overage",
                    "pricing_scheme": "per_unit",
                    "unit_price": "0.01",
                }
            ],
            base_fee="1.00",
        ),
    )

    # then
    assert 'name="_save"' not in page
    assert response.status_code == 403
    version.refresh_from_db()
    charge.refresh_from_db()
    assert version.base_fee == Decimal("19.99")
    assert charge.unit_price == Decimal("0.05")
    # a forged delete is refused in words, inside the admin (tests/plans/test_delete_refusals.py)
    assert (
        admin_client.post(
            f"/admin/plans/planversion/{version.pk}/delete/", {"post": "yes"}
        ).status_code
        == 409
    )
    assert PlanVersion.objects.filter(pk=version.pk).exists()


def test_edit_a_draft_replaces_its_charges(admin_client, demo):
    # given: a draft copied from the published version
    published = PlanVersion.objects.get(plan__code="ai_assistant", number=1)
    admin_client.post(
        "/admin/plans/planversion/",
        {"action": "copy_as_draft", "_selected_action": [published.pk]},
    )
    draft = PlanVersion.objects.get(plan__code="ai_assistant", number=2)
    charge = draft.charges.get()
    data = version_post(
        draft.plan,
        [
            {
                "meter": charge.meter_id,
                "model": "overage",
                "included_units": "300",
                "pricing_scheme": "package",
                "package_size": "100",
                "package_price": "4.00",
            }
        ],
        base_fee="24.99",
    )
    data["charges-INITIAL_FORMS"] = "1"
    data["charges-0-id"] = charge.pk
    data["charges-0-version"] = draft.pk

    # when
    response = admin_client.post(f"/admin/plans/planversion/{draft.pk}/change/", data)

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    draft.refresh_from_db()
    assert draft.base_fee == Decimal("24.99")
    new_charge = draft.charges.get()
    assert (
        new_charge.included_units,
        new_charge.pricing_scheme,
        new_charge.package_size,
        new_charge.package_price,
    ) == (Decimal(300), "package", Decimal(100), Decimal("4.00"))
    assert published.charges.get().unit_price == Decimal("0.05")


def test_publish_action_validates_the_stored_draft(admin_client, demo):
    # given: a draft stored without pricing on an overage charge (as an old import might)
    plan = Plan.objects.get(code="ai_assistant")
    draft = PlanVersion.objects.create(plan=plan, number=2, currency="USD", base_fee=1)
    Charge.objects.create(version=draft, meter=Meter.objects.get(code="prompts"), model="overage")

    # when
    response = admin_client.post(
        "/admin/plans/planversion/",
        {"action": "publish", "_selected_action": [draft.pk], "confirmed": "yes"},
        follow=True,
    )

    # then
    assert (
        "AI Assistant v2 was not published. "
        "Charge 1: A soft cap charge needs a price: pick a pricing scheme."
    ) in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == PlanVersion.DRAFT


def test_publish_and_archive_actions(admin_client, demo):
    plan = Plan.objects.get(code="starter")
    admin_client.post(
        "/admin/plans/planversion/",
        {"action": "copy_as_draft", "_selected_action": [plan.versions.get().pk]},
    )
    draft = plan.versions.get(number=2)
    admin_client.post(
        "/admin/plans/planversion/",
        {"action": "publish", "_selected_action": [draft.pk], "confirmed": "yes"},
    )
    draft.refresh_from_db()
    assert draft.status == PlanVersion.PUBLISHED
    assert draft.base_fee == Decimal("20.00")
    admin_client.post(
        "/admin/plans/planversion/",
        {"action": "archive", "_selected_action": [draft.pk], "confirmed": "yes"},
    )
    draft.refresh_from_db()
    assert draft.status == PlanVersion.ARCHIVED


def test_meter_definition_is_frozen_once_published_but_its_name_is_not(admin_client, demo):
    meter = Meter.objects.get(code="prompts")
    url = f"/admin/plans/meter/{meter.pk}/change/"
    form = {
        "code": "prompts",
        "name": "Prompts",
        "event_name": "prompt.v2",
        "aggregation": "count",
        "value_property": "",
        "unique_property": "",
        "filters": "",
    }

    response = admin_client.post(url, form)
    frozen = "A published version charges this meter, so what it counts is fixed"
    assert frozen in response.content.decode()
    meter.refresh_from_db()
    assert meter.event_name == "prompt"

    response = admin_client.post(url, {**form, "event_name": "prompt", "name": "User prompts"})
    assert response.status_code == 302
    meter.refresh_from_db()
    assert meter.name == "User prompts"

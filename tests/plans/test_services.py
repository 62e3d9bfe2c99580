"""plans.services: a published version never changes through the service path either,
publishing re-validates what is stored, copies and numbering, frozen meters."""

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from common.errors import Conflict, InvalidRequest
from plans import selectors
from plans.models import Charge, Meter, PlanVersion, PriceTier
from plans.pricing import PricingSpec, TierSpec
from plans.services import (
    meter_update,
    plan_create,
    plan_version_archive,
    plan_version_copy_as_draft,
    plan_version_create,
    plan_version_publish,
    plan_version_update,
)
from plans.validation import ChargeSpec, VersionSpec

D = Decimal

GRADUATED = PricingSpec(
    scheme="graduated",
    tiers=(TierSpec(D(1000), D("0.01"), D(5)), TierSpec(None, D("0.008"))),
)

SPEC = VersionSpec(
    currency="USD",
    base_fee=D("19.99"),
    seat_price=D("10.00"),
    minimum_commitment=D("50.00"),
    trial_days=14,
    credits_per_period=D(1000),
    charges=(
        ChargeSpec("prompts", "overage", D(200), pricing=GRADUATED),
        ChargeSpec("sms", "hard_cap", D(500)),
        ChargeSpec("agent_runs", "credits", credits_per_unit=D(2)),
        ChargeSpec(
            "gpt4o_input_tokens",
            "balance",
            pricing=PricingSpec(scheme="per_unit", unit_price=D("0.0000025")),
        ),
    ),
)

OTHER_SPEC = VersionSpec(
    currency="USD",
    base_fee=D("5.00"),
    charges=(ChargeSpec("sms", "hard_cap", D(10)),),
)


def state(version: PlanVersion) -> dict:
    """Stored terms, charges and tiers of a version."""
    charges = Charge.objects.filter(version=version).order_by("id")
    return {
        "version": model_to_dict(PlanVersion.objects.get(pk=version.pk)),
        "charges": [model_to_dict(c) for c in charges],
        "tiers": [
            model_to_dict(t) for t in PriceTier.objects.filter(charge__in=charges).order_by("id")
        ],
    }


def terms(version: PlanVersion) -> dict:
    """What a version charges, without ids or timestamps."""
    spec = selectors.version_spec(version=PlanVersion.objects.get(pk=version.pk))
    return {
        "terms": (
            spec.currency,
            spec.interval,
            spec.base_fee,
            spec.seat_price,
            spec.minimum_commitment,
            spec.trial_days,
            spec.credits_per_period,
        ),
        "charges": spec.charges,
    }


@pytest.fixture
def published(catalog_meters) -> PlanVersion:
    return plan_create(code="ai_assistant", name="AI Assistant", version=SPEC, publish=True)


@pytest.fixture
def draft(catalog_meters) -> PlanVersion:
    return plan_create(code="ai_assistant", name="AI Assistant", version=SPEC)


def test_plan_create_stores_every_term_charge_and_tier(published):
    assert published.number == 1
    assert published.status == PlanVersion.PUBLISHED
    assert published.published_at is not None
    assert terms(published) == {
        "terms": ("USD", "month", D("19.99"), D("10.00"), D("50.00"), 14, D(1000)),
        "charges": SPEC.charges,
    }


def test_published_version_cannot_be_updated_through_the_service(published, row_counts):
    # given
    before, stored = row_counts(), state(published)

    # when
    with pytest.raises(Conflict) as refused:
        plan_version_update(version=published, spec=OTHER_SPEC)

    # then
    assert refused.value.status_code == 409
    assert "is published: only a draft can be changed" in refused.value.message
    assert row_counts() == before
    assert state(published) == stored


def test_archived_version_cannot_be_updated_or_published(published, row_counts):
    plan_version_archive(version=published)
    before, stored = row_counts(), state(published)

    with pytest.raises(Conflict):
        plan_version_update(version=published, spec=OTHER_SPEC)
    with pytest.raises(Conflict):
        plan_version_publish(version=published)
    with pytest.raises(Conflict):
        plan_version_archive(version=published)

    assert row_counts() == before
    assert state(published) == stored


def test_a_stale_draft_object_cannot_update_a_version_published_since(draft, row_counts):
    # given someone else published the draft after we loaded it
    stale = PlanVersion.objects.get(pk=draft.pk)
    plan_version_publish(version=draft)
    before, stored = row_counts(), state(draft)

    # when
    with pytest.raises(Conflict):
        plan_version_update(version=stale, spec=OTHER_SPEC)

    # then
    assert row_counts() == before
    assert state(draft) == stored


def test_update_replaces_a_drafts_terms_and_charges(draft):
    version = plan_version_update(version=draft, spec=OTHER_SPEC)

    assert version.status == PlanVersion.DRAFT
    assert terms(version) == {
        "terms": ("USD", "month", D("5.00"), None, None, 0, None),
        "charges": OTHER_SPEC.charges,
    }
    assert PriceTier.objects.count() == 0


def test_invalid_update_of_a_draft_changes_nothing(draft, row_counts):
    before, stored = row_counts(), state(draft)
    bad = VersionSpec(currency="USD", charges=(ChargeSpec("sms", "hard_cap"),))

    with pytest.raises(InvalidRequest) as refused:
        plan_version_update(version=draft, spec=bad)

    assert refused.value.fields == {
        "charges.0.included_units": [
            "A hard cap charge needs its included units: the usage allowed each period"
        ]
    }
    assert row_counts() == before
    assert state(draft) == stored


def test_publish_revalidates_the_stored_draft(draft, row_counts):
    # given stored data that breaks a rule (written around the service, as a bad
    # migration or a hand edit could)
    PriceTier.objects.filter(charge__version=draft, up_to=None).update(up_to=D(5000))
    before, stored = row_counts(), state(draft)

    # when
    with pytest.raises(InvalidRequest) as refused:
        plan_version_publish(version=draft)

    # then
    assert refused.value.fields == {
        "charges.0.pricing.tiers.1.up_to": [
            "The last tier needs no upper limit: leave 'Up to' empty"
        ]
    }
    assert row_counts() == before
    assert state(draft) == stored
    assert PlanVersion.objects.get(pk=draft.pk).status == PlanVersion.DRAFT


def test_publish_revalidates_a_hard_cap_that_lost_its_included_units(draft):
    Charge.objects.filter(version=draft, model="hard_cap").update(included_units=None)

    with pytest.raises(InvalidRequest) as refused:
        plan_version_publish(version=draft)

    assert list(refused.value.fields) == ["charges.1.included_units"]
    assert PlanVersion.objects.get(pk=draft.pk).status == PlanVersion.DRAFT


def test_publish_a_valid_draft(draft):
    version = plan_version_publish(version=draft)

    assert version.status == PlanVersion.PUBLISHED
    assert version.published_at is not None
    assert PlanVersion.objects.get(pk=draft.pk).status == PlanVersion.PUBLISHED


def test_copy_as_draft_copies_terms_charges_and_tiers_into_the_next_number(published):
    # when
    copy = plan_version_copy_as_draft(version=published)

    # then
    assert copy.pk != published.pk
    assert copy.plan_id == published.plan_id
    assert copy.number == 2
    assert copy.status == PlanVersion.DRAFT
    assert copy.published_at is None
    assert terms(copy) == terms(published)
    assert Charge.objects.filter(version=copy).count() == 4
    assert list(
        PriceTier.objects.filter(charge__version=copy).values_list(
            "position", "up_to", "unit_price", "flat_fee"
        )
    ) == [(0, D(1000), D("0.01"), D(5)), (1, None, D("0.008"), D(0))]
    # the copy is a separate row set: changing it leaves the original alone
    original = state(published)
    plan_version_update(version=copy, spec=OTHER_SPEC)
    assert state(published) == original


PER_MILLION_SPEC = VersionSpec(
    currency="USD",
    charges=(
        ChargeSpec(
            "gpt4o_input_tokens",
            "overage",
            D(0),
            pricing=PricingSpec(scheme="per_unit", unit_price=D("2.50"), per=D(1_000_000)),
        ),
        ChargeSpec(
            "prompts",
            "overage",
            D(0),
            pricing=PricingSpec(
                scheme="volume",
                tiers=(
                    TierSpec(D(10_000), D("0.50"), per=D(1000)),
                    TierSpec(None, D("0.40"), D(1), per=D(1000)),
                ),
            ),
        ),
    ),
)


def test_prices_per_a_larger_size_are_stored_read_back_and_copied(catalog_meters):
    # given
    version = plan_create(code="tokens", name="Tokens", version=PER_MILLION_SPEC, publish=True)

    # when
    copy = plan_version_copy_as_draft(version=version)

    # then
    assert terms(version)["charges"] == PER_MILLION_SPEC.charges
    assert terms(copy)["charges"] == PER_MILLION_SPEC.charges
    assert list(
        Charge.objects.filter(version=copy).order_by("id").values_list("unit_price", "per")
    ) == [(D("2.50"), D(1_000_000)), (None, D(1))]
    assert list(
        PriceTier.objects.filter(charge__version=copy).values_list("unit_price", "per")
    ) == [(D("0.50"), D(1000)), (D("0.40"), D(1000))]


def test_version_numbers_are_sequential(published):
    second = plan_version_create(plan=published.plan, version=OTHER_SPEC)
    plan_version_archive(version=second)
    third = plan_version_copy_as_draft(version=published)
    fourth = plan_version_create(plan=published.plan, version=OTHER_SPEC)

    assert [second.number, third.number, fourth.number] == [2, 3, 4]
    assert list(published.plan.versions.order_by("number").values_list("number", flat=True)) == [
        1,
        2,
        3,
        4,
    ]


def test_new_version_in_another_currency_is_refused(published, row_counts):
    before = row_counts()

    with pytest.raises(InvalidRequest) as refused:
        plan_version_create(
            plan=published.plan, version=VersionSpec(currency="EUR", base_fee=D("5.00"))
        )

    assert refused.value.fields == {
        "currency": [f"{published.plan.name} bills in USD: all its versions share one currency."]
    }
    assert row_counts() == before


def test_meter_definition_is_frozen_once_a_published_version_charges_it(published, row_counts):
    # given
    meter = Meter.objects.get(code="gpt4o_input_tokens")
    before, stored = row_counts(), model_to_dict(meter)

    # when
    with pytest.raises(Conflict) as refused:
        meter_update(meter=meter, value_property="output_tokens", filters={})

    # then
    assert set(refused.value.fields) == {"value_property", "filters"}
    assert row_counts() == before
    assert model_to_dict(Meter.objects.get(pk=meter.pk)) == stored


@pytest.mark.parametrize(
    "change",
    [
        {"event_name": "llm.other"},
        {"aggregation": "max"},
        {"filters": {"model": ["gpt-4o", "gpt-4o-mini"]}},
        {"code": "gpt4o_in"},
    ],
)
def test_every_definition_field_is_frozen(published, change):
    meter = Meter.objects.get(code="gpt4o_input_tokens")
    stored = model_to_dict(meter)

    with pytest.raises(Conflict) as refused:
        meter_update(meter=meter, **change)

    assert set(refused.value.fields) == set(change)
    assert model_to_dict(Meter.objects.get(pk=meter.pk)) == stored


def test_meter_of_an_archived_version_stays_frozen(published):
    plan_version_archive(version=published)
    meter = Meter.objects.get(code="sms")

    with pytest.raises(Conflict):
        meter_update(meter=meter, event_name="sms.delivered")

    assert Meter.objects.get(pk=meter.pk).event_name == "sms.sent"


def test_meter_name_can_change_when_published(published):
    meter = Meter.objects.get(code="gpt4o_input_tokens")

    updated = meter_update(meter=meter, name="GPT-4o prompt tokens")

    assert updated.name == "GPT-4o prompt tokens"
    fresh = Meter.objects.get(pk=meter.pk)
    assert fresh.name == "GPT-4o prompt tokens"
    assert fresh.value_property == "input_tokens"


def test_meter_charged_only_by_a_draft_can_change(draft):
    meter = Meter.objects.get(code="sms")

    meter_update(meter=meter, event_name="sms.delivered")

    assert Meter.objects.get(pk=meter.pk).event_name == "sms.delivered"


def test_meter_update_still_validates(catalog_meters, row_counts):
    meter = Meter.objects.get(code="prompts")
    before, stored = row_counts(), model_to_dict(meter)

    with pytest.raises(InvalidRequest) as refused:
        meter_update(meter=meter, aggregation="sum")

    assert list(refused.value.fields) == ["value_property"]
    assert row_counts() == before
    assert model_to_dict(Meter.objects.get(pk=meter.pk)) == stored

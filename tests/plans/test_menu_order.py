"""Menus of plans and versions list them by name whatever its case, as people read
them: "alpha" before "Beta" (a plain ORDER BY puts every capital first)."""

from datetime import UTC, datetime

import pytest
from django.contrib import admin

from billing.admin.plan_migrations import MigrationForm
from billing.admin.simulations import SimulationForm
from billing.admin.subscription_forms import SubscriptionCreateForm
from tests.factories import PlanFactory, PlanVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def plans():
    # codes in the other order, so that ordering by code would not pass either
    gamma = PlanFactory(code="a_gamma", name="Gamma")
    beta = PlanFactory(code="b_beta", name="Beta")
    alpha = PlanFactory(code="c_alpha", name="alpha")
    PlanVersionFactory(plan=alpha)
    return alpha, beta, gamma


def labels(queryset) -> list[str]:
    return [str(item) for item in queryset]


def test_the_subscription_version_menu_is_by_name_newest_first(plans):
    field = SubscriptionCreateForm().fields["version"]

    assert labels(field.queryset) == ["alpha v2", "alpha v1", "Beta v1", "Gamma v1"]


def test_the_migration_target_menu_is_by_name(plans):
    field = MigrationForm().fields["to_version"]

    assert labels(field.queryset) == ["alpha v1", "alpha v2", "Beta v1", "Gamma v1"]


def test_the_simulation_menus_are_by_name(plans):
    form = SimulationForm(admin_site=admin.site, now=datetime(2026, 12, 1, tzinfo=UTC))

    assert labels(form.fields["version"].queryset) == [
        "alpha v1",
        "alpha v2",
        "Beta v1",
        "Gamma v1",
    ]
    assert labels(form.fields["plan"].queryset) == ["alpha", "Beta", "Gamma"]

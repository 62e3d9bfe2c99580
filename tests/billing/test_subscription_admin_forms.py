"""Subscriptions in the admin in ops' words: named 'Acme Inc — Pro v2 (active)',
added from the customer's page with the customer picked, a published version
offered with its price, the start typed with the date and time pickers and
labelled with the zone, and the domain's refusals on the field they concern."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.admin.subscription_forms import version_choice_text
from billing.models import Subscription
from plans.models import PlanVersion
from plans.services import plan_version_copy_as_draft
from tests.factories import CustomerFactory, published_version, subscribe

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/billing/subscription/add/"
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def pro(db) -> PlanVersion:
    version = published_version("pro", base_fee=D("49.00"))
    version.plan.name = "Pro"
    version.plan.save(update_fields=["name"])
    return version


@pytest.fixture
def acme(db):
    return CustomerFactory(external_id="acme", name="Acme Inc")


def add_form(customer, version, **changes) -> dict:
    return {
        "customer": customer.pk,
        "version": version.pk,
        "start_0": "2026-11-01",
        "start_1": "00:00:00",
        "seats": "1",
        "billing_anchor": "anniversary",
        **changes,
    }


def test_a_subscription_is_named_in_words(acme, pro):
    subscription = subscribe(acme, pro.plan, NOV_1)

    assert str(subscription) == "Acme Inc — Pro v1 (active)"
    subscription.status = Subscription.TRIALING
    assert str(subscription) == "Acme Inc — Pro v1 (trialing)"
    # Without a name, the customer's external id.
    subscription.customer.name = ""
    assert str(subscription) == "acme — Pro v1 (trialing)"
    assert str(Subscription()) == "New subscription"


def test_a_version_reads_with_its_price():
    team = published_version("team", base_fee=D(0), seat_price=D("10.00"), trial_days=14)
    usage = published_version("usage", currency="EUR", interval="year")

    assert version_choice_text(team) == ("Team v1 — 10.00 USD a seat / month, 14-day trial")
    assert version_choice_text(usage) == "Usage v1 — usage only, in EUR"


def test_the_add_form_picks_the_customer_of_the_address(admin_client, acme, pro):
    CustomerFactory(external_id="other", name="Other Co")
    draft = plan_version_copy_as_draft(version=pro)

    response = admin_client.get(f"{ADD_URL}?customer={acme.pk}")

    form = response.context["adminform"].form
    assert form.initial == {"customer": acme.pk}
    html = response.content.decode()
    assert f'<option value="{acme.pk}" selected>Acme Inc (acme)</option>' in html
    # Published versions only, each with its price.
    versions = [label for _, label in form.fields["version"].choices]
    assert versions == [
        "Pick a published version",
        "Pro v1 — 49.00 USD / month",
    ]
    assert draft.pk not in [value for value, _ in form.fields["version"].choices if value]
    # The start: a date and a time picker, labelled with the zone.
    assert form.fields["start"].label == "Start (UTC)"
    assert 'name="start_0"' in html and 'class="vDateField"' in html
    assert 'name="start_1"' in html and 'class="vTimeField"' in html
    # Anything else in the address is ignored.
    assert admin_client.get(f"{ADD_URL}?customer=x").context["adminform"].form.initial == {}


def test_after_saving_ops_land_on_the_subscription_named_in_words(admin_client, acme, pro):
    response = admin_client.post(ADD_URL, add_form(acme, pro), follow=True)

    subscription = Subscription.objects.get()
    assert response.redirect_chain == [
        (f"/admin/billing/subscription/{subscription.pk}/change/", 302)
    ]
    assert [str(m) for m in response.context["messages"]] == ["Acme Inc — Pro v1 (active) created"]
    assert subscription.started_at == NOV_1
    html = response.content.decode()
    assert "Acme Inc — Pro v1 (active)" in html
    assert "1 Nov 2026, 00:00 (UTC)" in html
    # The period as the customer's invoices print it: inclusive days in their zone.
    assert "1 Nov \u2013 30 Nov 2026 (UTC)" in html


def test_a_draft_version_is_refused_on_its_field_in_words(admin_client, acme, pro):
    draft = plan_version_copy_as_draft(version=pro)

    response = admin_client.post(ADD_URL, add_form(acme, draft))

    assert response.context["adminform"].form.errors == {
        "version": ["Pro v2 is a draft: publish it before subscribing customers to it"]
    }
    assert not Subscription.objects.exists()


def test_a_version_in_another_currency_is_refused_on_its_field(admin_client, pro):
    euro = CustomerFactory(external_id="euro", name="Euro GmbH", currency="EUR")

    response = admin_client.post(ADD_URL, add_form(euro, pro))

    assert response.context["adminform"].form.errors == {
        "version": ["Pro v1 bills in USD and Euro GmbH pays in EUR: choose a version in EUR"]
    }


def test_a_customer_subscribed_already_is_refused_on_its_field(admin_client, acme, pro):
    subscribe(acme, pro.plan, NOV_1)

    response = admin_client.post(ADD_URL, add_form(acme, pro, start_0="2026-11-05"))

    assert response.context["adminform"].form.errors == {
        "customer": [
            "Acme Inc already has a live subscription (one at a time): change its plan instead"
        ]
    }
    assert Subscription.objects.count() == 1


def test_a_change_outside_the_period_is_refused_on_its_field(admin_client, acme, pro):
    subscription = subscribe(acme, pro.plan, NOV_1)
    bigger = published_version("bigger", base_fee=D("99.00"))

    response = admin_client.post(
        f"/admin/billing/subscription/{subscription.pk}/change/",
        {
            "new_version": bigger.pk,
            "effective": "immediate",
            "new_seats": "",
            "at_0": "2026-12-05",
            "at_1": "00:00:00",
            "changes-TOTAL_FORMS": "1",
            "changes-INITIAL_FORMS": "1",
            "changes-MIN_NUM_FORMS": "0",
            "changes-MAX_NUM_FORMS": "1000",
            "changes-0-id": str(subscription.changes.get().pk),
            "changes-0-subscription": str(subscription.pk),
        },
    )

    form = response.context["adminform"].form
    assert form.errors == {
        "at": [
            "Pick a moment in the current period, from 1 Nov 2026, 00:00 UTC "
            "to before 1 Dec 2026, 00:00 UTC"
        ]
    }
    assert form.fields["at"].label == "Immediate change at (UTC)"


def test_subscription_pages_read_their_labels_in_one_query(admin_client, pro):
    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get("/admin/billing/subscription/").status_code == 200
        return len(queries)

    subscribe(CustomerFactory(name="First Co"), pro.plan, NOV_1)
    one = changelist_queries()
    for name in ("Second Co", "Third Co", "Fourth Co"):
        subscribe(CustomerFactory(name=name), pro.plan, NOV_1)

    assert changelist_queries() == one


def test_a_refusal_path_no_form_field_holds_reads_in_words():
    from common.admin_forms import path_words

    assert path_words("charges.1.pricing.tiers.0.up_to") == "Charge 2, pricing, tier 1, up to"
    assert path_words("lines.0.amount") == "Line 1, amount"
    assert "." not in path_words("filters.model")


def test_a_refusal_with_only_empty_field_messages_still_shows_its_words():
    from django import forms

    from common.admin_forms import add_billing_error
    from common.errors import InvalidRequest

    class PackForm(forms.Form):
        pack = forms.CharField()

    form = PackForm(data={"pack": "runs"})
    assert form.is_valid()
    refused = InvalidRequest(
        "credit pack 'runs' is no longer sold",
        fields={"pack": []},
        words="Runs is no longer sold: choose an active pack.",
    )
    add_billing_error(form, refused)
    assert form.errors == {"__all__": ["Runs is no longer sold: choose an active pack."]}

"""Entitlements on a subscription's admin page: what it is entitled to now
(its version's features with its deal's in place), the deal's part marked; the
deal's text names what it does to the plan's features; and a deal changed in
the admin keeps the features the API gave it."""

import html
import re
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.models import Subscription
from billing.subscriptions.lifecycle import subscription_create
from plans.feature_grants import FeatureGrant
from plans.features import feature_create
from plans.models import PlanVersion
from plans.overrides import Overrides
from tests.billing.test_admin import history_inline
from tests.factories import CustomerFactory, published_version

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEAL = Overrides(
    features=(
        FeatureGrant("max_projects", 50),
        FeatureGrant("audit_log", True),
        FeatureGrant("models", None),
    )
)


@pytest.fixture
def pro(db) -> PlanVersion:
    """Pro v1: SSO, 10 projects, the models gpt-4o and o1; audit_log exists,
    granted by no plan."""
    feature_create(code="sso", name="SSO", kind="boolean")
    feature_create(code="max_projects", name="Projects", kind="config")
    feature_create(code="models", name="Models", kind="config")
    feature_create(code="audit_log", name="Audit log", kind="boolean")
    return published_version(
        "pro",
        base_fee=D("10.00"),
        features=(
            FeatureGrant("max_projects", 10),
            FeatureGrant("models", ("gpt-4o", "o1")),
            FeatureGrant("sso", True),
        ),
    )


def subscribe(version: PlanVersion, external_id: str, deal: Overrides | None = None):
    return subscription_create(
        customer=CustomerFactory(external_id=external_id),
        plan=version.plan,
        start=NOV_1,
        overrides=deal,
    )


def readonly(page: str, field: str) -> str:
    """The text of a read-only field of an admin page."""
    found = re.search(rf'field-{field}">.*?<div class="readonly">(.*?)</div>', page, re.S)
    assert found, field
    return html.unescape(found.group(1)).strip()


def test_the_page_lists_the_features_with_the_deals_part_marked(admin_client, pro):
    # given: acme with a deal (50 projects, the audit log, no models), globex without
    acme = subscribe(pro, "acme", DEAL)
    globex = subscribe(pro, "globex")
    bare = subscribe(published_version("basic", base_fee=D("5.00")), "initech")

    # when
    pages = {
        name: admin_client.get(f"/admin/billing/subscription/{s.pk}/change/").content.decode()
        for name, s in (("acme", acme), ("globex", globex), ("initech", bare))
    }

    # then
    assert readonly(pages["acme"], "features") == (
        "Audit log: yes (deal); Projects: 50 (deal; plan: 10); SSO: yes; "
        "Models: revoked by the deal"
    )
    assert readonly(pages["acme"], "deal") == (
        "Projects: 50 (plan: 10); Audit log: yes (plan: not granted); "
        "Models: revoked (plan: gpt-4o, o1)"
    )
    assert readonly(pages["globex"], "features") == ("Projects: 10; Models: gpt-4o, o1; SSO: yes")
    assert readonly(pages["globex"], "deal") == "-"
    assert readonly(pages["initech"], "features") == "none"


def test_a_deal_changed_in_the_admin_keeps_its_features(admin_client, pro):
    # given: acme's deal of features (set as the API sets it)
    subscription = subscribe(pro, "acme", DEAL)
    url = f"/admin/billing/subscription/{subscription.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data |= history_inline(subscription)

    # when: finance gives it a base fee from the next period
    data |= {"deal_base_fee": "89.00", "effective": "period_end"}
    response = admin_client.post(url, data)

    # then: the next period's deal is the base fee and the same features
    assert response.status_code == 302, response.context["errors"]
    subscription = Subscription.objects.get(pk=subscription.pk)
    assert subscription.next_overrides == {
        "base_fee": "89.00",
        "features": [
            {"feature": "max_projects", "value": 50},
            {"feature": "audit_log", "value": True},
            {"feature": "models", "value": None},
        ],
    }
    page = admin_client.get(url).content.decode()
    assert readonly(page, "deal_next_period") == (
        "Base fee 89.00 (plan: 10.00); Projects: 50 (plan: 10); "
        "Audit log: yes (plan: not granted); Models: revoked (plan: gpt-4o, o1)"
    )

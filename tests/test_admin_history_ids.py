"""The History pages of every admin with an audit history (django-simple-history's
history_view, and history_form_view: one past state) answer an object id or a
history id that names no row with a 404, never a 500: one that is not a number
(refused by common.admin_history), a number beyond bigint or a negative one
(well-formed: simple_history's own 404). An existing object's history and a
deleted object's still show.

The admins are found in the admin site, so a new one is covered as soon as it is
registered; the only thing to add for it is a maker below."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.contrib import admin
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from billing.models import Subscription
from common.admin_history import AuditHistoryAdmin
from common.history import one_change
from common.vocabulary import CouponDuration, FeatureKind
from customers.billing_entities import billing_entity_save
from customers.models import BillingEntity
from invoices.dunning_policies import StepInput, policy_save
from plans.coupons import coupon_create
from plans.features import feature_create
from plans.models import PlanVersion
from plans.services import tax_rate_create
from tests.factories import (
    ApiKeyFactory,
    CreditPackFactory,
    CustomerFactory,
    MeterFactory,
    PlanFactory,
    PlanVersionFactory,
    SubscriptionFactory,
)
from wallets.ledger import wallet_get_or_create
from wallets.models import Wallet

pytestmark = pytest.mark.django_db

# Ids no row has: not a number, a number beyond bigint, a negative number.
IMPOSSIBLE_IDS = ["abc", str(10**30), "-1"]


def _wallet() -> Wallet:
    wallet = wallet_get_or_create(customer=CustomerFactory(), kind=Wallet.CREDITS)
    # Wallets are created in bulk, without a history row: one save writes one.
    wallet.low_balance_threshold = D(5)
    wallet.save(update_fields=["low_balance_threshold"])
    return wallet


# One object of each model with a History page, with at least one history row.
MAKERS = {
    "customers.Customer": lambda: CustomerFactory(),
    "customers.ApiKey": lambda: ApiKeyFactory(),
    "customers.BillingEntity": lambda: billing_entity_save(
        entity=BillingEntity(
            code="example_sas",
            legal_name="Example SAS",
            country="FR",
            invoice_prefix="FR",
            credit_note_prefix="AV",
        )
    ),
    "plans.Plan": lambda: PlanFactory(version=None),
    "plans.PlanVersion": lambda: PlanVersionFactory(status=PlanVersion.DRAFT),
    "plans.CreditPack": lambda: CreditPackFactory(),
    "plans.Coupon": lambda: coupon_create(
        code="welcome", name="Welcome", percent_off=D(10), duration=CouponDuration.ONCE
    ),
    "plans.Feature": lambda: feature_create(code="sso", name="SSO", kind=FeatureKind.BOOLEAN),
    "plans.Meter": lambda: MeterFactory(),
    "plans.TaxRate": lambda: tax_rate_create(code="vat", name="VAT", percentage=D(20)),
    "billing.Subscription": lambda: SubscriptionFactory(start=datetime(2026, 11, 1, tzinfo=UTC)),
    "wallets.Wallet": _wallet,
    "invoices.DunningPolicy": lambda: policy_save(
        code="standard", name="Standard", is_default=True, steps=[StepInput(7, "restrict")]
    ),
}


# Every model whose admin has simple_history's pages, whatever its admin's base.
HISTORY_MODELS = [
    pytest.param(model, id=model._meta.label)
    for model, model_admin in admin.site._registry.items()
    if isinstance(model_admin, SimpleHistoryAdmin)
]


def _history_url(model, object_id) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_history", args=[object_id])


def _past_state_url(model, object_id, history_id) -> str:
    meta = model._meta
    return reverse(
        f"admin:{meta.app_label}_{meta.model_name}_simple_history", args=[object_id, history_id]
    )


def _last_history_id(model, object_id) -> int:
    rows = model.history.filter(**{model._meta.pk.attname: object_id})
    return rows.order_by("-history_id").values_list("history_id", flat=True).first()


@pytest.fixture
def client(admin_client):
    admin_client.raise_request_exception = False  # a 500 is an answer to assert on
    return admin_client


def test_every_history_admin_is_found_and_has_a_maker():
    assert {param.values[0]._meta.label for param in HISTORY_MODELS} == set(MAKERS)


@pytest.mark.parametrize("model", HISTORY_MODELS)
def test_every_history_admin_uses_the_shared_base(model):
    assert isinstance(admin.site._registry[model], AuditHistoryAdmin)


@pytest.mark.parametrize("bad_id", IMPOSSIBLE_IDS)
@pytest.mark.parametrize("model", HISTORY_MODELS)
def test_an_impossible_object_id_is_a_404(client, model, bad_id):
    obj = MAKERS[model._meta.label]()
    history_id = _last_history_id(model, obj.pk)

    history = client.get(_history_url(model, bad_id))
    past_state = client.get(_past_state_url(model, bad_id, history_id))

    assert (history.status_code, past_state.status_code) == (404, 404)


@pytest.mark.parametrize("bad_id", IMPOSSIBLE_IDS)
@pytest.mark.parametrize("model", HISTORY_MODELS)
def test_an_impossible_history_id_is_a_404(client, model, bad_id):
    obj = MAKERS[model._meta.label]()

    response = client.get(_past_state_url(model, obj.pk, bad_id))

    assert response.status_code == 404


@pytest.mark.parametrize("model", HISTORY_MODELS)
def test_an_existing_object_shows_its_history_and_its_past_state(client, model):
    obj = MAKERS[model._meta.label]()
    history_id = _last_history_id(model, obj.pk)

    history = client.get(_history_url(model, obj.pk))
    past_state = client.get(_past_state_url(model, obj.pk, history_id))

    assert (history.status_code, past_state.status_code) == (200, 200)


def _delete(obj) -> None:
    with one_change():
        if isinstance(obj, Subscription):
            # The app never deletes a subscription (its invoices and change log
            # protect it): cleared here, to show the history of a row gone.
            obj.invoices.all().delete()
            obj.changes.all().delete()
        obj.delete()


# A plan version's History page is its price history (plans.admin.plan_versions),
# read from the live version: a deleted version has none. Its past states still show.
DELETED_HISTORY_PAGE_STATUS = {"plans.PlanVersion": 404}


@pytest.mark.parametrize("model", HISTORY_MODELS)
def test_a_deleted_object_still_shows_its_history_and_its_past_state(client, model):
    obj = MAKERS[model._meta.label]()
    object_id = obj.pk
    _delete(obj)
    assert not model.objects.filter(pk=object_id).exists()
    deletion = model.history.filter(**{model._meta.pk.attname: object_id}).latest("history_id")
    assert deletion.history_type == "-"

    history = client.get(_history_url(model, object_id))
    past_state = client.get(_past_state_url(model, object_id, deletion.history_id))

    expected = DELETED_HISTORY_PAGE_STATUS.get(model._meta.label, 200)
    assert (history.status_code, past_state.status_code) == (expected, 200)

"""Credits for some meters on the pages people read: the wallet admin grants them
(a meters field) and lists them with their meters, the pack admin sells packs for
some meters, the portal says what part of a balance pays for some meters only."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from customers.portal import portal_session_create
from plans.models import CreditPack, Meter
from tests.factories import MeterFactory
from wallets.ledger import credits_grant
from wallets.models import CreditBlock, LedgerEntry, Wallet

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


@pytest.fixture
def meters(db):
    MeterFactory(
        code="gpt4o_tokens",
        name="GPT-4o tokens",
        event_name="llm.completion",
        aggregation=Meter.SUM,
        value_property="tokens",
    )
    MeterFactory(code="storage", name="Storage", event_name="storage.used")


def test_the_admin_grants_credits_for_some_meters_and_lists_them(admin_client, acme, meters):
    wallet = Wallet.objects.create(customer=acme, kind="credits")
    url = f"/admin/wallets/wallet/{wallet.pk}/operation/"
    assert "GPT-4o tokens" in admin_client.get(url).content.decode()

    response = admin_client.post(
        url,
        {"operation": "grant", "credits": "25", "priority": 10, "applies_to": ["gpt4o_tokens"]},
    )
    assert response.status_code == 302
    credits_grant(customer=acme, credits=D(5), now=NOW)

    assert sorted((b.amount, b.applies_to) for b in CreditBlock.objects.all()) == [
        (D(5), []),
        (D(25), ["gpt4o_tokens"]),
    ]
    page = admin_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/").content.decode()
    assert "gpt4o_tokens" in page and "all meters" in page


def test_the_admin_refuses_meters_for_a_pack_sale_and_changes_nothing(
    admin_client, acme, meters, agents_plan
):
    wallet = Wallet.objects.create(customer=acme, kind="credits")
    pack = CreditPack.objects.get(code="runs_100")
    response = admin_client.post(
        f"/admin/wallets/wallet/{wallet.pk}/operation/",
        {"operation": "pack", "pack": pack.pk, "priority": 50, "applies_to": ["storage"]},
    )
    assert response.status_code == 200
    assert "pay for the meters the pack applies to" in response.content.decode()
    assert not LedgerEntry.objects.exists()


def test_the_pack_admin_saves_and_lists_its_meters(admin_client, meters):
    response = admin_client.post(
        "/admin/plans/creditpack/add/",
        {
            "code": "tokens_1k",
            "name": "Tokens 1k",
            "credits": "1000",
            "price_0": "9.00",
            "price_1": "USD",
            "active": "on",
            "meters": ["gpt4o_tokens"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    pack = CreditPack.objects.get(code="tokens_1k")
    assert pack.applies_to == ["gpt4o_tokens"]
    listing = admin_client.get("/admin/plans/creditpack/").content.decode()
    assert "gpt4o_tokens" in listing
    form = admin_client.get(f"/admin/plans/creditpack/{pack.pk}/change/").content.decode()
    assert 'value="gpt4o_tokens" selected' in form


def test_the_portal_says_what_pays_for_some_meters_only(client, acme, meters):
    credits_grant(customer=acme, credits=D(100), now=NOW)
    credits_grant(customer=acme, credits=D(30), applies_to=["gpt4o_tokens"], now=NOW)
    token = portal_session_create(customer=acme, now=NOW).token
    with time_machine.travel(NOW, tick=False):
        response = client.get(f"/portal/{token}/")
    assert response.status_code == 200
    assert response.context["wallets"] == [
        {
            "kind": "credits",
            "currency": "",
            "balance": "130 credits",
            "scoped": [{"meters": "GPT-4o tokens", "balance": "30 credits"}],
            "expiring": [],
        }
    ]
    assert "of which for GPT-4o tokens only" in response.content.decode()

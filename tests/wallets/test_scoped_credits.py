"""Issue 52, credits and money for some meters: grants, packs and money top-ups
take `applies_to`; draw-down uses a block only for its meters, in the existing
order (priority, then expiry); `check` counts only the blocks of the meter
asked. Through the HTTP API, exact amounts; time is set."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from billing.invoicing.close import periods_close
from invoices.models import Invoice, Purchase
from plans.models import CreditPack, Meter
from plans.validation import ChargeSpec
from tests.factories import (
    CreditPackFactory,
    MeterFactory,
    balance,
    check_v1,
    per_unit,
    published_version,
    subscribe,
)
from tests.wallets.support import state
from wallets.models import CreditBlock, LedgerEntry, UncoveredUsage, Wallet

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def meters(db):
    MeterFactory(
        code="gpt4o_tokens",
        name="GPT-4o tokens",
        event_name="llm.completion",
        aggregation=Meter.SUM,
        value_property="tokens",
    )
    MeterFactory(
        code="storage",
        name="Storage",
        event_name="storage.used",
        aggregation=Meter.SUM,
        value_property="gb",
    )


def scoped_plan(storage_when_exhausted: str = "block") -> None:
    """1 credit a token; 2 credits a GB of storage (0.50 a GB no credit pays for,
    when it bills)."""
    storage = ChargeSpec(
        "storage",
        "credits",
        credits_per_unit=D(2),
        when_exhausted=storage_when_exhausted,
        pricing=per_unit("0.50") if storage_when_exhausted == "bill" else None,
    )
    published_version(
        "scoped",
        charges=(ChargeSpec("gpt4o_tokens", "credits", credits_per_unit=D(1)), storage),
    )


def post(api, path: str, body: dict):
    with time_machine.travel(NOW, tick=False):
        return api.post(f"/api/v1{path}", body, format="json")


def send(api, *events: tuple[str, str, int]) -> None:
    """Events (id, meter, units) of acme at NOW through POST /events."""
    names = {"gpt4o_tokens": ("llm.completion", "tokens"), "storage": ("storage.used", "gb")}
    body = {
        "events": [
            {
                "id": event_id,
                "customer": "acme",
                "event_name": names[meter][0],
                "timestamp": NOW.isoformat(),
                "properties": {names[meter][1]: units},
            }
            for event_id, meter, units in events
        ]
    }
    response = post(api, "/events", body)
    assert response.json()["accepted"] == len(events), response.content


def check(api, meter: str, quantity: int = 1) -> dict:
    response = post(api, "/customers/acme/check", {"meter": meter, "quantity": quantity})
    assert response.status_code == 200, response.content
    return check_v1(response.json())


def grant(api, credits: str, **fields) -> dict:
    response = post(api, "/customers/acme/wallets/credits", {"credits": credits, **fields})
    assert response.status_code == 201, response.content
    return response.json()["block"]


def remaining(block_id: int) -> D:
    return CreditBlock.objects.get(pk=block_id).remaining


def test_a_block_for_gpt4o_tokens_is_never_drawn_by_storage(api, acme, meters):
    # given: 100 credits for gpt4o_tokens only
    scoped_plan()
    subscribe(acme, "scoped")
    block = grant(api, "100", applies_to=["gpt4o_tokens"])
    assert block["applies_to"] == ["gpt4o_tokens"]

    # then: check refuses storage while the scoped block holds 100 credits, and
    # allows tokens
    assert check(api, "storage") == {
        "allowed": False,
        "model": "credits",
        "reason": "insufficient_credits",
        "used": "0",
        "included": None,
        "remaining": "0",
        "balance": "0",
    }
    assert check(api, "gpt4o_tokens", 100) == {
        "allowed": True,
        "model": "credits",
        "reason": "ok",
        "used": "0",
        "included": None,
        "remaining": "100",
        "balance": "100",
    }

    # when: 30 tokens and 5 GB of storage arrive
    send(api, ("t1", "gpt4o_tokens", 30), ("s1", "storage", 5))

    # then: the tokens drew 30 credits, storage drew nothing and is uncovered
    assert remaining(block["id"]) == D(70)
    wallet = Wallet.objects.get(customer=acme, kind=Wallet.CREDITS)
    assert wallet.balance == D(70)
    drawn = wallet.ledger.filter(kind=LedgerEntry.USAGE)
    assert [(e.meter, e.amount, e.quantity) for e in drawn] == [("gpt4o_tokens", D(-30), D(30))]
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.meter, uncovered.quantity, uncovered.shortfall) == ("storage", D(5), D(10))

    # and still: storage refused with 70 credits in the wallet, tokens allowed
    assert check(api, "storage")["reason"] == "insufficient_credits"
    assert check(api, "storage")["balance"] == "0"
    assert check(api, "gpt4o_tokens", 70)["allowed"] is True
    assert check(api, "gpt4o_tokens", 71)["allowed"] is False

    # the wallet's balance stays the sum of all its blocks, and GET shows the meters
    with time_machine.travel(NOW, tick=False):
        wallets = api.get("/api/v1/customers/acme/wallets").json()["results"]
    assert [(w["kind"], w["balance"]) for w in wallets] == [("credits", "70")]
    assert [(b["remaining"], b["applies_to"]) for b in wallets[0]["blocks"]] == [
        ("70", ["gpt4o_tokens"])
    ]

    # a block for every meter then pays for storage, and check allows it
    grant(api, "10")
    assert check(api, "storage", 5) == {
        "allowed": True,
        "model": "credits",
        "reason": "ok",
        "used": "5",
        "included": None,
        "remaining": "5",
        "balance": "10",
    }
    assert check(api, "gpt4o_tokens")["balance"] == "80"


def test_uncovered_storage_is_billed_as_its_charge_says(api, acme, meters):
    # given: storage bills what no credit pays for at 0.50 a GB
    scoped_plan(storage_when_exhausted="bill")
    subscribe(acme, "scoped")
    block = grant(api, "100", applies_to=["gpt4o_tokens"])

    send(api, ("t1", "gpt4o_tokens", 40), ("s1", "storage", 6))

    # check allows storage, billed when exhausted, with no credit for it
    answer = check(api, "storage")
    assert (answer["allowed"], answer["balance"]) == (True, "0")
    periods_close(as_of=DEC_1)
    invoice = Invoice.objects.get(customer=acme, reason=Invoice.PERIOD)
    lines = [(x.kind, x.meter, x.quantity, x.amount) for x in invoice.lines.all()]
    assert lines == [("uncovered_usage", "storage", D(6), D("3.00"))]
    assert remaining(block["id"]) == D(60)


def test_a_scoped_block_of_lower_priority_is_drawn_first_for_its_meter(api, acme, meters):
    # given: an unscoped block at priority 50, one for tokens at priority 10, one
    # for storage at priority 1
    scoped_plan()
    subscribe(acme, "scoped")
    everything = grant(api, "100", priority=50)
    tokens = grant(api, "20", priority=10, applies_to=["gpt4o_tokens"])
    storage = grant(api, "8", priority=1, applies_to=["storage"])

    # when: 25 tokens, then 5 GB (10 credits)
    send(api, ("t1", "gpt4o_tokens", 25))
    send(api, ("s1", "storage", 5))

    # then: tokens drew their block first (20) then the unscoped one (5); storage
    # drew its own (8) then the unscoped one (2); none drew the other's block
    assert [remaining(b["id"]) for b in (everything, tokens, storage)] == [D(93), D(0), D(0)]
    entries = LedgerEntry.objects.filter(kind=LedgerEntry.USAGE).order_by("id")
    assert [(e.block_id, e.meter, e.amount) for e in entries] == [
        (tokens["id"], "gpt4o_tokens", D(-20)),
        (everything["id"], "gpt4o_tokens", D(-5)),
        (storage["id"], "storage", D(-8)),
        (everything["id"], "storage", D(-2)),
    ]


def test_a_pack_for_some_meters_sells_blocks_for_them(api, acme, meters):
    scoped_plan()
    subscribe(acme, "scoped")
    response = post(
        api,
        "/credit-packs",
        {
            "code": "tokens_1k",
            "credits": "1000",
            "price": "9.00",
            "currency": "USD",
            "applies_to": ["gpt4o_tokens"],
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["applies_to"] == ["gpt4o_tokens"]

    response = post(api, "/customers/acme/wallets/credits", {"pack": "tokens_1k"})
    assert response.status_code == 201, response.content
    block = response.json()["block"]
    assert (block["amount"], block["applies_to"]) == ("1000", ["gpt4o_tokens"])
    assert response.json()["invoice"]["total"] == "9.00"

    send(api, ("t1", "gpt4o_tokens", 10), ("s1", "storage", 1))
    assert remaining(block["id"]) == D(990)
    assert check(api, "storage")["allowed"] is False

    # a pack's credits pay for the pack's meters: a purchase names none of its own
    before = state()
    response = post(
        api, "/customers/acme/wallets/credits", {"pack": "tokens_1k", "applies_to": ["storage"]}
    )
    assert response.status_code == 400
    assert "applies_to" in response.json()["error"]["fields"]
    assert state() == before


def test_an_auto_top_up_pack_for_other_meters_is_not_bought_for_storage(api, acme, meters):
    scoped_plan()
    subscribe(acme, "scoped")
    CreditPackFactory(
        code="tokens_100", credits=D(100), price=D("0.00"), applies_to=["gpt4o_tokens"]
    )
    response = api.put(
        "/api/v1/customers/acme/wallets/credits/auto-top-up",
        {"enabled": True, "threshold": "0", "pack": "tokens_100"},
        format="json",
    )
    assert response.status_code == 200, response.content

    # storage is short, but the pack would not pay for it: nothing is bought
    assert check(api, "storage")["allowed"] is False
    send(api, ("s1", "storage", 3))
    assert not CreditBlock.objects.exists()
    assert UncoveredUsage.objects.get().quantity == D(3)

    # tokens are short too, and the pack pays for them: one is bought and drawn
    assert check(api, "gpt4o_tokens", 50)["allowed"] is True
    send(api, ("t1", "gpt4o_tokens", 40))
    block = CreditBlock.objects.get()
    assert (block.source, block.applies_to, block.remaining) == (
        CreditBlock.AUTO_TOP_UP,
        ["gpt4o_tokens"],
        D(60),
    )


def test_a_money_top_up_for_some_meters(api, acme, meters):
    # given: tokens and storage drawn from money
    published_version(
        "prepaid", charges=(balance("gpt4o_tokens", "0.01"), balance("storage", "0.10"))
    )
    subscribe(acme, "prepaid")
    response = post(
        api,
        "/customers/acme/wallets/money",
        {"amount": "5.00", "currency": "USD", "applies_to": ["gpt4o_tokens"]},
    )
    assert response.status_code == 201, response.content
    block = response.json()["block"]
    assert (block["amount"], block["applies_to"]) == ("5.00", ["gpt4o_tokens"])

    send(api, ("t1", "gpt4o_tokens", 100), ("s1", "storage", 4))

    assert remaining(block["id"]) == D("4.00")
    uncovered = UncoveredUsage.objects.get()
    assert (uncovered.meter, uncovered.quantity, uncovered.shortfall) == (
        "storage",
        D(4),
        D("0.40"),
    )
    assert check(api, "storage") == {
        "allowed": False,
        "model": "balance",
        "reason": "insufficient_balance",
        "used": "4",
        "included": None,
        "remaining": "0",
        "balance": "0.00",
    }
    assert check(api, "gpt4o_tokens", 400)["allowed"] is True
    assert check(api, "gpt4o_tokens", 401)["allowed"] is False


@pytest.mark.parametrize(
    ("applies_to", "words"),
    [
        (["gpt4o_tokens", "images"], "there is no meter 'images'"),
        ("gpt4o_tokens", "must be a list of meter codes"),
        ([1, 2], "must be a list of meter codes"),
        (["storage", "storage"], "names 'storage' twice"),
        (["s" * 300], "there is no meter '" + "s" * 64 + "…'"),
        (["storage"] * 101, "names 101 meters; at most 100"),
    ],
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/customers/acme/wallets/credits", {"credits": "10"}),
        ("/customers/acme/wallets/money", {"amount": "5.00", "currency": "USD"}),
        ("/credit-packs", {"code": "p", "credits": "10", "price": "1.00", "currency": "USD"}),
    ],
)
def test_bad_applies_to_is_refused_in_words_and_nothing_is_written(
    api, acme, meters, applies_to, words, path, body
):
    before = state(), CreditPack.objects.count(), Purchase.objects.count()
    response = post(api, path, {**body, "applies_to": applies_to})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert any(words in message for message in error["fields"]["applies_to"]), error
    assert (state(), CreditPack.objects.count(), Purchase.objects.count()) == before

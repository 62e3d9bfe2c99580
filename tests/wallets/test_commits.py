"""S27 end to end (issue 52): commits signed through the API, usage posted
through the API, each period closed by the close as the beat runs it, with
exact invoices, drawdown ledger and rollover."""

import io
import os
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pypdf import PdfReader

from billing.invoicing.close import periods_close
from billing.invoicing.progressive import threshold_invoices_write
from customers.portal import portal_session_create
from customers.services import customer_create
from invoices.models import Invoice
from invoices.pdf import render_invoice_pdf
from plans.models import Meter
from plans.services import meter_create
from tests.factories import api_client, subscribe
from wallets.commit_models import Commit
from wallets.commits import ENTRY_KINDS, access_kind, commit_accesses, commit_ledger
from wallets.revenue import credit_revenue

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, tzinfo=UTC)
JAN_2 = datetime(2027, 1, 2, tzinfo=UTC)
FEB_1 = datetime(2027, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2027, 3, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, 12, tzinfo=UTC)
NOV_12 = datetime(2026, 11, 12, 12, tzinfo=UTC)
NEXT_NOV_1 = datetime(2027, 11, 1, tzinfo=UTC)


def per_thousand(price: str) -> dict:
    return {"scheme": "per_unit", "unit_price": price, "per": "1000"}


@pytest.fixture
def catalog(db):
    meter_create(
        code="llm_tokens",
        name="LLM tokens",
        event_name="llm.tokens",
        aggregation=Meter.SUM,
        value_property="tokens",
    )
    meter_create(
        code="storage",
        name="Storage",
        event_name="storage.gb",
        aggregation=Meter.SUM,
        value_property="gb",
    )
    plan = {
        "code": "ai",
        "name": "AI",
        "currency": "USD",
        "base_fee": "0",
        "publish": True,
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "pricing": per_thousand("1.00"),
            },
            {
                "meter": "storage",
                "model": "overage",
                "included_units": "0",
                "pricing": {"scheme": "per_unit", "unit_price": "1.00"},
            },
        ],
    }
    response = api_client("admin").post("/api/v1/plans", plan, format="json")
    assert response.status_code == 201, response.json()


def customer_on_plan(external_id: str, zone: str = "UTC"):
    customer = customer_create(
        external_id=external_id, name=external_id.title(), currency="USD", timezone_name=zone
    )
    return customer, subscribe(customer, "ai")


def post_usage(external_id: str, when: datetime, *, tokens: int = 0, gb: int = 0) -> None:
    events = []
    if tokens:
        events.append(
            {
                "id": f"{external_id}-t-{when.isoformat()}",
                "customer": external_id,
                "event_name": "llm.tokens",
                "timestamp": when.isoformat(),
                "properties": {"tokens": tokens},
            }
        )
    if gb:
        events.append(
            {
                "id": f"{external_id}-s-{when.isoformat()}",
                "customer": external_id,
                "event_name": "storage.gb",
                "timestamp": when.isoformat(),
                "properties": {"gb": gb},
            }
        )
    with time_machine.travel(when, tick=False):
        posted = api_client("events:write").post(
            "/api/v1/events", {"events": events}, format="json"
        )
    assert posted.status_code in (200, 201, 202), posted.json()
    assert posted.json()["accepted"] == len(events)


S27_PREPAID = {
    "amount": "12000.00",
    "currency": "USD",
    "starts_at": "2026-11-01T00:00:00Z",
    "ends_at": "2027-11-01T00:00:00Z",
    "billing": "prepaid",
    "access": "per_period",
    "applies_to": ["llm_tokens"],
    "overage_multiplier": "1.10",
    "rollover": {"percent": "50", "expires_after_periods": 3},
}


def sign(external_id: str, body: dict, at: datetime = NOV_1):
    with time_machine.travel(at, tick=False):
        return api_client("admin").post(
            f"/api/v1/customers/{external_id}/commits", body, format="json"
        )


def lines_of(invoice: Invoice) -> list[tuple[str, str]]:
    return [(line.kind, f"{line.amount:.2f}") for line in invoice.lines.order_by("position")]


def period_invoice(customer, start: datetime) -> Invoice:
    return Invoice.objects.get(customer=customer, reason=Invoice.PERIOD, period_start=start)


def test_s27_prepaid_commit_with_rollover(catalog):
    customer, _subscription = customer_on_plan("acme")
    signed = sign("acme", S27_PREPAID)
    assert signed.status_code == 201, signed.json()
    body = signed.json()
    # Invoiced 12,000.00 at the start, finalized.
    assert body["invoice"]["reason"] == "commit"
    assert body["invoice"]["total"] == "12000.00"
    assert body["commit"]["periods"] == 12
    accesses = body["commit"]["accesses"]
    assert [a["amount"] for a in accesses] == ["1000.00"] * 12

    # Month 1: 800.00 of token usage.
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=800_000)
    periods_close(as_of=DEC_1)
    november = period_invoice(customer, NOV_1)
    assert lines_of(november) == [("overage", "800.00"), ("commit_drawdown", "-800.00")]
    assert november.total == D("0.00")
    commit = Commit.objects.get(customer=customer)
    (rollover,) = access_blocks(commit, "rollover")
    # 100.00 rolls over, to the end of month 4 (February 2027); 100.00 expires.
    assert (rollover.amount, rollover.effective_at, rollover.expires_at) == (
        D("100.00"),
        DEC_1,
        MAR_1,
    )
    expired = movements(commit, "expiry")
    assert [e.amount for e in expired] == [D("-100.00")]

    # Month 2: 1,300.00 of tokens and 50.00 of storage.
    post_usage("acme", datetime(2026, 12, 10, tzinfo=UTC), tokens=1_300_000, gb=50)
    periods_close(as_of=JAN_1)
    december = period_invoice(customer, DEC_1)
    assert lines_of(december) == [
        ("overage", "1300.00"),
        ("overage", "50.00"),
        ("commit_drawdown", "-1100.00"),
        ("commit_overage", "20.00"),
    ]
    assert december.total == D("270.00")
    # Drawn from the rollover first, then the period's access.
    draws = [e for e in movements(commit, "drawdown") if e.period_start == DEC_1]
    assert [(access_kind(e.block, commit), e.amount) for e in draws] == [
        ("rollover", D("-100.00")),
        ("period", D("-1000.00")),
    ]
    assert {e.invoice for e in draws} == {december}
    # Nothing left of December's access: nothing rolls over, nothing expires.
    assert not [a for a in access_blocks(commit, "rollover") if a.effective_at == JAN_1]
    assert len(movements(commit, "expiry")) == 1

    # The ledger adds up: drawn + expired + remaining = committed.
    assert_commit_adds_up(commit)

    # Revenue: deferred when invoiced, recognized as drawn, breakage as it expires.
    revenue = {
        (r.month.isoformat(), r.currency): (r.purchased, r.recognized, r.breakage)
        for r in credit_revenue(until=JAN_2)
    }
    assert revenue == {
        ("2026-11-01", "USD"): (D("12000.00"), D("800.00"), D("100.00")),
        ("2026-12-01", "USD"): (D("0"), D("1100.00"), D("0")),
        ("2027-01-01", "USD"): (D("0"), D("0"), D("0")),
    }
    assert credit_revenue(until=JAN_2)[-1].deferred_closing == D("10000.00")

    # The API shows the ledger.
    detail = api_client("read").get(f"/api/v1/customers/acme/commits/{commit.pk}").json()
    assert [e["kind"] for e in detail["entries"]][:2] == ["drawdown", "rollover"]


def access_blocks(commit: Commit, kind: str | None = None) -> list:
    """The commit's access blocks, of that kind (period, upfront, rollover)."""
    return [b for b in commit_accesses(commit) if kind in (None, access_kind(b, commit))]


def movements(commit: Commit, *kinds: str) -> list:
    """The commit's ledger entries of these kinds (drawdown, rollover, expiry,
    credited; counted, true_up), oldest first."""
    return [e for e in commit_ledger(commit) if ENTRY_KINDS.get(e.kind, e.kind) in kinds]


def assert_commit_adds_up(commit: Commit) -> None:
    drawn = -sum(e.amount for e in movements(commit, "drawdown"))
    expired = -sum(e.amount for e in movements(commit, "expiry", "credited"))
    remaining = sum(a.remaining for a in access_blocks(commit))
    assert drawn + expired + remaining == commit.amount


def test_s27_postpaid_commit_true_up(catalog):
    customer, _subscription = customer_on_plan("beta")
    body = {
        "amount": "6000.00",
        "currency": "USD",
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2027-05-01T00:00:00Z",
        "billing": "postpaid",
        "applies_to": ["llm_tokens"],
    }
    signed = sign("beta", body)
    assert signed.status_code == 201, signed.json()
    assert signed.json()["invoice"] is None
    # 4,500.00 of usage over the six months, billed along the way.
    months = [datetime(2026, 11, 1, tzinfo=UTC)]
    for month in range(6):
        start = datetime(2026 + (10 + month) // 12, (10 + month) % 12 + 1, 1, tzinfo=UTC)
        months.append(start)
        post_usage("beta", start.replace(day=10), tokens=750_000)
        end = datetime(2026 + (11 + month) // 12, (11 + month) % 12 + 1, 1, tzinfo=UTC)
        periods_close(as_of=end)
        assert period_invoice(customer, start).total == D("750.00")
    true_up = Invoice.objects.get(customer=customer, reason=Invoice.COMMIT_TRUE_UP)
    assert lines_of(true_up) == [("commit_true_up", "1500.00")]
    assert true_up.total == D("1500.00")
    commit = Commit.objects.get(customer=customer)
    assert (commit.status, commit.counted) == (Commit.ENDED, D("4500.00"))
    # Closing again writes nothing more.
    periods_close(as_of=datetime(2027, 5, 1, tzinfo=UTC))
    assert Invoice.objects.filter(customer=customer, reason=Invoice.COMMIT_TRUE_UP).count() == 1


def test_rollover_expires_on_the_period_end_in_the_customers_zone(catalog):
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 11, 1, tzinfo=paris)
    customer = customer_create(
        external_id="paris", name="Paris", currency="USD", timezone_name="Europe/Paris"
    )
    subscription = subscribe(customer, "ai", start=start)
    assert subscription.current_period_end == datetime(2026, 12, 1, tzinfo=paris)
    body = S27_PREPAID | {
        "starts_at": start.isoformat(),
        "ends_at": datetime(2027, 11, 1, tzinfo=paris).isoformat(),
        "rollover": {"percent": "50", "expires_after_periods": 1},
    }
    signed = sign("paris", body, at=start)
    assert signed.status_code == 201, signed.json()
    post_usage("paris", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    periods_close(as_of=datetime(2026, 12, 1, tzinfo=paris))
    (rollover,) = access_blocks(Commit.objects.get(), "rollover")
    # 200.00 rolls over, for one period: to the end of December in Paris.
    assert rollover.amount == D("200.00")
    assert rollover.expires_at == datetime(2027, 1, 1, tzinfo=paris)
    # December: no usage. The rollover expires with December, untouched.
    periods_close(as_of=datetime(2027, 1, 1, tzinfo=paris))
    rollover.refresh_from_db()
    assert (rollover.remaining, rollover.expired_at) == (D("0"), datetime(2027, 1, 1, tzinfo=paris))
    commit = Commit.objects.get()
    expired = movements(commit, "expiry")
    # November: 200 of 400 unused expired; December: 500 of its 1,000 (500 rolled)
    # and the 200 of November's rollover.
    assert sorted(e.amount for e in expired) == [D("-500.00"), D("-200.00"), D("-200.00")]
    assert_commit_adds_up(commit)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"currency": "EUR"}, "currency", "USD"),
        ({"applies_to": ["nope"]}, "applies_to", "nope"),
        ({"starts_at": "2026-11-15T00:00:00Z"}, "starts_at", "whole periods"),
        ({"ends_at": "2027-10-15T00:00:00Z"}, "starts_at", "whole periods"),
        ({"billing": "postpaid"}, "access", "prepaid commits only"),
        ({"access": "upfront"}, "rollover", "per_period"),
        ({"overage_multiplier": "0.5"}, "overage_multiplier", "1 or more"),
        ({"rollover": {"percent": "150", "expires_after_periods": 1}}, "rollover", "100"),
        ({"amount": "-5"}, "amount", ""),
        ({"amount": "10.001"}, "amount", "decimals"),
    ],
)
def test_refusals_in_words_write_nothing(catalog, change, field, words):
    customer_on_plan("acme")
    refused = sign("acme", S27_PREPAID | change)
    assert refused.status_code == 400, refused.json()
    error = refused.json()["error"]
    assert field in error["fields"], error
    assert words in error["message"], error
    assert not Commit.objects.exists()
    assert not Invoice.objects.filter(reason=Invoice.COMMIT).exists()


def test_a_second_commit_over_the_same_term_is_refused(catalog):
    customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    again = sign("acme", S27_PREPAID)
    assert again.status_code == 409
    assert Commit.objects.count() == 1


@pytest.mark.parametrize("how", ["migration", "plan_change"])
def test_a_migration_or_plan_change_during_a_commit_draws_nothing_twice(
    catalog, how, django_capture_on_commit_callbacks
):
    # given: the S27 commit, 300.00 of tokens by Nov 10, then the customer moved
    # (immediately, Nov 16) to a plan pricing tokens at 2.00 a thousand: by a
    # bulk migration, or by a plan change
    admin = api_client("admin")
    pricier = {
        "code": "ai2",
        "name": "AI 2",
        "currency": "USD",
        "base_fee": "0",
        "publish": True,
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "pricing": per_thousand("2.00"),
            }
        ],
    }
    assert admin.post("/api/v1/plans", pricier, format="json").status_code == 201
    customer, subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=300_000)
    with (
        time_machine.travel(datetime(2026, 11, 16, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        if how == "migration":
            move = {
                "subscriptions": [subscription.pk],
                "plan": "ai2",
                "effective": "immediate",
                "at": "2026-11-16T00:00:00Z",
            }
            preview = admin.post("/api/v1/plan-migrations/preview", move, format="json")
            confirm = move | {
                "token": "5f0c1c84-3c49-4f4e-9b0e-0b0c7d1c2a11",
                "digest": preview.json()["digest"],
            }
            done = admin.post("/api/v1/plan-migrations", confirm, format="json")
            assert done.status_code == 202, done.json()
        else:
            done = admin.post(
                f"/api/v1/subscriptions/{subscription.pk}/change-plan",
                {"plan": "ai2", "effective": "immediate", "at": "2026-11-16T00:00:00Z"},
                format="json",
            )
            assert done.status_code == 200, done.json()
    change = Invoice.objects.get(customer=customer, reason=Invoice.PLAN_CHANGE)
    # The plan change's invoice draws its 300.00 from November's access.
    assert lines_of(change) == [("overage", "300.00"), ("commit_drawdown", "-300.00")]
    assert change.total == D("0.00")

    # when: 400,000 more tokens (800.00 at the new price), and November closes
    post_usage("acme", datetime(2026, 11, 20, tzinfo=UTC), tokens=400_000)
    periods_close(as_of=DEC_1)

    # then: the close draws the 700.00 left, and bills 100.00 beyond it x 1.10
    november = period_invoice(customer, NOV_1)
    assert lines_of(november) == [
        ("overage", "800.00"),
        ("commit_drawdown", "-700.00"),
        ("commit_overage", "10.00"),
    ]
    assert november.total == D("110.00")
    commit = Commit.objects.get(customer=customer)
    drawn = movements(commit, "drawdown")
    assert sorted((e.amount, e.invoice_id) for e in drawn) == [
        (D("-700.00"), november.pk),
        (D("-300.00"), change.pk),
    ]
    # Nothing of November's access is left to roll over or expire.
    assert not movements(commit, "expiry")
    assert_commit_adds_up(commit)
    # The commit belongs to the customer: it goes on on the new plan.
    assert commit.status == Commit.ACTIVE


def progressive_commit_customer():
    """acme on "aip" (tokens at 1.00 per 1,000, a threshold invoice at 100.00 not
    yet invoiced) with S27's prepaid commit signed."""
    admin = api_client("admin")
    plan = {
        "code": "aip",
        "name": "AI progressive",
        "currency": "USD",
        "base_fee": "0",
        "progressive_billing_threshold": "100",
        "publish": True,
        "charges": [
            {
                "meter": "llm_tokens",
                "model": "overage",
                "included_units": "0",
                "pricing": per_thousand("1.00"),
            }
        ],
    }
    assert admin.post("/api/v1/plans", plan, format="json").status_code == 201
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    subscribe(customer, "aip")
    assert sign("acme", S27_PREPAID).status_code == 201
    return customer


def test_threshold_invoices_bill_only_what_goes_beyond_the_access(catalog):
    customer = progressive_commit_customer()
    # 500.00 of usage: within the access, no threshold invoice
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=500_000)
    assert threshold_invoices_write(customer_ids=[customer.pk], now=NOV_11) == []
    # 1,200.00: 200.00 beyond the access, x 1.10, crosses the 100.00 threshold
    post_usage("acme", datetime(2026, 11, 11, tzinfo=UTC), tokens=700_000)
    (threshold,) = threshold_invoices_write(customer_ids=[customer.pk], now=NOV_12)
    assert lines_of(threshold) == [
        ("overage", "1200.00"),
        ("commit_drawdown", "-1000.00"),
        ("commit_overage", "20.00"),
    ]
    assert threshold.total == D("220.00")
    # The close bills the rest (nothing) and draws the access once.
    periods_close(as_of=DEC_1)
    november = period_invoice(customer, NOV_1)
    assert november.total == D("0.00")
    commit = Commit.objects.get(customer=customer)
    drawn = movements(commit, "drawdown")
    assert [e.amount for e in drawn] == [D("-1000.00")]
    assert_commit_adds_up(commit)


def test_usage_shows_the_commit_and_the_check_counts_its_access_as_spendable(catalog):
    # given: the S27 commit, November drawn down to 200.00 of rollover in
    # December, and 300.00 of December tokens so far
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    periods_close(as_of=DEC_1)
    post_usage("acme", datetime(2026, 12, 10, tzinfo=UTC), tokens=300_000)
    read = api_client("read")
    with time_machine.travel(datetime(2026, 12, 16, tzinfo=UTC), tick=False):
        body = read.get("/api/v1/customers/acme/usage").json()
    # 200.00 rolled over (half of 400 unused), drawn first: 300 of usage takes it
    # all and 100.00 of December's access.
    assert body["commit"] == {
        "billing": "prepaid",
        "available": "900.00",
        "drawn_this_period": "300.00",
        "rollover": [],
    }
    assert body["subtotal"] == "0.00"

    # a spend limit of 50.00: 800.00 more of tokens stays within the access and
    # 850.00 more goes 50.00 beyond it, times 1.10
    customer.spend_limit = D("50.00")
    customer.save(update_fields=["spend_limit"])
    with time_machine.travel(datetime(2026, 12, 16, tzinfo=UTC), tick=False):
        within = read.post(
            "/api/v1/customers/acme/check",
            {"meter": "llm_tokens", "quantity": 800_000 + 40_000},
            format="json",
        ).json()
        beyond = read.post(
            "/api/v1/customers/acme/check",
            {"meter": "llm_tokens", "quantity": 900_000 + 46_000},
            format="json",
        ).json()
    assert within["allowed"] is True, within
    assert beyond["allowed"] is False, beyond
    assert beyond["reason"] == "spend_limit_reached", beyond


@pytest.mark.parametrize("leftover", ["expire", "credit"])
def test_an_immediate_cancel_ends_the_commit_its_access_left_expired_or_credited(
    catalog, leftover, django_capture_on_commit_callbacks
):
    # given: the S27 commit, 300.00 of tokens in November
    customer, subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=300_000)
    # when: canceled at once on Nov 16, finance choosing what the rest becomes
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client("admin").post(
            f"/api/v1/subscriptions/{subscription.pk}/cancel",
            {
                "effective": "immediate",
                "at": "2026-11-16T00:00:00Z",
                "commit_leftover": leftover,
            },
            format="json",
        )
    assert response.status_code == 200, response.json()
    cancel = Invoice.objects.get(customer=customer, reason=Invoice.CANCEL)
    assert ("commit_drawdown", "-300.00") in lines_of(cancel)
    commit = Commit.objects.get(customer=customer)
    assert commit.status == Commit.CANCELED
    kind = "expiry" if leftover == "expire" else "credited"
    assert -sum(e.amount for e in movements(commit, kind)) == D("11700.00")
    assert_commit_adds_up(commit)
    notes = commit.invoice.credit_notes.all()
    if leftover == "credit":
        (note,) = notes
        assert note.subtotal == D("11700.00")
    else:
        assert not notes.exists()


def test_a_credit_note_on_the_commit_invoice_takes_back_only_access_left(catalog):
    from common.errors import Conflict
    from invoices.credit_notes import CreditLineInput, credit_note_issue

    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=800_000)
    periods_close(as_of=DEC_1)
    commit = Commit.objects.get(customer=customer)
    line = commit.invoice.lines.get()
    # 800 drawn and 100 expired (100 rolled over): 11,100.00 left to credit.
    with pytest.raises(Conflict) as refused:
        credit_note_issue(
            invoice=commit.invoice,
            lines=[CreditLineInput(line.pk, D("11100.01"))],
            reason="order_change",
            now=DEC_1,
        )
    assert "at most 11100.00 can be credited" in refused.value.message
    credit_note_issue(
        invoice=commit.invoice,
        lines=[CreditLineInput(line.pk, D("1000.00"))],
        reason="order_change",
        now=DEC_1,
    )
    # Taken from the term's last periods first.
    (last,) = [a for a in access_blocks(commit) if a.expires_at == NEXT_NOV_1]
    assert last.remaining == D("0.00")
    assert_commit_adds_up(commit)


def test_the_portal_shows_the_commit_and_its_rollover_in_the_customers_language(catalog, client):
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=600_000)
    periods_close(as_of=DEC_1)
    now = datetime(2026, 12, 5, tzinfo=UTC)
    token = portal_session_create(customer=customer, now=now).token
    with time_machine.travel(now, tick=False):
        english = client.get(f"/portal/{token}/?lang=en").content.decode()
        french = client.get(f"/portal/{token}/?lang=fr").content.decode()
    # 200.00 rolled over (half of the 400 November left), to the end of February.
    assert '<strong id="commit-available">1,200.00</strong>' in english
    assert '<strong id="commit-drawn">0.00</strong>' in english
    assert "200.00 rolled over, usable until 28 Feb 2027" in english
    assert "Votre engagement : disponible" in french
    rollover = french[french.index('id="commit-rollover"') :]
    assert "200,00 reportés, utilisables jusqu&#x27;au 28 fév. 2027" in rollover[:200], rollover[
        :200
    ]


def test_the_pdf_reads_the_drawdown_and_the_overage(catalog):
    customer, _subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=800_000)
    periods_close(as_of=DEC_1)
    post_usage("acme", datetime(2026, 12, 10, tzinfo=UTC), tokens=1_300_000, gb=50)
    periods_close(as_of=JAN_1)
    pdf = render_invoice_pdf(period_invoice(customer, DEC_1))
    if os.environ.get("SCREENSHOTS_DIR"):
        (Path(os.environ["SCREENSHOTS_DIR"]) / "commit-invoice.pdf").write_bytes(pdf)
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split()
    )
    assert "Drawn from your commit" in text
    assert "-1,100.00" in text
    assert "Usage beyond your commit: 200.00 at 1.1 times its price" in text
    assert "270.00" in text

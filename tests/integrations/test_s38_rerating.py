"""S38 (../shared/SCENARIOS.md): a LiteLLM call of a model the card does not name
is billed at its default row; finance maps it; POST /rerate previews the
difference, applies it as an invoice naming October's, and finds nothing the
second time; the next close bills no late usage for it. And the other way: a
mapping taken back bills less, corrected by a credit note on October's invoice.

October's calls come through LiteLLM's endpoint, which keeps on each event what
the proxy sent (`source_model`, `requested_model`); a few tests post such events
to POST /events directly."""

import html
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Permission

from billing.invoicing.close import periods_close
from billing.models import BilledPeriod, UsageEvent
from customers.services import customer_create
from invoices.models import CreditNote, Invoice
from plans.tax_rates import tax_rate_create
from tests.factories import api_client, llm_tokens_meter, prompts_meter, subscribe
from tests.integrations.conftest import row, usage_rates
from tests.integrations.test_litellm_ingest import payload

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_10 = datetime(2026, 10, 10, 12, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
FINE_TUNE = "acme-ft-gpt-4o-2025"
OCTOBER = {
    "from": "2026-10-01T00:00:00Z",
    "to": "2026-11-01T00:00:00Z",
    "customer": "acme",
    "meter": None,
}
S38_CARD = {
    "meter": "llm_tokens",
    "model": "overage",
    "included_units": "0",
    "price_by": ["model", "token_type"],
    "rates": [row("2.50", model="gpt-4o", token_type="input"), row("1.00")],
}


def call_event(
    event_id: str,
    *,
    model: str,
    sent: str,
    requested: str | None,
    tokens: int,
    at: datetime = OCT_10,
):
    """An input-token event of a LiteLLM call as ingestion stores it: the model it
    was priced as, and the names the proxy sent."""
    properties = {
        "model": model,
        "token_type": "input",
        "tokens": tokens,
        "source": "litellm",
        "source_model": sent,
    }
    if requested is not None:
        properties["requested_model"] = requested
    return {
        "id": event_id,
        "customer": "acme",
        "event_name": "llm.tokens",
        "timestamp": at.isoformat(),
        "properties": properties,
    }


def map_models(models: dict) -> None:
    response = api_client("admin").put(
        "/api/v1/integrations/litellm", {"models": models}, format="json"
    )
    assert response.status_code == 200, response.json()


def rerate(body: dict, at: datetime = NOV_5):
    with time_machine.travel(at, tick=False):
        return api_client("admin").post("/api/v1/rerate", body, format="json")


@pytest.fixture
def october(db):
    """acme (USD, VAT 20 %) on the S38 card from 1 Oct, its October calls sent as
    `fine_tune_priced` says, October closed and issued: its invoice."""
    llm_tokens_meter()
    plan = {"code": "tokens", "name": "Tokens", "currency": "USD", "base_fee": "0"}
    response = api_client("admin").post(
        "/api/v1/plans", plan | {"publish": True, "charges": [S38_CARD]}, format="json"
    )
    assert response.status_code == 201, response.json()
    tax_rate_create(code="vat", name="VAT", percentage=D("20"), is_default=True)
    customer = customer_create(external_id="acme", name="Acme", currency="USD")
    return subscribe(customer, "tokens", start=OCT_1)


def litellm_call(call_id: str, model: str, prompt: int, **fields) -> dict:
    """A LiteLLM record of a call of `prompt` input tokens and nothing else, on 10 Oct."""
    record = payload(call_id, model=model, prompt=prompt, cached=0, completion=0)
    return record | {"startTime": OCT_10.timestamp(), "endTime": OCT_10.timestamp() + 2} | fields


def send_calls() -> dict:
    """S38's two calls through the LiteLLM endpoint; its answer."""
    calls = [
        litellm_call("c1", "openai/gpt-4o", 1_000_000, model_group="gpt-4o"),
        litellm_call("c2", FINE_TUNE, 2_000_000),
    ]
    with time_machine.travel(OCT_10, tick=False):
        answer = api_client("events:write").post(
            "/api/v1/integrations/litellm", calls, format="json"
        )
    assert answer.status_code == 202, answer.json()
    assert (answer.json()["calls"], answer.json()["rejected"]) == (2, [])
    return answer.json()


def send_and_close() -> Invoice:
    """October's calls sent (priced at the mapping of the moment), October closed
    and issued: its invoice."""
    send_calls()
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    invoice = Invoice.objects.get(reason=Invoice.PERIOD, period_start=OCT_1)
    assert invoice.status == Invoice.FINALIZED
    return invoice


def state() -> tuple:
    """What re-rating may change: the events' models, the records of what was
    billed, the documents."""
    return (
        sorted(UsageEvent.objects.values_list("event_id", "properties")),
        list(BilledPeriod.objects.values_list("billed", flat=True)),
        list(Invoice.objects.values_list("pk", "status", "total")),
        CreditNote.objects.count(),
    )


def test_s38_too_little_billed_is_invoiced_once_naming_october(october):
    # given: through LiteLLM, a call of "openai/gpt-4o" asked as "gpt-4o" (1,000,000
    # input tokens: the gpt-4o row) and one of the fine-tune (2,000,000: the default
    # row, listed as unpriced)
    answer = send_calls()
    assert answer["unpriced_models"] == [FINE_TUNE]
    fine_tune = UsageEvent.objects.get(event_id="c2:input").properties
    assert (fine_tune["model"], fine_tune["source_model"]) == (FINE_TUNE, FINE_TUNE)
    # October closes: 2.50 + 2.00 = usage 4.50, VAT 0.90
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    october_invoice = Invoice.objects.get(reason=Invoice.PERIOD, period_start=OCT_1)
    assert (october_invoice.subtotal, october_invoice.tax) == (D("4.50"), D("0.90"))
    # when: finance maps the fine-tune to gpt-4o
    map_models({FINE_TUNE: "gpt-4o"})

    # then: the dry run finds 7.50 (3,000,000 at 2.50) and changes nothing
    before = state()
    preview = rerate(OCTOBER | {"dry_run": True})
    assert preview.status_code == 200, preview.json()
    assert preview.json() == {
        "dry_run": True,
        "results": [
            {
                "customer": "acme",
                "period_start": "2026-10-01T00:00:00Z",
                "period_end": "2026-11-01T00:00:00Z",
                "invoice": october_invoice.number,
                "billed": "4.50",
                "rerated": "7.50",
                "difference": "3.00",
                "currency": "USD",
                "issued": None,
            }
        ],
        "total_difference": {"USD": "3.00"},
        "renamed_events": 1,
    }
    assert state() == before

    # when: applied
    applied = rerate(OCTOBER | {"dry_run": False})
    assert applied.status_code == 200, applied.json()

    # then: one invoice of 3.00 + VAT 0.60, naming October's, issued now
    correction = Invoice.objects.get(reason=Invoice.CORRECTION)
    assert applied.json()["results"][0]["issued"] == correction.number
    assert applied.json()["total_difference"] == {"USD": "3.00"}
    assert (correction.subtotal, correction.tax, correction.total) == (
        D("3.00"),
        D("0.60"),
        D("3.60"),
    )
    assert correction.corrects == october_invoice
    assert correction.status == Invoice.FINALIZED
    assert correction.finalized_at == NOV_5
    assert correction.number.startswith("INV-2026-")
    (line,) = correction.lines.all()
    assert (line.description, line.meter, line.amount) == (
        "Re-rated usage for Oct 2026: LLM tokens",
        "llm_tokens",
        D("3.00"),
    )
    body = api_client("read").get(f"/api/v1/invoices/{correction.pk}").json()
    assert body["reason"] == "correction"
    # the event keeps what the proxy sent; its model is the mapping's now
    event = UsageEvent.objects.get(event_id="c2:input")
    assert (event.properties["model"], event.properties["source_model"]) == ("gpt-4o", FINE_TUNE)

    # when: applied again: nothing to correct, nothing issued
    again = rerate(OCTOBER | {"dry_run": False})
    assert again.status_code == 200, again.json()
    (result,) = again.json()["results"]
    assert (result["billed"], result["rerated"], result["difference"], result["issued"]) == (
        "7.50",
        "7.50",
        "0.00",
        None,
    )
    assert again.json()["renamed_events"] == 0
    assert Invoice.objects.filter(reason=Invoice.CORRECTION).count() == 1

    # then: November's close bills no late usage of October
    with time_machine.travel(DEC_1, tick=False):
        periods_close(as_of=DEC_1)
    november = Invoice.objects.get(reason=Invoice.PERIOD, period_start=NOV_1)
    assert not november.lines.filter(kind="late_usage").exists()


def test_a_mapping_taken_back_is_credited_on_octobers_invoice(october):
    # given: the fine-tune was mapped to gpt-4o when October was billed: 7.50
    map_models({FINE_TUNE: "gpt-4o"})
    october_invoice = send_and_close()
    assert october_invoice.subtotal == D("7.50")
    # when: the mapping is taken back (the fine-tune is priced at the default row)
    map_models({})
    applied = rerate(OCTOBER | {"dry_run": False})

    # then: 3.00 billed too much, credited with its VAT on October's invoice
    assert applied.status_code == 200, applied.json()
    (result,) = applied.json()["results"]
    assert (result["billed"], result["rerated"], result["difference"]) == ("7.50", "4.50", "-3.00")
    note = CreditNote.objects.get()
    assert result["issued"] == note.number
    assert (note.invoice, note.subtotal, note.tax, note.total) == (
        october_invoice,
        D("3.00"),
        D("0.60"),
        D("3.60"),
    )
    assert note.created_at == NOV_5
    assert not Invoice.objects.filter(reason=Invoice.CORRECTION).exists()
    assert rerate(OCTOBER | {"dry_run": False}).json()["total_difference"] == {"USD": "0.00"}
    assert CreditNote.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"to": "2026-10-01T00:00:00Z"}, 400, "to"),
        ({"from": "2025-01-01T00:00:00Z"}, 400, "to"),
        ({"customer": "nobody"}, 404, None),
        ({"meter": "nothing"}, 400, "meter"),
        ({"from": "2026-10-01"}, 400, "from"),
        ({"colour": "red"}, 400, "colour"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(october, change, status, field):
    send_and_close()
    map_models({FINE_TUNE: "gpt-4o"})
    before = state()

    response = rerate(OCTOBER | {"dry_run": False} | change)

    assert response.status_code == status, response.json()
    if field is not None:
        assert field in response.json()["error"]["fields"]
    assert state() == before


def test_a_key_without_admin_may_not_rerate(october):
    with time_machine.travel(NOV_5, tick=False):
        response = api_client("read", "finance:read").post(
            "/api/v1/rerate", OCTOBER | {"dry_run": True}, format="json"
        )
    assert response.status_code == 403


INVOICES = "/admin/invoices/invoice/"


def test_the_admin_previews_the_rerating_of_octobers_invoice_then_applies_it(october, admin_client):
    october_invoice = send_and_close()
    map_models({FINE_TUNE: "gpt-4o"})
    before = state()

    # when: "Re-rate usage…" is chosen for October's invoice
    with time_machine.travel(NOV_5, tick=False):
        page = admin_client.post(
            INVOICES, {"action": "rerate_usage", "_selected_action": [october_invoice.pk]}
        )

    # then: what it finds, and nothing changed yet
    text = " ".join(html.unescape(page.content.decode()).replace("\xa0", " ").split())
    assert page.status_code == 200
    assert (
        f"{october_invoice.number} for Acme (Oct 2026) billed 4.50 USD; at today's mappings "
        f"it bills 7.50 USD: an invoice of 3.00 USD before tax, naming "
        f"{october_invoice.number}, is issued now."
    ) in text
    assert state() == before

    # when: confirmed
    with time_machine.travel(NOV_5, tick=False):
        done = admin_client.post(
            INVOICES,
            {
                "action": "rerate_usage",
                "_selected_action": [october_invoice.pk],
                "confirmed": "yes",
            },
            follow=True,
        )

    # then: the correction is issued, and said so
    correction = Invoice.objects.get(reason=Invoice.CORRECTION)
    assert (correction.corrects, correction.subtotal) == (october_invoice, D("3.00"))
    assert f"{october_invoice.number} re-rated: invoice {correction.number} issued." in (
        html.unescape(done.content.decode())
    )


def test_the_rerating_action_needs_its_own_permission(october, client, django_user_model):
    october_invoice = send_and_close()
    map_models({FINE_TUNE: "gpt-4o"})
    user = django_user_model.objects.create_user(username="viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(user)

    page = client.get(INVOICES)
    assert page.status_code == 200
    assert "rerate_usage" not in page.content.decode()

    refused = client.post(
        INVOICES,
        {"action": "rerate_usage", "_selected_action": [october_invoice.pk], "confirmed": "yes"},
    )
    assert refused.status_code in (200, 302, 403)
    assert not Invoice.objects.filter(reason=Invoice.CORRECTION).exists()


NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, tzinfo=UTC)
NOVEMBER = OCTOBER | {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}


def test_the_open_period_reads_the_new_figures_and_nothing_is_issued(october):
    # given: October closed without usage; November's calls, the period under way
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    events = [
        call_event(
            "n1:input", model="gpt-4o", sent="gpt-4o", requested=None, tokens=1_000_000, at=NOV_10
        ),
        call_event(
            "n2:input", model=FINE_TUNE, sent=FINE_TUNE, requested=None, tokens=2_000_000, at=NOV_10
        ),
    ]
    with time_machine.travel(NOV_10, tick=False):
        api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    map_models({FINE_TUNE: "gpt-4o"})
    documents = Invoice.objects.count()

    preview = rerate(NOVEMBER | {"dry_run": True}, at=NOV_20).json()
    applied = rerate(NOVEMBER | {"dry_run": False}, at=NOV_20).json()

    expected = {
        "customer": "acme",
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
        "invoice": None,
        "billed": "4.50",
        "rerated": "7.50",
        "difference": "3.00",
        "currency": "USD",
        "issued": None,
    }
    assert preview["results"] == applied["results"] == [expected]
    assert Invoice.objects.count() == documents
    assert not CreditNote.objects.exists()
    # /usage reads the new figures, and November's close bills them
    with time_machine.travel(NOV_20, tick=False):
        assert usage_rates()[0] == "7.50"
    with time_machine.travel(DEC_1, tick=False):
        periods_close(as_of=DEC_1)
    november = Invoice.objects.get(reason=Invoice.PERIOD, period_start=NOV_1)
    assert november.subtotal == D("7.50")


def test_with_a_meter_only_its_usage_is_rerated(october):
    send_and_close()
    map_models({FINE_TUNE: "gpt-4o"})
    prompts_meter()  # a meter of another event name, which the plan does not charge
    before = state()

    other = rerate(OCTOBER | {"meter": "prompts", "dry_run": False}).json()

    assert (other["results"], other["renamed_events"], other["total_difference"]) == ([], 0, {})
    assert state() == before
    tokens = rerate(OCTOBER | {"meter": "llm_tokens", "dry_run": True}).json()
    assert [(r["billed"], r["rerated"]) for r in tokens["results"]] == [("4.50", "7.50")]
    assert tokens["renamed_events"] == 1


def test_a_provider_cost_is_named_again_by_its_sources_card_as_its_tokens_are(october):
    # given: an OpenRouter call of a dated snapshot, priced as the card's gpt-4o (its
    # bare name), its tokens and its own cost stored as ingestion stores them
    names = {"model": "gpt-4o", "source_model": "openai/gpt-4o-2024-08-06"}
    events = [
        {
            "id": "g1:input",
            "customer": "acme",
            "event_name": "llm.tokens",
            "timestamp": OCT_10.isoformat(),
            "properties": names
            | {"token_type": "input", "tokens": 1_000_000, "source": "openrouter"},
        },
        {
            "id": "g1:provider_cost",
            "customer": "acme",
            "event_name": "llm.provider_cost",
            "timestamp": OCT_10.isoformat(),
            "properties": names | {"cost": "2.10", "currency": "USD", "source": "openrouter"},
        },
    ]
    with time_machine.travel(OCT_10, tick=False):
        api_client("events:write").post("/api/v1/events", {"events": events}, format="json")
    with time_machine.travel(NOV_1, tick=False):
        periods_close(as_of=NOV_1)
    api_client("admin").put("/api/v1/integrations/openrouter", {"models": {}}, format="json")
    before = state()

    # when: October is re-rated: nothing is named otherwise (no card names the
    # provider cost's event name; the source's tokens' card does)
    answer = rerate(OCTOBER | {"dry_run": False}).json()

    assert answer["renamed_events"] == 0
    assert [(r["billed"], r["difference"]) for r in answer["results"]] == [("2.50", "0.00")]
    assert state() == before

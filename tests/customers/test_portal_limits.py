"""The portal's "Limits and alerts" section (issue 78, S34): each limit with what
was spent against it, the thresholds, where alerts go and the history; the form
of a manage link, saving under its holder's name, amounts typed as the customer
types them; refusals shown on their fields in the customer's language with
nothing changed; a read-only link (a session, or a link without `manage`) and an
expired or revoked manage link refused (403, 410), nothing changed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine

from billing.models import Alert
from billing.usage.ingestion import events_ingest
from customers.models import CustomerLimitChange, PortalLink
from customers.portal import portal_session_create
from customers.portal_links import portal_link_create, portal_link_revoke
from tests.factories import (
    CustomerFactory,
    ai_assistant_plan,
    llm_tokens_meter,
    prompts_meter,
    subscribe,
)

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
NOV_11 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
NBSP = "\N{NO-BREAK SPACE}"
NNBSP = "\N{NARROW NO-BREAK SPACE}"
PUBLIC_ONLY = (
    "les alertes ne sont envoyées qu\N{RIGHT SINGLE QUOTATION MARK}à des adresses publiques"
)


@pytest.fixture
def acme(db):
    """A French customer on S1's plan (19.99 a month, 200 prompts included, 0.05
    beyond) with 300 prompts this period: 19.99 + 5.00 = 24.99 spent; a budget
    of 100.00 (stop), a cap of 10.00 on prompts, alerts at 50 and 80 %."""
    prompts_meter()
    plan = ai_assistant_plan()
    customer = CustomerFactory(
        external_id="acme", name="Acme", currency="USD", locale="fr", timezone_name="Europe/Paris"
    )
    subscribe(customer, plan, NOV_1)
    events = [
        {
            "id": f"p{i}",
            "customer": "acme",
            "event_name": "prompt",
            "timestamp": (NOV_1 + timedelta(minutes=i)).isoformat(),
        }
        for i in range(300)
    ]
    assert events_ingest(events=events, now=NOV_11).accepted == 300
    customer.limits = {
        "budget": {"amount": "100.00", "action": "stop"},
        "caps": [{"meter": "prompts", "when": {}, "amount": "10.00"}],
        "alert_thresholds": ["50", "80"],
        "channels": [{"kind": "email", "to": "ops@acme.example"}],
    }
    customer.save(update_fields=["limits"])
    return customer


def manage_link(customer, *, holder="Jane (CTO)", manage=True, days=30, now=NOV_11) -> str:
    _, token = portal_link_create(
        customer=customer,
        manage=manage,
        holder=holder,
        expires_in_days=days,
        created_by="tests",
        now=now,
    )
    return f"/portal/{token}/"


def form(**fields) -> dict:
    """A POST of the limits form: the budget and thresholds, caps and channels
    rows (lists of dicts)."""
    caps = fields.pop("caps", [])
    channels = fields.pop("channels", [])
    data = {
        "limits-budget_amount": fields.pop("budget", ""),
        "limits-budget_action": fields.pop("action", "stop"),
        "limits-thresholds": fields.pop("thresholds", ""),
        "caps-TOTAL_FORMS": str(len(caps)),
        "caps-INITIAL_FORMS": "0",
        "channels-TOTAL_FORMS": str(len(channels)),
        "channels-INITIAL_FORMS": "0",
    }
    for index, cap in enumerate(caps):
        data.update({f"caps-{index}-{k}": v for k, v in cap.items()})
    for index, channel in enumerate(channels):
        data.update({f"channels-{index}-{k}": v for k, v in channel.items()})
    assert not fields
    return data


def test_the_section_shows_each_limit_with_what_was_spent_and_what_is_left(client, acme):
    with time_machine.travel(NOV_11, tick=False):
        page = client.get(manage_link(acme)).content.decode()
    assert 'id="limits"' in page
    # the budget: 24.99 of 100.00 spent, 75.01 left; the cap on prompts: 5.00 of 10.00
    assert f'<td class="num limit">100,00{NBSP}USD</td>' in page
    assert f'<td class="num spent">24,99{NBSP}USD</td>' in page
    assert f'<td class="num remaining">75,01{NBSP}USD</td>' in page
    assert f'<td class="num spent">5,00{NBSP}USD</td>' in page
    assert f'<td class="num remaining">5,00{NBSP}USD</td>' in page
    assert f"Alertes à 50{NBSP}%, 80{NBSP}% du budget." in page
    assert "ops@acme.example" in page
    # a manage link gets the form, the budget as the customer types it
    assert 'id="limits-form"' in page
    assert 'value="100,00"' in page


def test_a_read_only_link_shows_no_form_and_its_post_is_refused(client, acme):
    before = dict(acme.limits)
    session = f"/portal/{portal_session_create(customer=acme, now=NOV_11).token}/"
    read_only = manage_link(acme, manage=False, holder="")
    for link in (session, read_only):
        with time_machine.travel(NOV_11, tick=False):
            page = client.get(link)
            refused = client.post(f"{link}limits", form(budget="50"))
        assert page.status_code == 200
        assert 'id="limit-rows"' in page.content.decode()
        assert 'id="limits-form"' not in page.content.decode()
        assert refused.status_code == 403
        assert "Rien n\N{RIGHT SINGLE QUOTATION MARK}a été modifié" in refused.content.decode()
    acme.refresh_from_db()
    assert acme.limits == before
    assert not CustomerLimitChange.objects.exists()


def test_a_manage_link_saves_the_limits_under_its_holders_name(client, acme):
    link = manage_link(acme)
    with time_machine.travel(NOV_11, tick=False):
        saved = client.post(
            f"{link}limits",
            form(
                budget="1 234,50",
                action="alert",
                thresholds="50 ; 80 ; 12,5",
                caps=[
                    {"meter": "prompts", "measure": "quantity", "limit": "1 000"},
                    {"meter": "", "measure": "amount", "limit": ""},
                ],
                channels=[
                    {"kind": "email", "target": "finance@acme.example", "name": ""},
                    {"kind": "email", "target": "", "name": ""},
                ],
            ),
        )
    assert saved.status_code == 302
    assert saved["Location"] == f"{link}?saved=1#limits"
    acme.refresh_from_db()
    assert acme.limits == {
        "budget": {"amount": "1234.50", "action": "alert"},
        "caps": [{"meter": "prompts", "when": {}, "quantity": "1000"}],
        "alert_thresholds": ["12.5", "50", "80"],
        "channels": [{"kind": "email", "to": "finance@acme.example"}],
    }
    change = CustomerLimitChange.objects.get()
    assert (change.by, change.via, change.changed_at) == ("Jane (CTO)", "portal", NOV_11)

    # the page says so, and the history tells who changed what, from what to what
    with time_machine.travel(NOV_11, tick=False):
        page = client.get(f"{link}?saved=1").content.decode()
    assert "Vos limites sont enregistrées." in page
    history = page.split('id="limit-history"')[1]
    assert "Jane (CTO)" in history
    assert "11 nov. 2026, 10:00 Europe/Paris" in history
    assert (
        f"Budget modifié de 100,00{NBSP}USD à 1{NNBSP}234,50{NBSP}USD" in history
        or f"Budget modifié de 100,00{NBSP}USD à 1{NBSP}234,50{NBSP}USD" in history
    )
    assert f"Plafond sur Prompts modifié de 10,00{NBSP}USD à 1{NBSP}000 unités" in history


def test_the_history_shows_the_budget_alerts_that_fired_newest_first(client, acme):
    Alert.objects.create(
        customer=acme,
        kind=Alert.BUDGET_THRESHOLD,
        period_start=NOV_1,
        key="budget:50",
        payload={"threshold": "50", "spend": "50.25", "budget": "100.00", "currency": "USD"},
        created_at=NOV_11 - timedelta(hours=1),
    )
    CustomerLimitChange.objects.create(
        customer=acme,
        changed_at=NOV_11 - timedelta(days=1),
        by="API key ops",
        via="api",
        before={},
        after=acme.limits,
    )
    with time_machine.travel(NOV_11, tick=False):
        page = client.get(manage_link(acme)).content.decode()
    history = page.split('id="limit-history"')[1]
    alert_at = history.index(f"Alerte de budget : 50{NBSP}% du budget atteints")
    change_at = history.index(f"Budget fixé à 100,00{NBSP}USD")
    assert alert_at < change_at
    assert f"Dépensé alors : 50,25{NBSP}USD sur 100,00{NBSP}USD" in history
    assert '<td class="who">API</td>' in history
    assert "API key ops" not in history  # the key's name is the merchant's


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"budget": "1e400"}, "Tapez le nombre en entier, sans exposant"),
        ({"budget": "-5"}, "Tapez un nombre supérieur à zéro."),
        ({"budget": "NaN"}, "NaN » n\N{RIGHT SINGLE QUOTATION MARK}en est pas un."),
        (
            {"budget": "600"},
            "la limite de dépenses fixée par votre fournisseur, 500,00\N{NO-BREAK SPACE}USD",
        ),
        (
            {"channels": [{"kind": "slack", "target": "https://127.0.0.1/hook", "name": ""}]},
            PUBLIC_ONLY,
        ),
        (
            {
                "channels": [
                    {"kind": "teams", "target": "https://169.254.169.254/latest", "name": ""}
                ]
            },
            PUBLIC_ONLY,
        ),
        (
            {"channels": [{"kind": "email", "target": "ops@acme.example", "name": "x" * 10_000}]},
            "Assurez-vous que cette valeur comporte au plus 100",
        ),
        ({"thresholds": "50 ; 50"}, "indiqué deux fois"),
        (
            {"caps": [{"meter": "prompts", "measure": "amount", "limit": "1,001"}]},
            "les montants en USD ont au plus 2 décimales",
        ),
    ],
)
def test_bad_input_is_shown_on_its_field_in_french_and_nothing_changes(
    client, acme, fields, message
):
    acme.spend_limit = D("500.00")
    acme.save(update_fields=["spend_limit"])
    before = dict(acme.limits)
    link = manage_link(acme)
    fields.setdefault("budget", "100")
    with time_machine.travel(NOV_11, tick=False):
        response = client.post(f"{link}limits", form(**fields))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'class="errorlist' in page
    acme.refresh_from_db()
    assert acme.limits == before
    assert not CustomerLimitChange.objects.exists()


def test_an_expired_or_revoked_manage_link_changes_nothing(client, acme):
    before = dict(acme.limits)
    expired = manage_link(acme, days=1, now=NOV_11 - timedelta(days=2))
    revoked = manage_link(acme)
    portal_link_revoke(link=PortalLink.objects.order_by("-id").first(), now=NOV_11)
    with time_machine.travel(NOV_11, tick=False):
        assert client.post(f"{expired}limits", form(budget="50")).status_code == 410
        refused = client.post(f"{revoked}limits", form(budget="50"))
        assert client.get(revoked).status_code == 410
    assert refused.status_code == 410
    assert "Ce lien n\N{RIGHT SINGLE QUOTATION MARK}est plus valide" in refused.content.decode()
    acme.refresh_from_db()
    assert acme.limits == before
    assert not CustomerLimitChange.objects.exists()


@pytest.mark.parametrize(
    ("locale", "typed", "heading", "shown"),
    [
        ("es", "1.234,50", "Límites y alertas", f"1.234,50{NBSP}USD"),
        ("ja", "1,234.50", "上限とアラート", f"1,234.50{NBSP}USD"),
        ("de", "1.234,50", "Limits und Alarme", f"1.234,50{NBSP}USD"),
    ],
)
def test_the_section_and_its_amounts_read_in_the_customers_language(
    client, acme, locale, typed, heading, shown
):
    acme.locale = locale
    acme.save(update_fields=["locale"])
    link = manage_link(acme)
    with time_machine.travel(NOV_11, tick=False):
        saved = client.post(f"{link}limits", form(budget=typed))
        page = client.get(link).content.decode()
    assert saved.status_code == 302
    acme.refresh_from_db()
    assert acme.limits["budget"] == {"amount": "1234.50", "action": "stop"}
    assert f"<h2>{heading}</h2>" in page
    assert f'<td class="num limit">{shown}</td>' in page


def test_a_cap_on_one_model_is_set_from_the_form(client, db):
    # given: a customer without a subscription yet (every meter may be capped)
    llm_tokens_meter()
    beta = CustomerFactory(external_id="beta", currency="USD", locale="en")
    link = manage_link(beta)
    # when: a cap of 50.00 on o3 and one of 2,000,000 tokens on the whole meter
    with time_machine.travel(NOV_11, tick=False):
        saved = client.post(
            f"{link}limits",
            form(
                budget="300",
                caps=[
                    {
                        "meter": "llm_tokens",
                        "property": "model",
                        "value": "o3",
                        "measure": "amount",
                        "limit": "50",
                    },
                    {
                        "meter": "llm_tokens",
                        "property": "",
                        "value": "",
                        "measure": "quantity",
                        "limit": "2,000,000",
                    },
                ],
            ),
        )
        page = client.get(link).content.decode()
    # then
    assert saved.status_code == 302
    beta.refresh_from_db()
    assert beta.limits["caps"] == [
        {"meter": "llm_tokens", "when": {"model": "o3"}, "amount": "50.00"},
        {"meter": "llm_tokens", "when": {}, "quantity": "2000000"},
    ]
    # nothing spent without a subscription: all of each limit is left
    assert '<td class="name">Cap on LLM tokens, model o3</td>' in page
    assert '<td class="num remaining">50.00\N{NO-BREAK SPACE}USD</td>' in page
    assert '<td class="num remaining">2,000,000</td>' in page
    assert "Cap added on LLM tokens, model o3: 50.00\N{NO-BREAK SPACE}USD" in page

    # when: a cap for one model names no model
    with time_machine.travel(NOV_11, tick=False):
        refused = client.post(
            f"{link}limits",
            form(
                caps=[
                    {
                        "meter": "llm_tokens",
                        "property": "model",
                        "value": "",
                        "measure": "amount",
                        "limit": "5",
                    }
                ]
            ),
        )
    assert refused.status_code == 400
    assert "Type the value the cap is for." in refused.content.decode()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {**form(budget="50"), "caps-TOTAL_FORMS": "100000"},
        {**form(budget="50"), "caps-TOTAL_FORMS": "x"},
        {**form(budget="50"), "limits-budget_action": "explode"},
    ],
)
def test_a_tampered_post_is_refused_without_a_500_and_changes_nothing(client, acme, data):
    before = dict(acme.limits)
    with time_machine.travel(NOV_11, tick=False):
        response = client.post(f"{manage_link(acme)}limits", data)
    assert response.status_code == 400
    acme.refresh_from_db()
    assert acme.limits == before
    assert not CustomerLimitChange.objects.exists()

"""Subscriptions and invoices in the admin: pages load; create, cancel, finalize,
void and mark paid go through the services."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.invoicing.close import periods_close
from billing.models import Subscription, SubscriptionChange
from invoices.models import CreditNote, Invoice
from plans.models import Plan
from plans.services import plan_create
from plans.validation import VersionSpec

pytestmark = pytest.mark.django_db
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)


def add_subscription(admin_client, customer, plan, start: str = "2026-11-01 00:00:00"):
    """The subscription add form, as ops fills it in: the plan's latest published
    version, the start's date and time in their two inputs."""
    day, time = start.split(" ")
    return admin_client.post(
        "/admin/billing/subscription/add/",
        {
            "customer": customer.pk,
            "version": plan.versions.filter(status="published").latest("number").pk,
            "start_0": day,
            "start_1": time,
            "seats": "1",
            "billing_anchor": "anniversary",
        },
    )


@pytest.fixture
def flat(db):
    plan_create(
        code="flat",
        name="Flat",
        version=VersionSpec(currency="USD", base_fee=D("9.00")),
        publish=True,
    )
    return Plan.objects.get(code="flat")


def test_pages_load(admin_client, acme, flat):
    add_subscription(admin_client, acme, flat)
    subscription = Subscription.objects.get()
    invoice = Invoice.objects.get()
    for url in [
        "/admin/billing/subscription/",
        "/admin/billing/subscription/add/",
        f"/admin/billing/subscription/{subscription.pk}/change/",
        "/admin/invoices/invoice/",
        "/admin/invoices/invoice/?status__exact=draft",
        f"/admin/invoices/invoice/{invoice.pk}/change/",
    ]:
        assert admin_client.get(url).status_code == 200, url


def test_create_a_subscription_writes_its_start_invoice(admin_client, acme, flat):
    response = add_subscription(admin_client, acme, flat)

    assert response.status_code == 302
    subscription = Subscription.objects.get()
    assert subscription.current_period_end == datetime(2026, 12, 1, tzinfo=UTC)
    assert SubscriptionChange.objects.get().kind == "created"
    assert Invoice.objects.get().total == D("9.00")


def test_a_refused_subscription_shows_the_reason_and_creates_nothing(admin_client, acme, flat):
    add_subscription(admin_client, acme, flat)

    response = add_subscription(admin_client, acme, flat, start="2026-11-05 00:00:00")

    assert (
        "Acme Inc already has a live subscription (one at a time): change its plan instead"
        in response.content.decode()
    )
    assert Subscription.objects.count() == 1
    assert Invoice.objects.count() == 1


def test_invoice_actions_finalize_void_and_pay(admin_client, acme, flat):
    add_subscription(admin_client, acme, flat)
    first = Invoice.objects.get()

    admin_client.post(
        "/admin/invoices/invoice/", {"action": "finalize", "_selected_action": [first.pk]}
    )
    first.refresh_from_db()
    assert (first.status, first.number is not None) == ("finalized", True)

    admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "void", "_selected_action": [first.pk], "confirmed": "yes"},
    )
    first.refresh_from_db()
    assert first.status == "void"
    assert CreditNote.objects.get().total == D("9.00")

    periods_close(as_of=datetime(2026, 12, 1, tzinfo=UTC))
    second = Invoice.objects.get(reason="period")
    admin_client.post(
        "/admin/invoices/invoice/", {"action": "mark_paid", "_selected_action": [second.pk]}
    )
    second.refresh_from_db()
    assert second.status == "paid"
    # a finalized invoice cannot be changed or deleted in the admin
    assert (
        admin_client.post(
            f"/admin/invoices/invoice/{second.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )


def test_cancel_at_period_end_action(admin_client, acme, flat):
    add_subscription(admin_client, acme, flat)
    subscription = Subscription.objects.get()

    admin_client.post(
        "/admin/billing/subscription/",
        {"action": "cancel_at_period_end", "_selected_action": [subscription.pk]},
    )
    periods_close(as_of=datetime(2026, 12, 1, tzinfo=UTC))

    subscription.refresh_from_db()
    assert subscription.status == "ended"
    assert not Invoice.objects.get(reason="period").lines.exists()


def history_inline(subscription) -> dict:
    """The management form of the read-only history inline, as the page posts it."""
    rows = list(subscription.changes.values_list("pk", flat=True))
    data = {
        "changes-TOTAL_FORMS": str(len(rows)),
        "changes-INITIAL_FORMS": str(len(rows)),
        "changes-MIN_NUM_FORMS": "0",
        "changes-MAX_NUM_FORMS": "1000",
    }
    for index, pk in enumerate(rows):
        data[f"changes-{index}-id"] = str(pk)
        data[f"changes-{index}-subscription"] = str(subscription.pk)
    return data


def test_change_plan_and_seats_from_the_subscription_page(admin_client, acme, flat):
    # given: flat (9.00) from November 1st, and a published "big" plan at 39.00
    plan_create(
        code="big",
        name="Big",
        version=VersionSpec(currency="USD", base_fee=D("39.00")),
        publish=True,
    )
    big = Plan.objects.get(code="big").versions.get()
    add_subscription(admin_client, acme, flat)
    subscription = Subscription.objects.get()
    url = f"/admin/billing/subscription/{subscription.pk}/change/"

    # when: moved to big now, on the 16th
    response = admin_client.post(
        url,
        {
            "new_version": big.pk,
            "effective": "immediate",
            "new_seats": "",
            "at_0": "2026-11-16",
            "at_1": "00:00:00",
            **history_inline(subscription),
        },
    )

    # then: prorated by the second, like the API: big charged for the rest of the
    # period, the unused half of flat a credit note against the start invoice
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription.refresh_from_db()
    assert subscription.version == big
    change = Invoice.objects.get(reason="plan_change")
    assert [(line.kind, line.amount) for line in change.lines.all()] == [
        ("proration_charge", D("19.50")),
    ]
    note = CreditNote.objects.get(invoice__subscription=subscription)
    assert (note.invoice.reason, note.total) == ("start", D("4.50"))
    assert SubscriptionChange.objects.filter(kind="plan_change").count() == 1


def test_a_refused_change_shows_the_reason_and_changes_nothing(admin_client, acme, flat):
    add_subscription(admin_client, acme, flat)
    subscription = Subscription.objects.get()

    response = admin_client.post(
        f"/admin/billing/subscription/{subscription.pk}/change/",
        {
            "new_version": subscription.version.pk,
            "effective": "immediate",
            "new_seats": "",
            "at_0": "2026-11-16",
            "at_1": "00:00:00",
            **history_inline(subscription),
        },
    )

    assert "already" in response.content.decode()
    assert not Invoice.objects.filter(reason="plan_change").exists()
    assert SubscriptionChange.objects.count() == 1


def test_an_uncollectible_invoice_can_still_be_voided(admin_client, acme, flat):
    add_subscription(admin_client, acme, flat)
    invoice = Invoice.objects.get()
    admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "mark_uncollectible", "_selected_action": [invoice.pk]},
    )
    invoice.refresh_from_db()
    assert invoice.status == "draft"  # a draft is not given up on: refused, unchanged

    admin_client.post(
        "/admin/invoices/invoice/", {"action": "finalize", "_selected_action": [invoice.pk]}
    )
    admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "mark_uncollectible", "_selected_action": [invoice.pk], "confirmed": "yes"},
    )
    invoice.refresh_from_db()
    assert invoice.status == "uncollectible"

    admin_client.post(
        "/admin/invoices/invoice/",
        {"action": "void", "_selected_action": [invoice.pk], "confirmed": "yes"},
    )
    invoice.refresh_from_db()
    assert invoice.status == "void"
    assert CreditNote.objects.get(invoice=invoice).total == D("9.00")


def counting(monkeypatch, module, name: str) -> list:
    """Count the calls of module.name, still calling it."""
    calls = []
    real = getattr(module, name)

    def counted(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_each_admin_save_runs_the_writing_service_once(admin_client, acme, flat, monkeypatch):
    """The forms validate with the check-only functions; the writing service runs
    once, when the page saves (it used to run in clean() too, rolled back)."""
    from billing.subscriptions import lifecycle

    plan_create(
        code="big",
        name="Big",
        version=VersionSpec(currency="USD", base_fee=D("39.00")),
        publish=True,
    )
    big = Plan.objects.get(code="big").versions.get()
    creates = counting(monkeypatch, lifecycle, "subscription_create")
    changes = counting(monkeypatch, lifecycle, "subscription_change_plan")
    seats = counting(monkeypatch, lifecycle, "subscription_set_seats")

    # when: created, then moved to big with 3 seats
    assert add_subscription(admin_client, acme, flat).status_code == 302
    subscription = Subscription.objects.get()
    response = admin_client.post(
        f"/admin/billing/subscription/{subscription.pk}/change/",
        {
            "new_version": big.pk,
            "effective": "immediate",
            "new_seats": "3",
            "at_0": "2026-11-16",
            "at_1": "00:00:00",
            **history_inline(subscription),
        },
    )

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    assert (len(creates), len(changes), len(seats)) == (1, 1, 1)
    subscription.refresh_from_db()
    assert (subscription.version, subscription.seats) == (big, 3)

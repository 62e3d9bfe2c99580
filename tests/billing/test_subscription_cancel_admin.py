"""Cancelling one subscription from its admin page (issue 52): the Cancel…
page, the confirmation stating what happens (the cancel invoice's lines and
what becomes of a prepaid commit's access left), then subscription_cancel."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils.html import escape

from billing.models import Subscription
from invoices.models import CreditNote, Invoice
from plans.services import plan_create
from plans.validation import VersionSpec
from tests.factories import subscribe
from tests.wallets.test_commits import (
    S27_PREPAID,
    catalog,  # noqa: F401 (the fixture)
    customer_on_plan,
    lines_of,
    movements,
    post_usage,
    sign,
)
from wallets.commit_models import Commit

pytestmark = pytest.mark.django_db

NOV_16 = datetime(2026, 11, 16, tzinfo=UTC)


def cancel_url(subscription) -> str:
    return f"/admin/billing/subscription/{subscription.pk}/cancel/"


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def acme_with_commit(catalog):  # noqa: F811
    customer, subscription = customer_on_plan("acme")
    assert sign("acme", S27_PREPAID).status_code == 201
    post_usage("acme", datetime(2026, 11, 10, tzinfo=UTC), tokens=300_000)
    return customer, subscription


def confirm_now(client, subscription, leftover: str, capture) -> tuple[str, object]:
    """The form posted, its confirmation page read, then confirmed."""
    with time_machine.travel(NOV_16, tick=False):
        page = client.get(f"/admin/billing/subscription/{subscription.pk}/change/")
        assert cancel_url(subscription) in text(page)
        form = client.get(cancel_url(subscription))
        assert "12,000.00 USD of access" not in text(form)
        assert "11,700.00 USD of access" in text(form)  # left once the usage so far is drawn
        confirmation = client.post(
            cancel_url(subscription), {"effective": "immediate", "commit_leftover": leftover}
        )
        assert confirmation.status_code == 200
        assert Subscription.objects.get(pk=subscription.pk).status == Subscription.ACTIVE
        with capture(execute=True):
            done = client.post(
                cancel_url(subscription),
                {
                    "effective": "immediate",
                    "commit_leftover": leftover,
                    "at": NOV_16.isoformat(),
                    "confirmed": "yes",
                },
            )
    return text(confirmation), done


def test_cancel_now_credits_the_commits_access_left(
    admin_client, acme_with_commit, django_capture_on_commit_callbacks
):
    customer, subscription = acme_with_commit
    said, done = confirm_now(
        admin_client, subscription, "credit", django_capture_on_commit_callbacks
    )
    commit = Commit.objects.get(customer=customer)
    credited = "the 11,700.00 USD of access left is credited by a credit note on its invoice"
    assert credited in said
    assert f"invoice {commit.invoice.number}" in said
    assert "-300.00" in said  # the cancel invoice's drawdown line
    assert done.status_code == 302
    assert Subscription.objects.get(pk=subscription.pk).status == Subscription.CANCELED
    cancel = Invoice.objects.get(customer=customer, reason=Invoice.CANCEL)
    assert ("commit_drawdown", "-300.00") in lines_of(cancel)
    commit.refresh_from_db()
    assert commit.status == Commit.CANCELED
    (note,) = commit.invoice.credit_notes.all()
    assert note.subtotal == D("11700.00")


def test_cancel_now_expires_the_commits_access_left(
    admin_client, acme_with_commit, django_capture_on_commit_callbacks
):
    customer, subscription = acme_with_commit
    said, _done = confirm_now(
        admin_client, subscription, "expire", django_capture_on_commit_callbacks
    )
    assert "the 11,700.00 USD of access left expires (breakage), nothing is credited" in said
    commit = Commit.objects.get(customer=customer)
    assert commit.status == Commit.CANCELED
    expired = movements(commit, "expiry")
    assert -sum(e.amount for e in expired) == D("11700.00")
    assert not commit.invoice.credit_notes.exists()


def test_cancel_at_period_end_from_the_page(admin_client, acme_with_commit):
    _customer, subscription = acme_with_commit
    with time_machine.travel(NOV_16, tick=False):
        confirmation = admin_client.post(cancel_url(subscription), {"effective": "period_end"})
        assert "ends with its current period, on 1 Dec 2026" in text(confirmation)
        assert "The commit ends with it: its access left then expires" in text(confirmation)
        assert not Subscription.objects.get(pk=subscription.pk).cancel_at_period_end
        done = admin_client.post(
            cancel_url(subscription), {"effective": "period_end", "confirmed": "yes"}
        )
    assert done.status_code == 302
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end
    assert subscription.status == Subscription.ACTIVE
    assert not Invoice.objects.filter(reason=Invoice.CANCEL).exists()


def test_a_refusal_is_shown_and_nothing_is_written(admin_client, acme_with_commit):
    customer, subscription = acme_with_commit
    Subscription.objects.filter(pk=subscription.pk).update(cancel_at_period_end=True)
    with time_machine.travel(NOV_16, tick=False):
        done = admin_client.post(
            cancel_url(subscription),
            {
                "effective": "immediate",
                "commit_leftover": "credit",
                "at": NOV_16.isoformat(),
                "confirmed": "yes",
            },
            follow=True,
        )
    assert (
        f"Nothing was changed: subscription {subscription.pk} ends with its period already"
        in text(done)
    )
    assert not Invoice.objects.filter(customer=customer, reason=Invoice.CANCEL).exists()
    assert Commit.objects.get(customer=customer).status == Commit.ACTIVE


def test_without_the_cancel_permission_the_page_is_refused(acme_with_commit):
    _customer, subscription = acme_with_commit
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    client = Client()
    client.force_login(viewer)
    assert cancel_url(subscription) not in text(
        client.get(f"/admin/billing/subscription/{subscription.pk}/change/")
    )
    assert client.get(cancel_url(subscription)).status_code == 403
    posted = client.post(
        cancel_url(subscription),
        {"effective": "immediate", "commit_leftover": "credit", "confirmed": "yes"},
    )
    assert posted.status_code == 403
    assert Subscription.objects.get(pk=subscription.pk).status == Subscription.ACTIVE


def test_the_confirmation_states_the_lines_the_cancel_invoice_then_has(admin_client, acme):
    # given: flat (9.00 a month) from November 1st, no commit
    plan_create(
        code="flat",
        name="Flat",
        version=VersionSpec(currency="USD", base_fee=D("9.00")),
        publish=True,
    )
    subscription = subscribe(acme, "flat")
    with time_machine.travel(NOV_16, tick=False):
        form = admin_client.get(cancel_url(subscription))
        assert 'name="commit_leftover"' not in text(form)  # no commit, no choice
        # when: cancelled now on Nov 16, half the month left
        said = text(admin_client.post(cancel_url(subscription), {"effective": "immediate"}))
        admin_client.post(
            cancel_url(subscription),
            {"effective": "immediate", "at": NOV_16.isoformat(), "confirmed": "yes"},
        )
    # then: no usage to bill, so no cancel invoice, as the confirmation stated; the
    # unused 15 of 30 days are the credit note's one line against the start
    # invoice it named, which charged them (billing.invoicing.unused_time)
    assert "No cancel invoice: no usage so far to bill." in said
    assert not Invoice.objects.filter(customer=acme, reason=Invoice.CANCEL).exists()
    start = Invoice.objects.get(customer=acme, reason=Invoice.START)
    note = CreditNote.objects.get(invoice=start)
    (line,) = note.lines.all()
    assert (line.invoice_line.kind, line.amount) == ("base_fee", D("4.50"))
    stated = (
        f"The unused time is a credit note against draft #{start.pk}, which charged it "
        "(before tax; tax is credited in proportion):"
    )
    assert escape(stated) in said
    assert escape(f"{line.description}: -4.50 USD") in said

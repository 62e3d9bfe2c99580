"""What ops type and read for a customer in the admin is in that customer's time
zone (issue 76): a Tokyo customer's start typed "2026-11-01 00:00" is midnight
in Tokyo, labelled "Start (Asia/Tokyo)"; the subscription list and page show
the period as the customer's invoices do, inclusive days in their zone
("1 Nov - 30 Nov 2026", with an en dash), not the exclusive instant in UTC; a credit note's
page shows its invoice's period the same way; a wallet grant's expiry is typed
in the customer's zone."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.models import Subscription
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_void, invoice_write_draft
from plans.models import PlanVersion
from plans.rating import LineInput
from tests.factories import CustomerFactory, published_version, subscribe
from wallets.models import CreditBlock, Wallet

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/billing/subscription/add/"
LIST_URL = "/admin/billing/subscription/"
TOKYO_NOV_1 = datetime(2026, 10, 31, 15, tzinfo=UTC)
TOKYO_DEC_1 = datetime(2026, 11, 30, 15, tzinfo=UTC)


@pytest.fixture
def pro(db) -> PlanVersion:
    version = published_version("pro", base_fee=D("49.00"))
    version.plan.name = "Pro"
    version.plan.save(update_fields=["name"])
    return version


@pytest.fixture
def tokyo(db):
    return CustomerFactory(external_id="kaisha", name="Kaisha KK", timezone_name="Asia/Tokyo")


def add_form(customer, version, day="2026-11-01", time="00:00:00", **changes) -> dict:
    return {
        "customer": customer.pk,
        "version": version.pk,
        "start_0": day,
        "start_1": time,
        "seats": "1",
        "billing_anchor": "calendar",
        **changes,
    }


def test_a_tokyo_start_is_typed_in_tokyo_and_bills_a_whole_month(admin_client, tokyo, pro):
    # when: ops type 1 Nov 2026, 00:00 for a customer in Tokyo
    response = admin_client.post(ADD_URL, add_form(tokyo, pro), follow=True)

    # then: it starts at midnight in Tokyo, a whole calendar month there
    subscription = Subscription.objects.get()
    assert subscription.started_at == TOKYO_NOV_1
    assert (subscription.current_period_start, subscription.current_period_end) == (
        TOKYO_NOV_1,
        TOKYO_DEC_1,
    )
    # and its start invoice bills the whole month's fee, nothing prorated
    invoice = Invoice.objects.get(subscription=subscription)
    assert [(line.amount, line.share) for line in invoice.lines.all()] == [(D("49.00"), None)]
    assert invoice.total == D("49.00")
    # and its page reads the start and the period in Tokyo
    html = response.content.decode()
    assert "1 Nov 2026, 00:00 (Asia/Tokyo)" in html
    assert "1 Nov – 30 Nov 2026 (Asia/Tokyo)" in html  # noqa: RUF001 (an en dash)
    assert "(UTC)" not in html


def test_the_start_field_names_the_customer_zone(admin_client, tokyo, pro):
    # A customer picked in the address: their zone.
    form = admin_client.get(f"{ADD_URL}?customer={tokyo.pk}").context["adminform"].form
    assert form.fields["start"].label == "Start (Asia/Tokyo)"

    # None yet: the help says whose zone it will be.
    form = admin_client.get(ADD_URL).context["adminform"].form
    assert form.fields["start"].label == "Start (the customer's time zone)"
    assert form.fields["start"].help_text.startswith(
        "In the customer's time zone (that of the customer chosen above)."
    )

    # A refused form is drawn again in the zone of the customer it was posted with.
    response = admin_client.post(ADD_URL, add_form(tokyo, pro, seats="0"))
    form = response.context["adminform"].form
    assert form.fields["start"].label == "Start (Asia/Tokyo)"
    assert 'value="2026-11-01"' in response.content.decode()
    assert not Subscription.objects.exists()


def test_a_time_the_zone_skips_is_refused(admin_client, pro):
    paris = CustomerFactory(external_id="paris", name="Paris SA", timezone_name="Europe/Paris")

    # 29 Mar 2026, 02:30 does not exist in Paris (the clocks go to 03:00).
    response = admin_client.post(ADD_URL, add_form(paris, pro, day="2026-03-29", time="02:30"))

    assert "start" in response.context["adminform"].form.errors
    assert not Subscription.objects.exists()


def test_a_paris_start_gives_whole_days(admin_client, pro):
    paris = CustomerFactory(external_id="paris", name="Paris SA", timezone_name="Europe/Paris")

    admin_client.post(ADD_URL, add_form(paris, pro, billing_anchor="anniversary"))

    subscription = Subscription.objects.get()
    assert subscription.started_at == datetime(2026, 10, 31, 23, tzinfo=UTC)
    # 1 Nov to 1 Dec in Paris: 30 whole days, not 29 days and 23 hours.
    length = subscription.current_period_end - subscription.current_period_start
    assert length.days == 30 and length.seconds == 0


def test_the_list_shows_the_period_as_inclusive_days_in_the_customer_zone(admin_client, tokyo, pro):
    subscribe(tokyo, pro.plan, TOKYO_NOV_1, billing_anchor="calendar")

    html = admin_client.get(LIST_URL).content.decode()

    assert '<td class="field-period_list">1 Nov – 30 Nov 2026<br><span class="zone">Asia/Tokyo' in (  # noqa: RUF001
        html
    )
    assert "15:00" not in html


def test_an_immediate_change_is_typed_in_the_customer_zone(admin_client, tokyo, pro):
    subscription = subscribe(tokyo, pro.plan, TOKYO_NOV_1, billing_anchor="calendar")

    response = admin_client.get(f"{LIST_URL}{subscription.pk}/change/")

    form = response.context["adminform"].form
    assert form.fields["at"].label == "Immediate change at (Asia/Tokyo)"
    html = response.content.decode()
    assert "Current period" in html
    assert "1 Nov – 30 Nov 2026 (Asia/Tokyo)" in html  # noqa: RUF001


def test_a_credit_note_page_shows_its_invoice_period_in_the_invoice_zone(admin_client, tokyo):
    # given: a Tokyo customer's November invoice, voided by a credit note
    draft = invoice_write_draft(
        customer=tokyo,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=TOKYO_NOV_1,
        period_end=TOKYO_DEC_1,
        lines=[LineInput("base_fee", "Pro", None, D(1), D("20.00"), D("20.00"))],
        now=TOKYO_DEC_1,
    )
    invoice = invoice_finalize(invoice=draft, now=TOKYO_DEC_1, collect=False)
    note = invoice_void(invoice=invoice, reason="billed twice", now=TOKYO_DEC_1)

    html = admin_client.get(f"/admin/invoices/creditnote/{note.pk}/change/").content.decode()

    assert "Invoice&#x27;s period" in html
    assert "1 Nov – 30 Nov 2026 (Asia/Tokyo)" in html  # noqa: RUF001


def test_a_grant_expiry_is_typed_in_the_customer_zone(admin_client, tokyo):
    wallet = Wallet.objects.create(customer=tokyo, kind="credits")
    url = f"/admin/wallets/wallet/{wallet.pk}/operation/"

    form = admin_client.get(url).context["form"]
    assert form.fields["expires_at"].label == "Expires at (Asia/Tokyo)"
    response = admin_client.post(
        url,
        {
            "operation": "grant",
            "credits": "25",
            "priority": 10,
            "expires_at_0": "2026-12-01",
            "expires_at_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    # Midnight in Tokyo: the customer's 1 Dec.
    assert CreditBlock.objects.get(wallet=wallet).expires_at == TOKYO_DEC_1


def test_the_cancel_form_reads_the_period_end_in_the_customer_zone(admin_client, tokyo, pro):
    subscription = subscribe(tokyo, pro.plan, TOKYO_NOV_1, billing_anchor="calendar")

    response = admin_client.get(f"{LIST_URL}{subscription.pk}/cancel/")

    html = response.content.decode()
    assert "At the end of the current period (1 Dec 2026, 00:00 (Asia/Tokyo))" in html
    assert "(UTC)" not in html

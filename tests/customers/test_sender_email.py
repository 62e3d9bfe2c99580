"""The From address of the emails to customers (customers.billing_entities.
seller_from_email): the billing entity's sender, else the installation's address for
that kind of email, else the entity's contact email; "billing@localhost" only when
none is set anywhere."""

from datetime import UTC, datetime

import pytest
import time_machine

from billing.notifications.alerts import alert_raise
from customers.billing_entities import default_billing_entity
from customers.models import BillingEntity
from tests.factories import CustomerFactory
from tests.invoices.test_emails import customer, draft, finalize

NOV_10 = datetime(2026, 11, 10, 12, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _emails(settings):
    settings.BILLING_INVOICE_EMAILS = True
    settings.BILLING_INVOICE_FROM_EMAIL = ""
    settings.BILLING_ALERT_FROM_EMAIL = ""
    settings.DEFAULT_FROM_EMAIL = "billing@localhost"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def seller(**fields) -> BillingEntity:
    entity = default_billing_entity()
    BillingEntity.objects.filter(pk=entity.pk).update(**fields)
    return entity


def alert_sender(mailoutbox, capture) -> str:
    acme = CustomerFactory(external_id="acme", email="billing@acme.test")
    with time_machine.travel(NOV_10, tick=False), capture(execute=True):
        alert_raise(
            customer=acme,
            kind="low_balance",
            period_start=datetime(2026, 11, 1, tzinfo=UTC),
            key="credits",
            payload={"balance": "5", "threshold": "10"},
            now=NOV_10,
        )
    (message,) = mailoutbox
    return message.from_email


def invoice_sender(mailoutbox, capture) -> str:
    finalize(draft(customer()), capture)
    (message,) = mailoutbox
    return message.from_email


def test_the_seller_contact_email_sends_when_nothing_else_is_set(
    mailoutbox, django_capture_on_commit_callbacks
):
    seller(email="accounts@seller.test", sender_email="")

    assert invoice_sender(mailoutbox, django_capture_on_commit_callbacks) == (
        "accounts@seller.test"
    )


def test_the_alert_comes_from_the_seller_contact_email(
    mailoutbox, django_capture_on_commit_callbacks
):
    seller(email="accounts@seller.test", sender_email="")

    assert alert_sender(mailoutbox, django_capture_on_commit_callbacks) == "accounts@seller.test"


def test_the_entity_sender_comes_before_the_installation_address(
    settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.BILLING_ALERT_FROM_EMAIL = "alerts@installation.test"
    seller(email="accounts@seller.test", sender_email="noreply@seller.test")

    assert alert_sender(mailoutbox, django_capture_on_commit_callbacks) == "noreply@seller.test"


def test_the_installation_address_comes_before_the_contact_email(
    settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.BILLING_ALERT_FROM_EMAIL = "alerts@installation.test"
    seller(email="accounts@seller.test", sender_email="")

    assert (
        alert_sender(mailoutbox, django_capture_on_commit_callbacks) == "alerts@installation.test"
    )


def test_an_entity_with_no_email_sends_from_the_default(
    mailoutbox, django_capture_on_commit_callbacks
):
    seller(email="", sender_email="")

    assert invoice_sender(mailoutbox, django_capture_on_commit_callbacks) == "billing@localhost"

"""Issue 49: an alert's email is written to the customer in their language (the
customer's locale, as the portal and a new invoice's email), its figures and
period through their writer; the seller's team's copy stays in the
installation's language."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from billing.models import Alert, AlertTeamRecipient
from billing.notifications.alerts import (
    alert_email_send,
    alert_payload,
    alert_raise,
    spend_limit_payload,
)
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
NB = "\N{NO-BREAK SPACE}"


def customer(locale: str) -> Customer:
    return CustomerFactory(
        external_id=f"acme_{locale}",
        name="Acme",
        email="billing@acme.test",
        locale=locale,
        timezone_name="UTC",
        currency="EUR",
        spend_limit=D("1000.00"),
        spend_limit_mode=Customer.SPEND_LIMIT_HARD,
    )


def spend_limit_alert(acme: Customer) -> Alert:
    """Acme spent 1,234.50 EUR in November, past its 1,000.00 EUR hard limit."""
    payload = spend_limit_payload(
        customer=acme, spend=D("1234.50"), period_start=NOV_1, period_end=DEC_1
    )
    alert = alert_raise(
        customer=acme,
        kind=Alert.SPEND_LIMIT,
        period_start=NOV_1,
        key="spend_limit",
        payload=payload,
        now=NOW,
        announce=False,
    )
    return alert


@pytest.mark.parametrize(
    ("locale", "subject", "body"),
    [
        (
            "fr",
            "Votre plafond de dépenses est atteint",
            f"Bonjour,\n\nAcme a dépensé 1{NB}234,50{NB}EUR sur la période 1 nov. \u2013 30 nov. "
            f"2026 (UTC) et atteint son plafond de dépenses de 1{NB}000,00{NB}EUR.\n\n"
            "Toute consommation supplémentaire est refusée jusqu\N{RIGHT SINGLE QUOTATION MARK}à "
            "la prochaine période.\n",
        ),
        (
            "de",
            "Ihr Ausgabenlimit ist erreicht",
            "Guten Tag,\n\nAcme hat im Zeitraum 1. Nov. \u2013 30. Nov. 2026 (UTC) "
            f"1.234,50{NB}EUR ausgegeben und damit sein Ausgabenlimit von 1.000,00{NB}EUR "
            "erreicht.\n\n"
            "Weiterer Verbrauch wird bis zum nächsten Zeitraum abgelehnt.\n",
        ),
        (
            "en",
            "Your spend limit is reached",
            f"Hello,\n\nAcme has spent 1,234.50{NB}EUR in the period 1 Nov \u2013 30 Nov 2026 "
            f"(UTC), reaching its spend limit of 1,000.00{NB}EUR.\n\n"
            "Further usage is refused until the next period.\n",
        ),
    ],
)
def test_a_spend_limit_email_is_in_the_customers_language(mailoutbox, locale, subject, body):
    # when: the alert of a customer who reads `locale` is emailed
    assert alert_email_send(alert=spend_limit_alert(customer(locale)), now=NOW) is True

    # then: to them, in their words, the amounts in their convention
    (message,) = mailoutbox
    assert message.to == ["billing@acme.test"]
    assert (message.subject, message.body) == (subject, body)


@pytest.mark.parametrize(
    ("locale", "subject", "figures"),
    [
        (
            "fr",
            f"Vous avez utilisé 92{NB}% de vos Prompts inclus",
            f"1{NB}840 des 2{NB}000 Prompts inclus",
        ),
        (
            "de",
            f"Sie haben 92{NB}% Ihrer enthaltenen Prompts verbraucht",
            "1.840 der 2.000 enthaltenen",
        ),
    ],
)
def test_a_usage_threshold_email_is_in_the_customers_language(mailoutbox, locale, subject, figures):
    acme = customer(locale)
    payload = alert_payload(
        customer=acme,
        period_start=NOV_1,
        period_end=DEC_1,
        meter="prompts",
        meter_name="Prompts",
        threshold="90",
        percentage="92",
        quantity="1840",
        included="2000",
        model="overage",
    )
    alert = alert_raise(
        customer=acme,
        kind=Alert.USAGE_THRESHOLD,
        period_start=NOV_1,
        key="prompts:90",
        payload=payload,
        now=NOW,
        announce=False,
    )

    alert_email_send(alert=alert, now=NOW)

    (message,) = mailoutbox
    assert message.subject == subject
    assert figures in message.body


def test_the_teams_copy_is_in_the_installations_language(mailoutbox):
    # given: a French customer, and the seller's team taking spend limit alerts
    AlertTeamRecipient.objects.create(email="ops@seller.test", kinds=[Alert.SPEND_LIMIT])

    # when
    alert_email_send(alert=spend_limit_alert(customer("fr")), now=NOW)

    # then: the customer's in French, the team's in English
    to_customer, to_team = mailoutbox
    assert to_customer.subject == "Votre plafond de dépenses est atteint"
    assert to_team.to == ["ops@seller.test"]
    assert to_team.subject == "[Acme] Your spend limit is reached"
    assert f"Acme has spent 1,234.50{NB}EUR in the period" in to_team.body

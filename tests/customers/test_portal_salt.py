"""Safety net for the portal link's signature: the token is signed with the
portal's own salt (customers.portal.SALT), so that nothing else Django signs with
the same SECRET_KEY opens a portal, whatever it carries. A value signed with
Django's default salt is the likeliest to exist elsewhere (signing.dumps with no
salt, a TimestampSigner made without one); each is refused with 403, as a
forgery, and reveals nothing."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing

from customers.portal import (
    SALT,
    PortalTokenInvalid,
    portal_customer_id,
    portal_session_create,
)
from customers.services import customer_create

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 11, tzinfo=UTC)


@pytest.fixture
def acme(db):
    return customer_create(external_id="acme", name="Acme Inc", currency="USD")


def payload(customer) -> dict:
    """What a portal token carries: the customer's id and an expiry a day ahead."""
    return {"c": customer.pk, "exp": int((NOW + timedelta(days=1)).timestamp())}


def signed_elsewhere(customer) -> dict[str, str]:
    """The portal payload, signed with this SECRET_KEY for other purposes."""
    value = payload(customer)
    return {
        "signing.dumps, default salt": signing.dumps(value),
        "signing.dumps, default salt, compressed": signing.dumps(value, compress=True),
        "TimestampSigner, no salt": signing.TimestampSigner().sign_object(value, compress=True),
        "TimestampSigner, another salt": signing.TimestampSigner(salt="customers").sign_object(
            value, compress=True
        ),
        "Signer, no salt": signing.Signer().sign_object(value, compress=True),
        "signing.dumps, the salt as a prefix": signing.dumps(value, salt=SALT[:-1]),
    }


def test_the_portals_own_token_opens_it(client, acme):
    # The same payload signed by the portal: what the others must not pass for.
    token = signing.dumps(payload(acme), salt=SALT, compress=True)

    assert portal_customer_id(token=token, now=NOW) == acme.pk
    with time_machine.travel(NOW, tick=False):
        assert client.get(f"/portal/{token}/").status_code == 200


def test_a_value_signed_for_another_purpose_does_not_open_a_portal(client, acme):
    """Rule: the portal token is signed with its own salt."""
    for how, token in signed_elsewhere(acme).items():
        # when / then: the service refuses it as invalid, not as expired
        with pytest.raises(PortalTokenInvalid):
            portal_customer_id(token=token, now=NOW)
        # and the page is a 403 that names no one
        with time_machine.travel(NOW, tick=False):
            response = client.get(f"/portal/{token}/")
        assert response.status_code == 403, how
        assert "Acme" not in response.content.decode(), how


def test_a_portal_token_is_no_value_signed_with_the_default_salt(acme):
    """Rule, the other way round: a portal token does not read as a value Django
    signed with the default salt."""
    token = portal_session_create(customer=acme, now=NOW).token

    with pytest.raises(signing.BadSignature):
        signing.loads(token)

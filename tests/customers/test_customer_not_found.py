"""A customer-scoped endpoint asked about a customer that does not exist answers 404
naming it (issue 76: "Not found." left a typo in an external_id unexplained), in
the error envelope of every other refusal; and a wallet or commit not found under
a customer that exists is named too."""

import pytest

from tests.factories import CustomerFactory

ENVELOPE = {
    "error": {"type": "not_found", "message": "no customer 'nobody'"},
}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/customers/nobody", None),
        ("patch", "/api/v1/customers/nobody", {"name": "X"}),
        ("get", "/api/v1/customers/nobody/usage", None),
        ("post", "/api/v1/customers/nobody/check", {"meter": "sms", "quantity": "1"}),
        ("post", "/api/v1/customers/nobody/check", {"meter": "sms", "quantity": "-1"}),
        ("post", "/api/v1/customers/nobody/check", {"feature": "sso"}),
        ("get", "/api/v1/customers/nobody/entitlements", None),
        ("get", "/api/v1/customers/nobody/wallets", None),
        ("get", "/api/v1/customers/nobody/wallets/credits/ledger", None),
        ("post", "/api/v1/customers/nobody/wallets/money", {"amount": "1.00", "currency": "USD"}),
        ("get", "/api/v1/customers/nobody/commits", None),
        ("get", "/api/v1/customers/nobody/commits/1", None),
        ("post", "/api/v1/customers/nobody/portal-session", None),
        ("post", "/api/v1/customers/nobody/dunning/pause", {}),
    ],
)
def test_an_unknown_customer_is_named_in_the_404(api, db, method, path, body):
    response = getattr(api, method)(path, body, format="json")

    assert response.status_code == 404, response.content
    assert response.json() == ENVELOPE


def test_a_wallet_or_commit_the_customer_lacks_is_named(api, db):
    CustomerFactory(external_id="acme")

    wallet = api.get("/api/v1/customers/acme/wallets/money/ledger?currency=EUR")
    commit = api.get("/api/v1/customers/acme/commits/7")

    assert (wallet.status_code, wallet.json()["error"]["message"]) == (
        404,
        "customer 'acme' has no EUR money wallet",
    )
    assert (commit.status_code, commit.json()["error"]["message"]) == (
        404,
        "customer 'acme' has no commit 7",
    )

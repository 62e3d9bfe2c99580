import hashlib
import hmac
import json
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
import time_machine

from customers.services import customer_create
from invoices.models import Invoice
from invoices.services import invoice_finalize, invoice_write_draft
from plans.rating import LineInput
from tests.factories import period_draft

WEBHOOK_SECRET = "whsec_test_secret"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture
def no_network(monkeypatch):
    """Any connection to another host than this one fails the test."""
    connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in LOOPBACK and not host.startswith("/"):
            raise AssertionError(f"a test tried to reach {address!r}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def fake_stripe(settings, monkeypatch, no_network):
    """Stripe payments on, the real `stripe` library pointed at a fake Stripe on
    127.0.0.1 (tests.invoices.stripe_fake); retries of a call without waiting."""
    from invoices import stripe_client
    from tests.invoices.stripe_fake import FakeStripe

    fake = FakeStripe().start()
    settings.STRIPE_API_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_TIMEOUT_SECONDS = 5
    settings.STRIPE_MAX_NETWORK_RETRIES = 2
    settings.STRIPE_PAYMENT_RETRY_MINUTES = [60, 1440]
    settings.STRIPE_CHECKOUT_SUCCESS_URL = "https://app.example.test/paid"
    settings.STRIPE_CHECKOUT_CANCEL_URL = ""
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    monkeypatch.setattr(stripe_client, "RETRY_DELAY_SECONDS", 0)
    yield fake
    fake.stop()


def signature(payload: str, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header made as Stripe makes it: t=<unix seconds>,
    v1=<hex HMAC-SHA256 of "<t>.<payload>" with the endpoint's secret>."""
    timestamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def stripe_event(event_id: str, event_type: str, obj: dict) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
    )


@pytest.fixture
def deliver(client):
    """POST a Stripe event to /webhooks/stripe/, signed (or with the header given)."""

    def post(payload: str, header: str | None = None):
        return client.post(
            "/webhooks/stripe/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature(payload) if header is None else header,
        )

    return post


@pytest.fixture(scope="module")
def _catalog_once(module_transaction):
    from tests.wallets.support import build_catalog

    return module_transaction.once(build_catalog, "catalog")


@pytest.fixture
def catalog(_catalog_once, db):
    """tests.wallets.support.build_catalog: runner (2 credits a run), prepaid
    (0.0000025 a gpt-4o input token, drawn from money), pack runs_100 (100 credits
    for 99.00); made once for a module where every test asks (tests/shared_rows.py)."""
    return _catalog_once.for_test()


@pytest.fixture
def acme(catalog):
    """Acme Inc, paying in USD, with the catalog (modules may have their own)."""
    return customer_create(external_id="acme", name="Acme Inc", currency="USD")


@pytest.fixture
def wallets_stay_consistent(db):
    """Every wallet holds its invariant after the test (stored balance = blocks =
    ledger, no jump, never below zero: tests.wallets.support)."""
    yield
    from tests.wallets.support import assert_all_wallets_consistent

    assert_all_wallets_consistent()


DECEMBER_LINES = [
    LineInput("base_fee", "AI Assistant (Dec 2026)", None, D(1), D("29.99"), D("29.99"))
]


def acme_december_invoice(capture) -> Invoice:
    """Acme's December invoice of 29.99, finalized on Dec 2 09:00 with what its
    commit enqueues run by `capture` (django_capture_on_commit_callbacks; with
    Stripe: the charge)."""
    acme = customer_create(
        external_id="acme", name="Acme Inc", currency="USD", email="billing@acme.test"
    )
    draft = invoice_write_draft(
        customer=acme,
        subscription=None,
        reason=Invoice.PERIOD,
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        lines=DECEMBER_LINES,
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    finalized_at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    with time_machine.travel(finalized_at, tick=False), capture(execute=True):
        invoice_finalize(invoice=draft, now=finalized_at)
    return Invoice.objects.get(pk=draft.pk)


NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def base_fee_lines(*amounts: str) -> list[LineInput]:
    return [
        LineInput("base_fee", f"Line {index}", None, D(1), D(amount), D(amount))
        for index, amount in enumerate(amounts, start=1)
    ]


def finalized_invoice(customer, lines: list, *, start=NOV_1, end=DEC_1) -> Invoice:
    """A period invoice of these lines for [start, end), written and finalized at
    its end (not collected)."""
    draft = period_draft(customer, lines, start=start, end=end)
    return invoice_finalize(invoice=draft, now=end, collect=False)


@pytest.fixture
def fonttools_subsets(monkeypatch):
    """WeasyPrint as it runs without libharfbuzz-subset (as on Debian by default):
    fonts subset by fontTools, for which the renderer trims its font. Yields that
    renderer."""
    from weasyprint.pdf import fonts

    from invoices import pdf_renderer

    monkeypatch.setattr(fonts, "harfbuzz_subset", None)
    pdf_renderer.renderer.cache_clear()
    yield pdf_renderer.renderer()
    pdf_renderer.renderer.cache_clear()

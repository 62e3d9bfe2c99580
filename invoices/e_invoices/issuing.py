"""Which documents are e-invoiced, and their EN 16931 form built, written and
validated as they are issued.

An invoice is e-invoiced when its seller opts in (BillingEntity.e_invoicing) and
its customer chose a format (Factur-X, XRechnung or Peppol); a credit note when
the invoice it credits was, in that invoice's format. The finalization checks
the document before it takes a number (invoice_check: a provisional number, the
day of the check, nothing prepaid), so a refused draft keeps its place in no
sequence and numbers stay gapless; once numbered, dated and paid from the
credit balance, the document is written again and validated again
(invoice_issue), and that XML is the one issued. A credit note is built and
validated inside its issue: refused, nothing of it is written."""

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

from django.utils.translation import gettext

from common import customer_text, e_invoice_codes
from common.customer_text import CustomerText
from common.errors import Conflict
from customers.e_invoice_details import FACTURX
from invoices.e_invoices.cii import document_cii
from invoices.e_invoices.cius import cius_failures, merged
from invoices.e_invoices.document import (
    CREDIT_NOTE,
    FORMATS,
    INVOICE,
    Document,
    EInvoiceRefused,
    Issue,
    build_document,
)
from invoices.e_invoices.rule_sets import rule_sets
from invoices.e_invoices.ubl import document_ubl
from invoices.e_invoices.validation import (
    CII,
    UBL_CREDIT_NOTE,
    UBL_INVOICE,
    Failure,
    schema_failures,
    validation_failures,
)
from plans.models import Meter, TaxRate

ZERO = Decimal(0)

# What finalization takes afresh from the customer into an e-invoiced draft's
# snapshot (who the buyer is and how it is addressed), and what it keeps as the
# draft was written (what decided its amounts and its language).
KEPT_AS_WRITTEN = ("currency", "tax_exempt", "locale", "timezone")


class EInvoiceInvalid(Conflict):
    """The document's e-invoice fails validation: it is not issued (409). Its
    `failures` (validation.Failure) name each rule, message and field."""

    error_type = "e_invoice_invalid"

    def __init__(
        self,
        failures: list,
        *,
        document: str,
        invoice_id: int | None = None,
        fingerprint: str = "",
    ):
        self.failures = failures
        # The draft it refused (None for a credit note, which has no draft).
        self.invoice_id = invoice_id
        # What the check of the draft depended on (check_fingerprint): kept with
        # the refusal, so the close checks it again only once that changed.
        self.fingerprint = fingerprint
        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(
            f"the e-invoice of {document} fails validation: {first.rule}: {first.message}{more}",
            fields={"e_invoice": [f"{f.rule}: {f.message} [{f.field}]" for f in failures]},
        )

    @property
    def records(self) -> list[dict]:
        return [failure.record() for failure in self.failures]

    @property
    def details(self) -> dict:
        return {"e_invoice_errors": self.records}


class EInvoiceUnchanged(EInvoiceInvalid):
    """A refused draft checked again with nothing its check depends on changed
    (its fingerprint is the refusal's): refused again as it was, not validated."""

    def __init__(self, invoice):
        failures = [
            Failure(
                rule=record.get("rule", ""),
                message=record.get("message", ""),
                field=record.get("field", ""),
                location=record.get("location", ""),
            )
            for record in invoice.e_invoice_errors
        ]
        super().__init__(
            failures,
            document=str(invoice),
            invoice_id=invoice.pk,
            fingerprint=invoice.e_invoice_refused_for,
        )


def e_invoice_profile(*, seller: dict, buyer: dict) -> str:
    """The format a document from `seller` (a seller snapshot) to `buyer` (a
    customer snapshot) is e-invoiced in: the customer's choice when the seller
    opts in; '' when it is not e-invoiced."""
    if not seller.get("e_invoicing"):
        return ""
    chosen = buyer.get("e_invoice_format") or ""
    return chosen if chosen in FORMATS else ""


def buyer_refreshed(written: dict, now: dict) -> dict:
    """An e-invoiced draft's buyer at finalization: the customer as it is `now`
    (its name, address, VAT id, references), but for what decided the draft's
    amounts and language, kept as `written`."""
    kept = {key: written[key] for key in KEPT_AS_WRITTEN if key in written}
    return {**written, **now, **kept}


def xml_of(document: Document) -> tuple[bytes, str]:
    """The document written in its profile's syntax, and the kind it validates as."""
    if document.profile == FACTURX:
        return document_cii(document), CII
    return document_ubl(document), UBL_CREDIT_NOTE if document.is_credit_note else UBL_INVOICE


def checked_xml(
    document: Document, *, name: str, invoice_id: int | None = None, rules: bool = True
) -> bytes:
    """The document's XML, validated; EInvoiceInvalid naming `name` when it fails.
    Without `rules`, against its schema and its profile's own rules only (the
    official Schematron rules ran on the same document before it was numbered:
    issued_as_checked). A rule both the hand-written checks and the official
    ones report is named once, in the hand-written words (cius.merged)."""
    xml, kind = xml_of(document)
    official = validation_failures(xml, kind, document) if rules else schema_failures(xml, kind)
    failures = merged(cius_failures(document), official)
    if failures:
        raise EInvoiceInvalid(failures, document=name, invoice_id=invoice_id)
    return xml


def _units(meters: set[str]) -> dict[str, str]:
    if not meters:
        return {}
    return dict(Meter.objects.filter(code__in=meters).values_list("code", "unit_code"))


def _fee_unit(invoice) -> str:
    subscription = invoice.subscription
    if subscription is None:
        return "C62"
    return getattr(subscription.version, "fee_unit_code", "") or "C62"


def _terms(text: CustomerText, due_at: datetime | None) -> str:
    if due_at is None:
        return ""
    with text.speaking():
        return gettext("Payment due by {day}").format(day=text.day(due_at))


def _invoice_content(invoice, *, profile: str, seller: dict, buyer: dict) -> dict:
    """What build_document takes of an invoice but for its issue (number, days,
    prepaid) and payment terms."""
    lines = list(invoice.lines.all())
    taxes = [
        (line.name, line.percentage, line.tax_rate.vat_category, line.tax_rate.exemption_reason)
        for line in invoice.tax_lines.select_related("tax_rate")
    ]
    # A correction (re-rating) names the invoice it corrects as its preceding invoice (BG-3).
    corrected = invoice.corrects if invoice.corrects_id else None
    preceding = {"preceding": (corrected.number, corrected.finalized_at)} if corrected else {}
    return {
        **preceding,
        "profile": profile,
        "type_code": INVOICE,
        "currency": invoice.currency,
        "seller": seller,
        "buyer": buyer,
        "lines": [
            (
                line.position,
                line.kind,
                line.description,
                line.meter,
                line.quantity,
                line.unit_price,
                line.per,
                line.amount,
                line.period_start,
                line.period_end,
            )
            for line in lines
        ],
        "tax_lines": taxes,
        "units": _units({line.meter for line in lines if line.meter}),
        "fee_unit": _fee_unit(invoice),
        "taxable": invoice.subtotal - invoice.discount,
        "tax": invoice.tax,
        "total": invoice.total,
        "period": invoice.document_period,
        "anchor": invoice.period_anchor,
    }


def invoice_document(
    invoice, *, profile: str, seller: dict, buyer: dict, issue: Issue, content: dict | None = None
) -> Document:
    """The EN 16931 document of an invoice (a draft being finalized). `content`:
    its _invoice_content when already read."""
    content = content or _invoice_content(invoice, profile=profile, seller=seller, buyer=buyer)
    text = CustomerText.of_snapshot(buyer, invoice.currency)
    try:
        return build_document(**content, issue=issue, terms=_terms(text, issue.due_at))
    except EInvoiceRefused as refused:
        raise EInvoiceInvalid(
            refused.failures, document=str(invoice), invoice_id=invoice.pk
        ) from refused


# The code that decides a check's answer: every module of this package, and the
# codes and texts it writes with (common): a refused draft is checked again
# once one of them changes (a release with other rules), as once its content does.
CHECKING_CODE = (
    *sorted(Path(__file__).parent.glob("*.py")),
    Path(e_invoice_codes.__file__),
    Path(customer_text.__file__),
)


@cache
def _checking_code() -> str:
    digest = hashlib.sha256()
    for path in CHECKING_CODE:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _checking_rules() -> list[str]:
    """The rule files a check runs, as pinned: another release of KoSIT's rules
    or of OpenPeppol's (the operator's BILLING_PEPPOL_RULES) checks again."""
    return [f"{rule_set.code}:{rule_set.sha256}" for rule_set in rule_sets()]


def check_fingerprint(content: dict, *, payment_terms: int) -> str:
    """A digest of all a draft's check depends on: the document's content (its
    seller and buyer as the check reads them, its lines, tax rates with their
    VAT categories, amounts, period, format), the customer's payment terms, and
    the checking code itself and the rule files it runs. Equal fingerprints
    check alike (but for the day)."""
    payload = json.dumps(
        [content, payment_terms, _checking_code(), _checking_rules()],
        sort_keys=True,
        default=str,
    ).encode()
    return hashlib.sha256(payload).hexdigest()


def invoice_check(
    invoice, *, seller: dict, buyer: dict, now: datetime, number: str
) -> Document | None:
    """Check a draft's e-invoice before it is numbered: None when it is not
    e-invoiced, else the document checked; EInvoiceInvalid when it fails, with
    the check's fingerprint (check_fingerprint). A draft refused before whose
    fingerprint is the same (Invoice.e_invoice_refused_for) is refused again as
    it was, unchecked (EInvoiceUnchanged): the close tries it once it changed.
    `number`: a provisional number of its sequence's form."""
    profile = e_invoice_profile(seller=seller, buyer=buyer)
    if not profile or not invoice.lines.exists():
        # An invoice without lines (a free plan's start) bills no supply: EN 16931
        # has no form for it (BR-16: at least one line), and none is issued.
        return None
    payment_terms = invoice.customer.payment_terms
    content = _invoice_content(invoice, profile=profile, seller=seller, buyer=buyer)
    fingerprint = check_fingerprint(content, payment_terms=payment_terms)
    if invoice.e_invoice_refused_for == fingerprint and invoice.e_invoice_errors:
        raise EInvoiceUnchanged(invoice)
    due_at = now + timedelta(days=payment_terms)
    issue = Issue(number=number, issued_at=now, due_at=due_at, prepaid=ZERO)
    try:
        document = invoice_document(
            invoice, profile=profile, seller=seller, buyer=buyer, issue=issue, content=content
        )
        checked_xml(document, name=str(invoice), invoice_id=invoice.pk)
    except EInvoiceInvalid as refused:
        refused.fingerprint = fingerprint
        raise
    return document


def issued_as_checked(checked: Document | None, issued: Document) -> bool:
    """Whether `issued` is the document `checked` before it was numbered, but for
    what finalization alone sets: its number (and payment reference), its days
    and what the credit balance paid of it (prepaid and payable, BR-CO-16 holding
    by construction). Its Schematron rules then need not run again."""
    if checked is None:
        return False
    return (
        replace(
            checked,
            number=issued.number,
            issue_date=issued.issue_date,
            due_date=issued.due_date,
            prepaid=issued.prepaid,
            payable=issued.payable,
            payment=issued.payment,
        )
        == issued
        and replace(checked.payment, reference=issued.payment.reference) == issued.payment
    )


def invoice_issue(invoice, *, profile: str, checked: Document | None = None) -> str:
    """The XML of a just finalized invoice (numbered, dated, its credits
    applied), validated; EInvoiceInvalid when it fails. `checked`: the document
    invoice_check validated before numbering it: when this is that document but
    for its number, days and prepaid amount, only its schema and profile rules
    are checked again (the Schematron is most of a validation's time)."""
    issue = Issue(
        number=invoice.number,
        issued_at=invoice.finalized_at,
        due_at=invoice.due_at,
        prepaid=invoice.credits_applied,
    )
    document = invoice_document(
        invoice,
        profile=profile,
        seller=invoice.seller_snapshot,
        buyer=invoice.customer_snapshot,
        issue=issue,
    )
    again = not issued_as_checked(checked, document)
    xml = checked_xml(document, name=str(invoice), invoice_id=invoice.pk, rules=again)
    return xml.decode("utf-8")


def credit_note_issue_xml(note) -> str:
    """The XML of a credit note being issued (its lines written), validated, in
    its invoice's format; '' when the invoice was not e-invoiced."""
    invoice = note.invoice
    profile = invoice.e_invoice_format
    if not profile:
        return ""
    lines = list(note.lines.select_related("invoice_line"))
    credited = note.document_period
    records = note.tax_lines or []
    categories = {
        rate.code: (rate.vat_category, rate.exemption_reason)
        for rate in TaxRate.objects.filter(code__in=[record["code"] for record in records])
    }
    taxes = [
        (
            record["name"],
            Decimal(record["percentage"]),
            *categories.get(record["code"], ("S", "")),
        )
        for record in records
    ]
    buyer = invoice.customer_snapshot
    text = CustomerText.of_snapshot(buyer, note.currency)
    with text.speaking():
        terms = gettext("Credits invoice {number}").format(number=invoice.number)
    try:
        document = build_document(
            profile=profile,
            type_code=CREDIT_NOTE,
            issue=Issue(number=note.number, issued_at=note.created_at, due_at=None, prepaid=ZERO),
            currency=note.currency,
            seller=note.seller_snapshot,
            buyer=buyer,
            lines=[
                (
                    line.position,
                    line.invoice_line.kind,
                    line.description,
                    line.invoice_line.meter,
                    Decimal(1),
                    None,
                    Decimal(1),
                    line.amount,
                    line.period_start,
                    line.period_end,
                )
                for line in lines
            ],
            tax_lines=taxes,
            units={},
            fee_unit="C62",
            taxable=note.subtotal,
            tax=note.tax,
            total=note.total,
            # BG-14: what its lines credit
            period=None if credited[0] is None else credited,
            anchor=invoice.period_anchor,
            preceding=(invoice.number, invoice.finalized_at),
            terms=terms,
        )
    except EInvoiceRefused as refused:
        raise EInvoiceInvalid(refused.failures, document=f"credit note {note.number}") from refused
    return checked_xml(document, name=f"credit note {note.number}").decode("utf-8")

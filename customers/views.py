"""The customer portal: server-rendered pages behind a signed, expiring link. No
login, no external assets; a customer sees only its own data, and a tampered or
expired link gets 403 or 410 and reveals nothing."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext, pgettext_lazy
from django.views.decorators.http import require_GET

from billing.coupon_rule import running_discount
from billing.usage.alerts import alert_thresholds
from billing.usage.customer_limits import limits_save
from common import customer_text
from common.customer_text import LANGUAGES, CustomerText
from common.errors import InvalidRequest
from customers import models as standings
from customers.limits import limits_stored
from customers.limits_form import LimitsForms
from customers.models import Customer, CustomerLimitChange
from customers.portal import (
    PortalTokenExpired,
    PortalTokenInvalid,
    portal_overview,
)
from customers.portal_chart import chart_context
from customers.portal_limits import limits_section, meter_choices
from customers.portal_links import PortalAccess, PortalLinkRevoked, portal_access
from invoices.credit_balance import credit_balance
from invoices.e_invoice_delivery import (
    UBL_FORMATS,
    credit_note_e_invoice_response,
    invoice_e_invoice_response,
)
from invoices.models import CreditNote, Invoice
from invoices.pay_links import pay_path
from invoices.pdf import STATUS_LABELS
from invoices.rendering import credit_note_pdf_response, invoice_pdf_response
from invoices.selectors import past_due
from invoices.standing import owed_invoices
from plans.feature_text import value_text
from wallets.models import CreditBlock, Wallet
from wallets.selectors import blocks_usable

HEADERS = {
    # The token is in the path: never send it on as a referrer, never cache the page.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


class _Denied(Exception):
    def __init__(self, status: int, reason: str = "", customer: Customer | None = None):
        self.status = status
        self.reason = reason
        self.customer = customer


# What each invoice is for, as the portal's invoice list says it.
INVOICE_REASONS = {
    Invoice.START: gettext_lazy("Subscription start"),
    Invoice.PERIOD: pgettext_lazy("what an invoice is for", "Period"),
    Invoice.PLAN_CHANGE: gettext_lazy("Plan change"),
    Invoice.CANCEL: gettext_lazy("Cancellation"),
    Invoice.PURCHASE: gettext_lazy("Purchase"),
    Invoice.THRESHOLD: gettext_lazy("Usage threshold reached"),
    Invoice.COMMIT: gettext_lazy("Commit"),
    Invoice.COMMIT_TRUE_UP: gettext_lazy("Commit true-up"),
}
# A draft in the invoice list: written, not numbered nor issued yet (its PDF
# and number come when it is finalized).
UPCOMING = gettext_lazy("Upcoming, not yet issued")
PAST_DUE = gettext_lazy("Past due")
# An issued invoice as its customer reads it: open (something left to pay, not
# yet due), past due, paid or void; never the back office's "Finalized".
OPEN = pgettext_lazy("invoice status", "Open")

# The language the portal is read in: the customer's (its locale), unless the
# reader chose another with the page's switch (?lang=fr). The choice is kept in
# a cookie for the portal's paths, so a new link opened later in the same
# browser reads the same; the signed token in the path is never touched.
LANGUAGE_PARAMETER = "lang"
LANGUAGE_COOKIE = "portal_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


def _chosen_language(request) -> str | None:
    """The language the reader chose (the switch, else its cookie); None for
    none or one the portal is not written in."""
    for chosen in (request.GET.get(LANGUAGE_PARAMETER), request.COOKIES.get(LANGUAGE_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    return None


def _remember_language(request, response: HttpResponse) -> HttpResponse:
    chosen = request.GET.get(LANGUAGE_PARAMETER)
    if chosen in LANGUAGES and chosen != request.COOKIES.get(LANGUAGE_COOKIE):
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=LANGUAGE_COOKIE_AGE,
            path="/portal/",
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
    return response


def _switch(current: str) -> list[dict]:
    """The language switch: each language in its own name, the page's marked."""
    return [
        {"code": code, "name": name, "current": code == current, "query": f"?lang={code}"}
        for code, name in LANGUAGES.items()
    ]


def _opened(token: str) -> tuple[Customer, PortalAccess]:
    """The customer a token opens, and how (a session, or a stored link that may
    manage the limits). A revoked link is refused as an expired one (410)."""
    try:
        access = portal_access(token=token, now=datetime.now(UTC))
    except PortalTokenExpired as exc:
        raise _Denied(410) from exc
    except PortalLinkRevoked as exc:
        customer = Customer.objects.filter(pk=exc.customer_id).first()
        raise _Denied(410, "revoked", customer) from exc
    except PortalTokenInvalid as exc:
        raise _Denied(403) from exc
    customer = Customer.objects.filter(pk=access.customer_id).first()
    if customer is None:
        raise _Denied(403)
    return customer, access


def _customer(token: str) -> Customer:
    return _opened(token)[0]


def _denied(
    request, status: int, customer: Customer | None = None, reason: str = ""
) -> HttpResponse:
    """The refusal, in the reader's chosen language, else the customer's (a
    document not found), else English (a link that opens no customer)."""
    locale = _chosen_language(request) or (customer.locale if customer else None)
    with customer_text.speaking(locale):
        response = render(
            request, "portal/denied.html", {"status": status, "reason": reason}, status=status
        )
    for name, value in HEADERS.items():
        response[name] = value
    return response


def _discount(subscription, write: CustomerText) -> dict | None:
    """The coupon discounting the subscription's period invoices, and for how long."""
    discount = running_discount(subscription) if subscription is not None else None
    if discount is None:
        return None
    coupon = discount.coupon
    if coupon.percent_off is not None:
        off = write.percent(coupon.percent_off)
    else:
        off = write.money_text(coupon.amount_off, coupon.currency)
    return {"name": coupon.name, "off": off, "periods_left": discount.periods_left}


def _feature_value(value) -> str | None:
    """A granted feature's value as the portal prints it (none for a plain yes)."""
    if value is True:
        return None
    if isinstance(value, list | tuple) and not value:
        return _("none")
    return value_text(value)


def _writer(request, customer: Customer) -> CustomerText:
    """The page's writer: its numbers, dates and words in the language read (the
    customer's, or the one chosen), the customer's zone."""
    write = CustomerText.of_customer(customer)
    return replace(write, locale=_chosen_language(request) or write.locale)


def _page(request, customer, access, *, token, write, now, forms=None, status=200):
    with write.speaking():
        context = _portal_context(customer, token=token, write=write, now=now)
        context["limits"] = limits_section(
            customer, write=write, now=now, manage=access.manage, forms=forms
        )
        context["limits_saved"] = request.GET.get("saved") if status == 200 else None
        response = render(request, "portal/portal.html", context, status=status)
    for name, value in HEADERS.items():
        response[name] = value
    if access.manage:
        # The limits form posts back here: a browser sends "Origin: null" under
        # no-referrer, which CSRF refuses. The token still never leaves the site.
        response["Referrer-Policy"] = "same-origin"
    return response


@require_GET
def portal_page(request, token: str):
    try:
        customer, access = _opened(token)
    except _Denied as denied:
        return _denied(request, denied.status, denied.customer, reason=denied.reason)
    write = _writer(request, customer)
    response = _page(request, customer, access, token=token, write=write, now=datetime.now(UTC))
    return _remember_language(request, response)


def portal_limits_save(request, token: str):
    """The limits form of a manage link: saved through limits_set under the
    link's holder's name, then back to the page ("saved"); refused, the page
    again with the errors on their fields, nothing changed. A read-only link
    (a session, or a link without `manage`) is refused (403), nothing changed.
    The link is read first: a bad one answers as on the page, whatever the method."""
    try:
        customer, access = _opened(token)
    except _Denied as denied:
        return _denied(request, denied.status, denied.customer, reason=denied.reason)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not access.manage:
        return _denied(request, 403, customer, reason="read_only")
    now = datetime.now(UTC)
    write = _writer(request, customer)
    with write.speaking():
        forms = LimitsForms(
            request.POST,
            stored=limits_stored(customer),
            currency=customer.currency,
            meters=meter_choices(customer),
            language=write.locale,
        )
        change = None
        if forms.is_valid():
            try:
                change = limits_save(
                    customer=customer,
                    document=forms.document(),
                    by=access.holder,
                    via=CustomerLimitChange.VIA_PORTAL,
                    now=now,
                )
            except InvalidRequest as refusal:
                forms.refused(refusal)
        if not forms.errors_any:
            saved = "1" if change is not None else "0"
            url = reverse("portal", args=[token]) + f"?saved={saved}#limits"
            return HttpResponseRedirect(url)
    return _page(
        request, customer, access, token=token, write=write, now=now, forms=forms, status=400
    )


def _expiring_credits(wallet, *, write: CustomerText, now) -> list[str]:
    """The credits of a wallet that expire, block by block in draw order, with
    the moment they expire in the customer's zone: '300 rolled-over credits,
    expire 30 Nov 2026, 10:00 Europe/Paris'."""
    if wallet.kind != Wallet.CREDITS:
        return []
    texts = []
    for block in blocks_usable(wallet=wallet, now=now).exclude(expires_at=None):
        words = (
            _("{credits} rolled-over credits, expire {moment}")
            if block.source == CreditBlock.ROLLOVER
            else _("{credits} credits, expire {moment}")
        )
        texts.append(
            words.format(
                credits=write.quantity(block.remaining), moment=write.day_time(block.expires_at)
            )
        )
    return texts


def _commit(draw, write: CustomerText, currency: str) -> dict | None:
    """The commit as the portal prints it: what is available (postpaid: still to
    reach), drawn (counted) this period, and each rollover with its last day."""
    if draw is None:
        return None
    return {
        "prepaid": draw.terms.prepaid,
        "available": write.money(draw.available, currency),
        "drawn": write.money(draw.taken_this_period, currency),
        "rollover": [
            _("{amount} rolled over, usable until {day}").format(
                amount=write.money(amount, currency),
                day=write.day(write.last_day(access.available_from, access.expires_at)),
            )
            for amount, access in draw.rollover()
        ],
    }


def _holds(seen, write: CustomerText) -> list[str]:
    """The holds as the portal prints them: the runs in progress (their usage held),
    and by why, the period's runs not charged."""
    if seen is None:
        return []
    why = {
        "failed": pgettext("run", "failed"),
        "cancelled": pgettext("run", "cancelled"),
        "expired": pgettext("run", "expired"),
    }
    lines = []
    if seen.open:
        count = len(seen.open)
        lines.append(
            ngettext(
                "{count} run in progress: its usage is held",
                "{count} runs in progress: their usage is held",
                count,
            ).format(count=write.quantity(count))
        )
        # What they keep back of the balances (billing.usage.held: the one reading).
        for currency, amount in sorted(seen.money.items()):
            lines.append(
                _("{amount} of your balance is held for them").format(
                    amount=write.money_text(amount, currency)
                )
            )
        if seen.credits:
            lines.append(
                _("{credits} credits of your balance are held for them").format(
                    credits=write.quantity(seen.credits)
                )
            )
    for reason, count in sorted(seen.not_charged.items()):
        lines.append(
            ngettext(
                "{count} run not charged: {why}", "{count} runs not charged: {why}", count
            ).format(count=write.quantity(count), why=why.get(reason, reason))
        )
    return lines


STANDING_WORDS = {
    standings.PAST_DUE: gettext_lazy("Your account is past due"),
    standings.RESTRICTED: gettext_lazy(
        "Your account is restricted: metered usage is refused until what is past due is paid."
    ),
    standings.SUSPENDED: gettext_lazy("Your account is suspended until what is past due is paid."),
}


def _owing(customer: Customer, owed: set, *, write: CustomerText, day, now) -> dict | None:
    """What the customer owes past its due date, and where to pay it; None in
    good standing."""
    if customer.standing not in STANDING_WORDS:
        return None
    late = owed_invoices(customer=customer, due_at__lte=now).order_by("due_at", "id")
    return {
        "standing": customer.standing,
        "words": str(STANDING_WORDS[customer.standing]),
        "invoices": [
            {
                "text": _("Invoice %(number)s: %(amount)s, due %(date)s")
                % {
                    "number": invoice.number,
                    "amount": write.money_text(invoice.amount_due, invoice.currency),
                    "date": day(invoice, invoice.due_at),
                },
                "pay_url": pay_path(invoice_id=invoice.pk, now=now),
            }
            for invoice in late
        ],
    }


def _portal_context(customer: Customer, *, token: str, write: CustomerText, now) -> dict:
    """What the portal page prints, every figure and day written by `write`
    (call it under the page's language): its period's figures, its balances, its
    documents."""
    overview = portal_overview(customer=customer, now=now)
    # The period's figures, as /usage reads them (the period statement's).
    usage = overview.usage
    summary = usage.summary if usage else None
    statement = summary.statement if summary else None
    currency = customer.currency
    documents = _DocumentText(customer, write=write, now=now)
    balance = credit_balance(customer)

    def money(amount):
        return None if amount is None else write.money(amount, currency)

    return {
        "customer": customer,
        "token": token,
        "currency": currency,
        "overview": overview,
        "language": write.locale,
        "languages": _switch(write.locale),
        "plan": overview.subscription.version.plan.name if overview.subscription else None,
        "zone": str(write.zone),
        "period": write.named(write.dates(usage.start, usage.end)) if usage else None,
        # The day an immediate plan change started the usage the table shows.
        "usage_since": write.day(overview.usage_since) if overview.usage_since else None,
        "features": _features(overview.features, customer, write, money),
        "discount": _discount(overview.subscription, write),
        "features_granted": [
            {"name": name, "value": _feature_value(value)}
            for name, value in overview.features_granted
        ],
        "subtotal": money(statement.subtotal) if statement else None,
        "invoiced": money(statement.issued) if statement and statement.issued else None,
        "upcoming": money(statement.to_be_invoiced)
        if statement and statement.to_be_invoiced
        else None,
        "projected_total": money(summary.projected.total) if summary else None,
        "projected_after_discount": money(usage.projected_after_discount)
        if summary and summary.projected.discount
        else None,
        "wallets": _wallets(overview, write, now),
        "commit": _commit(statement.commit if statement else None, write, currency),
        "holds": _holds(usage.holds if usage else None, write),
        "charts": [chart_context(c) for c in overview.charts],
        "invoices": [documents.invoice(i) for i in overview.invoices],
        "owing": _owing(customer, documents.owed, write=write, day=documents.day, now=now),
        "credit_notes": [
            documents.credit_note(i, note)
            for i in overview.invoices
            for note in i.credit_notes.all()
        ],
        "credit_balance": write.money_text(balance, currency) if balance else None,
    }


def _features(features, customer: Customer, write: CustomerText, money) -> list[dict]:
    """The usage table's rows: each metered feature's usage, what it is billed,
    and the alert thresholds it has passed ("50%, 75%"), counted as the alerts
    count them (billing.usage.alerts.alert_thresholds)."""
    thresholds = alert_thresholds(customer)

    def passed(f) -> list[str]:
        over = [p for p in thresholds if f.included and f.quantity * 100 >= f.included * p]
        return [write.percent(p) for p in over]

    return [
        {
            "name": f.name,
            "meter": f.meter,
            "model": f.model,
            "quantity": write.quantity(f.quantity),
            "included": None if f.included is None else write.quantity(f.included),
            "amount": money(f.amount),
            "uncovered": None if f.uncovered is None else write.quantity(f.uncovered),
            "uncovered_billed": f.uncovered_billed,
            "percent": f.percent,
            "percent_text": None if f.percent is None else write.percent(Decimal(f.percent)),
            "over": f.included is not None and f.quantity > f.included,
            "thresholds": passed(f),
            "breakdown_property": f.breakdown_property,
            "breakdown": [
                {"label": label, "quantity": write.quantity(quantity)}
                for _, label, quantity in f.breakdown
            ],
            "rates": [
                {
                    "label": write.rate_group(values),
                    "quantity": write.quantity(quantity),
                    "amount": money(amount),
                }
                for values, quantity, amount in f.rates
            ],
        }
        for f in features
    ]


def _wallets(overview, write: CustomerText, now) -> list[dict]:
    """The balances: each wallet's, what of it pays for some meters only, and the
    credits about to expire."""

    def amount(wallet, value):
        if wallet.kind == "money":
            return write.money_text(value, wallet.currency)
        return _("{credits} credits").format(credits=write.quantity(value))

    return [
        {
            "kind": w.kind,
            "currency": w.currency,
            "balance": amount(w, w.balance),
            "scoped": [
                {"meters": ", ".join(meters), "balance": amount(w, left)}
                for meters, left in overview.scoped.get(w.pk, ())
            ],
            "expiring": _expiring_credits(w, write=write, now=now),
        }
        for w in overview.wallets
    ]


class _DocumentText:
    """The portal's invoices and credit notes as it lists them: each day and
    period in the zone the invoice was issued in (its PDF's), that zone named when
    it is not the page's, and each invoice's status and where to pay it."""

    def __init__(self, customer: Customer, *, write: CustomerText, now):
        self.write = write
        self.now = now
        invoices = Invoice.objects.filter(customer=customer)
        self.overdue = set(past_due(invoices, now=now).values_list("pk", flat=True))
        self.owed = set(owed_invoices(customer=customer).values_list("pk", flat=True))

    def _as_issued(self, invoice, text: str) -> str:
        if invoice.text.zone == self.write.zone:
            return text
        return replace(self.write, zone=invoice.text.zone).named(text)

    def day(self, invoice, moment) -> str:
        """A day of the invoice (or of a note on it), as its PDF says it."""
        if moment is None:
            return ""
        return self._as_issued(invoice, replace(self.write, zone=invoice.text.zone).day(moment))

    def status(self, invoice) -> str:
        """Upcoming (a draft), Void, Paid; else Past due (invoices.selectors.past_due,
        or an uncollectible invoice still owed: it was due), Open while something is
        left to pay, and Paid once nothing is (credited or paid from the balance)."""
        if invoice.status == Invoice.DRAFT:
            return str(UPCOMING)
        if invoice.status in (Invoice.VOID, Invoice.PAID):
            return str(STATUS_LABELS[invoice.status])
        if invoice.pk in self.overdue or (
            invoice.status == Invoice.UNCOLLECTIBLE and invoice.pk in self.owed
        ):
            return str(PAST_DUE)
        if invoice.amount_due > 0:
            return str(OPEN)
        return str(STATUS_LABELS[Invoice.PAID])

    def invoice(self, i) -> dict:
        write = self.write
        issued = replace(write, zone=i.text.zone)
        return {
            "id": i.pk,
            "number": i.number or "",
            "draft": i.status == Invoice.DRAFT,
            "date": self.day(i, i.finalized_at),
            "due": self.day(i, i.due_at),
            "period": self._as_issued(i, i.document_dates(issued)),
            "total": write.money(i.total, i.currency),
            "amount_due": write.money(i.amount_due, i.currency),
            "currency": i.currency,
            "status": self.status(i),
            "reason": str(INVOICE_REASONS.get(i.reason, i.get_reason_display())),
            # Where to pay what is left of it (its payment page).
            "pay_url": pay_path(invoice_id=i.pk, now=self.now) if i.pk in self.owed else "",
            # An XML e-invoice, a download beside the PDF (a Factur-X one is the PDF).
            "e_invoice": i.e_invoice_format in UBL_FORMATS and bool(i.e_invoice_xml),
        }

    def credit_note(self, i, note) -> dict:
        return {
            "id": note.pk,
            "number": note.number,
            "date": self.day(i, note.created_at),
            "invoice": i.number,
            "total": self.write.money(note.total, note.currency),
            "currency": note.currency,
            "e_invoice": note.e_invoice_format in UBL_FORMATS and bool(note.e_invoice_xml),
        }


def _portal_download(request, token: str, documents, respond):
    """A document of the portal's customer as a download: `documents(customer)`
    finds it (None: 404), `respond(document)` answers it."""
    try:
        customer = _customer(token)
    except _Denied as denied:
        return _denied(request, denied.status, denied.customer, reason=denied.reason)
    document = documents(customer)
    if document is None:
        return _denied(request, 404, customer)
    return respond(document)


def _issued_invoices(customer):
    """The customer's invoices it may download: those issued (not drafts)."""
    return (
        Invoice.objects.filter(customer=customer)
        .exclude(status=Invoice.DRAFT)
        .select_related("customer")
    )


def _credit_notes(customer):
    return CreditNote.objects.filter(customer=customer).select_related("invoice", "customer")


def _e_invoiced(documents):
    """Those of `documents` issued with an e-invoice."""
    return documents.exclude(e_invoice_format="").exclude(e_invoice_xml="")


@require_GET
def portal_invoice_pdf(request, token: str, invoice_id: int):
    return _portal_download(
        request,
        token,
        lambda customer: _issued_invoices(customer).filter(pk=invoice_id).first(),
        lambda invoice: invoice_pdf_response(
            invoice=invoice, now=datetime.now(UTC), headers=HEADERS
        ),
    )


@require_GET
def portal_credit_note_pdf(request, token: str, credit_note_id: int):
    return _portal_download(
        request,
        token,
        lambda customer: _credit_notes(customer).filter(pk=credit_note_id).first(),
        lambda note: credit_note_pdf_response(
            credit_note=note, now=datetime.now(UTC), headers=HEADERS
        ),
    )


@require_GET
def portal_invoice_e_invoice(request, token: str, invoice_id: int):
    """The e-invoice of one of the customer's issued invoices (its XML; a Factur-X
    one's PDF); 404 for one without."""
    return _portal_download(
        request,
        token,
        lambda customer: _e_invoiced(_issued_invoices(customer)).filter(pk=invoice_id).first(),
        lambda invoice: invoice_e_invoice_response(
            invoice=invoice, now=datetime.now(UTC), headers=HEADERS
        ),
    )


@require_GET
def portal_credit_note_e_invoice(request, token: str, credit_note_id: int):
    """portal_invoice_e_invoice for a credit note."""
    return _portal_download(
        request,
        token,
        lambda customer: _e_invoiced(_credit_notes(customer)).filter(pk=credit_note_id).first(),
        lambda note: credit_note_e_invoice_response(
            credit_note=note, now=datetime.now(UTC), headers=HEADERS
        ),
    )

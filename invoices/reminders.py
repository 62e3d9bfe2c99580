"""The words of a dunning reminder (invoices.dunning): its subject and its body,
written as its invoice is (Invoice.text: the customer's language and time zone
saved with it), so the days match the PDF attached. The body says what is due
and by when (or since when), and how to pay: the invoice's pay link (Stripe
Checkout when Stripe is configured), and the seller's bank details otherwise."""

from datetime import datetime

from django.utils.translation import gettext as _

from invoices import pay_links, stripe_client
from invoices.models import Invoice
from invoices.sellers import invoice_seller


def reminder_subject(invoice: Invoice, *, overdue: bool) -> str:
    with invoice.text.speaking():
        if overdue:
            return _("Overdue: invoice %(number)s from %(seller)s") % {
                "number": invoice.number,
                "seller": invoice_seller(invoice)["name"],
            }
        return _("Reminder: invoice %(number)s from %(seller)s is due soon") % {
            "number": invoice.number,
            "seller": invoice_seller(invoice)["name"],
        }


def _bank_lines(seller: dict) -> list[str]:
    bank = seller.get("bank") or {}
    lines = []
    if bank.get("iban"):
        lines.append(_("Bank transfer to %(name)s") % {"name": seller["name"]})
        if bank.get("bank_name"):
            lines.append(_("Bank: %(bank)s") % {"bank": bank["bank_name"]})
        lines.append(_("IBAN: %(iban)s") % {"iban": bank["iban"]})
        if bank.get("bic"):
            lines.append(_("BIC: %(bic)s") % {"bic": bank["bic"]})
    if seller.get("payment_instructions"):
        lines.append(seller["payment_instructions"])
    return lines


def reminder_body(invoice: Invoice, *, overdue: bool, now: datetime) -> str:
    write = invoice.text
    seller = invoice_seller(invoice)
    due = write.money_text(invoice.amount_due)
    with write.speaking():
        values = {"number": invoice.number, "amount": due, "date": write.day(invoice.due_at)}
        lines = [_("Hello %(name)s,") % {"name": invoice.customer.name}, ""]
        if overdue:
            lines.append(
                _("Invoice %(number)s of %(amount)s was due on %(date)s and is still unpaid.")
                % values
            )
        else:
            lines.append(_("Invoice %(number)s of %(amount)s is due on %(date)s.") % values)
        lines.append(_("The invoice is attached."))
        lines += [
            "",
            _("Pay it here: %(url)s") % {"url": pay_links.pay_url(invoice_id=invoice.pk, now=now)},
        ]
        if not stripe_client.enabled():
            bank = _bank_lines(seller)
            if bank:
                lines += [
                    "",
                    _("Or by bank transfer, with the invoice number as reference:"),
                    *bank,
                ]
        if overdue:
            lines += [
                "",
                _(
                    "If the invoice stays unpaid, your access to the service may be "
                    "restricted. If you have paid already, thank you, and please ignore "
                    "this message."
                ),
            ]
        lines += ["", _("Kind regards,"), seller["name"]]
    return "\n".join(lines) + "\n"

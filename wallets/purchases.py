"""Purchases of credit packs and money top-ups: granted at once (paid by hand),
or ordered and granted when Stripe reports them paid (purchase_fulfil, through
invoices.reactions); auto top-ups. A credit note on a purchase invoice (a void's
too) takes back what it credits of what was sold: wallets.take_back."""

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from common import aborts, customer_text
from common.customer_text import money_text
from common.errors import InvalidRequest
from common.money import quantize_money
from common.vocabulary import LineKind
from customers.models import Customer
from invoices import checkout as stripe_checkout
from invoices import collection
from invoices.models import Invoice, Purchase
from invoices.services import invoice_create_purchase
from plans.meter_scope import meter_scope_checked
from plans.models import CreditPack, TaxRate
from plans.rating import LineInput
from wallets.alerts import alert_period_bounds, auto_top_up_alert_raise
from wallets.ledger import (
    add_block,
    check_minor_digits,
    positive,
    wallet_get_or_create,
)
from wallets.locks import purchase_lock, wallet_lock
from wallets.models import AutoTopUp, CreditBlock, LedgerEntry, Wallet

ZERO = Decimal(0)
# Tries of a sale the database aborts (a deadlock): it rolled back whole (nothing
# granted, no number taken), so trying again sells once; the buyer waits a little
# longer instead of a 503. Inside a caller's transaction the abort is the caller's.
SALE_TRIES = 3


def _pack_line(customer: Customer, pack: CreditPack, credits: Decimal, price: Decimal) -> LineInput:
    """The invoice line of a pack sold at `price`, in the customer's language."""
    with customer_text.speaking(customer.locale):
        description = _("{pack}: {credits} credits").format(
            pack=pack.name or pack.code, credits=customer_text.quantity(credits)
        )
    return LineInput(LineKind.CREDIT_PACK, description, None, Decimal(1), price, price)


def _top_up_line(customer: Customer, currency: str, amount: Decimal) -> LineInput:
    """The invoice line of a money top-up, in the customer's language."""
    with customer_text.speaking(customer.locale):
        description = _("Prepaid balance top-up ({currency})").format(currency=currency)
    return LineInput(LineKind.TOP_UP, description, None, Decimal(1), amount, amount)


def _check_pack(customer: Customer, pack: CreditPack) -> None:
    pack_name, customer_name = pack.name or pack.code, customer.name or customer.external_id
    if not pack.active:
        raise InvalidRequest(
            f"credit pack {pack.code!r} is no longer sold",
            fields={"pack": []},
            words=f"{pack_name} is no longer sold: choose an active pack.",
        )
    if str(pack.price.currency) != customer.currency:
        raise InvalidRequest(
            f"credit pack {pack.code!r} is priced in {pack.price.currency}; "
            f"customer {customer.external_id!r} pays in {customer.currency}",
            fields={"pack": ["wrong currency"]},
            words=(
                f"{pack_name} costs {money_text(pack.price.amount, str(pack.price.currency))} "
                f"and {customer_name} pays in {customer.currency}: choose a pack priced "
                f"in {customer.currency}."
            ),
        )


def buy_pack_locked(
    wallet: Wallet, *, customer: Customer, pack: CreditPack, source: str, now: datetime
) -> CreditBlock:
    price = quantize_money(pack.price.amount, customer.currency)
    invoice = invoice_create_purchase(
        customer=customer,
        lines=[_pack_line(customer, pack, pack.credits, price)],
        now=now,
    )
    return add_block(
        wallet,
        entry_kind=LedgerEntry.AUTO_TOP_UP
        if source == CreditBlock.AUTO_TOP_UP
        else LedgerEntry.PURCHASE,
        now=now,
        amount=pack.credits,
        kind=CreditBlock.PAID,
        source=source,
        price_paid=price,
        currency=customer.currency,
        pack=pack,
        invoice=invoice,
        applies_to=pack.applies_to,
    )


def credit_pack_purchase(
    *, customer: Customer, pack: CreditPack, now: datetime
) -> tuple[CreditBlock, Invoice]:
    """Sell a pack: a paid block of its credits and a finalized purchase invoice
    for its price, in one transaction under the credit wallet's lock (tried again
    when the database aborts it: SALE_TRIES)."""
    _check_pack(customer, pack)

    def sell() -> CreditBlock:
        with transaction.atomic():
            wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
            return buy_pack_locked(
                wallet, customer=customer, pack=pack, source=CreditBlock.PACK, now=now
            )

    block = aborts.retried_when_aborted(sell, what="a pack sale", attempts=SALE_TRIES)
    return block, block.invoice


def _check_top_up(customer: Customer, amount: Decimal, currency: str) -> Decimal:
    amount = positive("amount", amount)
    if currency != customer.currency:
        raise InvalidRequest(
            f"customer {customer.external_id!r} pays in {customer.currency}, not {currency}",
            fields={"currency": [f"must be {customer.currency}"]},
            words=(
                f"{customer.name or customer.external_id} pays in {customer.currency}: "
                f"top up their {customer.currency} wallet instead of one in {currency}."
            ),
        )
    check_minor_digits("amount", amount, currency)
    return amount


def money_top_up(
    *,
    customer: Customer,
    amount: Decimal,
    currency: str,
    applies_to: list[str] | None = None,
    now: datetime,
) -> tuple[CreditBlock, Invoice]:
    """Add prepaid money to the customer's money wallet, invoiced at once, in one
    transaction (tried again when the database aborts it: SALE_TRIES).
    `applies_to`: the meters the money pays for (none: every meter)."""
    amount = _check_top_up(customer, amount, currency)
    applies_to = meter_scope_checked(applies_to or [])

    def top_up() -> CreditBlock:
        with transaction.atomic():
            wallet = wallet_lock(
                wallet_get_or_create(customer=customer, kind=Wallet.MONEY, currency=currency)
            )
            invoice = invoice_create_purchase(
                customer=customer,
                lines=[_top_up_line(customer, currency, amount)],
                now=now,
            )
            return add_block(
                wallet,
                entry_kind=LedgerEntry.TOP_UP,
                now=now,
                amount=amount,
                kind=CreditBlock.PAID,
                source=CreditBlock.TOP_UP,
                price_paid=amount,
                currency=currency,
                invoice=invoice,
                applies_to=applies_to,
            )

    block = aborts.retried_when_aborted(top_up, what="a money top-up", attempts=SALE_TRIES)
    return block, block.invoice


def paid_through_stripe(amount: Decimal) -> bool:
    """Whether a sale of this price is paid through Stripe before it is granted:
    with STRIPE_API_KEY set, and something to pay."""
    return collection.enabled() and amount.is_finite() and amount > 0


def _checkout_urls(success_url: str, cancel_url: str) -> tuple[str, str]:
    success_url = success_url or settings.STRIPE_CHECKOUT_SUCCESS_URL
    if not success_url:
        raise InvalidRequest(
            "a Checkout purchase needs a success_url (or the STRIPE_CHECKOUT_SUCCESS_URL setting)",
            fields={"success_url": ["required"]},
        )
    return success_url, cancel_url or settings.STRIPE_CHECKOUT_CANCEL_URL


def _order(
    *,
    customer: Customer,
    kind: str,
    checkout: bool,
    success_url: str,
    cancel_url: str,
    now: datetime,
    **details,
) -> Purchase:
    if not collection.enabled():
        raise InvalidRequest(
            "paying through Stripe needs STRIPE_API_KEY; without it purchases are invoiced",
            fields={"checkout": ["Stripe payments are not configured"]},
        )
    urls = _checkout_urls(success_url, cancel_url) if checkout else None
    with transaction.atomic():
        purchase = stripe_checkout.purchase_create(
            customer=customer,
            kind=kind,
            channel=Purchase.CHECKOUT if checkout else Purchase.CHARGE,
            now=now,
            **details,
        )
    if urls is not None:
        # After the commit: a call to Stripe never runs inside a transaction.
        purchase = stripe_checkout.purchase_checkout_open(
            purchase=purchase, success_url=urls[0], cancel_url=urls[1], now=now
        )
    return purchase


def credit_pack_order(
    *,
    customer: Customer,
    pack: CreditPack,
    checkout: bool,
    success_url: str = "",
    cancel_url: str = "",
    now: datetime,
) -> Purchase:
    """Sell a pack through Stripe: a pending purchase at the pack's price now,
    paid on a Checkout page (`checkout`: the purchase carries its URL) or charged
    to the saved payment method by a worker after commit. Nothing is granted
    here: purchase_fulfil grants the credits when the payment succeeds. Opening
    the Checkout Session calls Stripe: not inside a transaction."""
    _check_pack(customer, pack)
    return _order(
        customer=customer,
        kind=Purchase.CREDIT_PACK,
        checkout=checkout,
        success_url=success_url,
        cancel_url=cancel_url,
        now=now,
        pack=pack,
        credits=pack.credits,
        applies_to=pack.applies_to,
        amount=quantize_money(pack.price.amount, customer.currency),
    )


def money_top_up_order(
    *,
    customer: Customer,
    amount: Decimal,
    currency: str,
    checkout: bool,
    success_url: str = "",
    cancel_url: str = "",
    applies_to: list[str] | None = None,
    now: datetime,
) -> Purchase:
    """A money top-up through Stripe, as credit_pack_order sells a pack: the
    balance grows when the payment succeeds (for the meters of `applies_to`)."""
    amount = _check_top_up(customer, amount, currency)
    applies_to = meter_scope_checked(applies_to or [])
    return _order(
        customer=customer,
        kind=Purchase.TOP_UP,
        checkout=checkout,
        success_url=success_url,
        cancel_url=cancel_url,
        now=now,
        amount=amount,
        applies_to=applies_to,
    )


def auto_top_up_request(*, customer: Customer, pack: CreditPack, now: datetime) -> Purchase | None:
    """With Stripe, in the ingest transaction under the credit wallet's lock: ask
    for one auto top-up pack, charged to the saved payment method by a worker
    once the transaction commits (no call to Stripe under the lock), granted when
    the charge succeeds, tried again per the retry policy when it fails. One is
    pending at a time per customer (checked under the lock the caller holds, and a
    partial unique constraint): a short balance asks for nothing more until that
    one has succeeded or failed. None when one is pending already."""
    if Purchase.objects.filter(
        customer=customer, channel=Purchase.AUTO_TOP_UP, status=Purchase.PENDING
    ).exists():
        return None
    try:
        with transaction.atomic():
            return stripe_checkout.purchase_create(
                customer=customer,
                kind=Purchase.CREDIT_PACK,
                channel=Purchase.AUTO_TOP_UP,
                pack=pack,
                credits=pack.credits,
                applies_to=pack.applies_to,
                amount=quantize_money(pack.price.amount, customer.currency),
                now=now,
            )
    except IntegrityError:
        return None


def purchase_fulfil(*, purchase: Purchase, reference: str, now: datetime) -> CreditBlock:
    """Grant what a purchase paid through Stripe buys, once: a paid block of its
    credits (or money) at the price recorded when it was ordered, and its
    purchase invoice, finalized and paid with `reference` (the Stripe payment).
    Under the wallet's lock, then the purchase's; a purchase granted already
    returns its block. Called by invoices.collection when the payment succeeds,
    whatever the purchase's status was by then: money received is granted. An
    auto top-up raises the auto_top_up alert.

    Usage that arrived while the payment was pending stays uncovered: the grant
    pays for what comes after it."""
    money = purchase.kind == Purchase.TOP_UP
    currency = purchase.currency
    with transaction.atomic():
        wallet = wallet_lock(
            wallet_get_or_create(
                customer=purchase.customer,
                kind=Wallet.MONEY if money else Wallet.CREDITS,
                currency=currency if money else "",
            )
        )
        purchase = purchase_lock(purchase.pk)
        if purchase.block_id is not None:
            return purchase.block
        customer, amount = purchase.customer, purchase.amount
        if money:
            line = _top_up_line(customer, currency, amount)
            entry_kind, source, granted = LedgerEntry.TOP_UP, CreditBlock.TOP_UP, amount
        else:
            line = _pack_line(customer, purchase.pack, purchase.credits, amount)
            automatic = purchase.channel == Purchase.AUTO_TOP_UP
            entry_kind = LedgerEntry.AUTO_TOP_UP if automatic else LedgerEntry.PURCHASE
            source = CreditBlock.AUTO_TOP_UP if automatic else CreditBlock.PACK
            granted = purchase.credits
        invoice = invoice_create_purchase(
            customer=customer,
            lines=[line],
            now=now,
            paid_reference=reference,
            tax_rates=list(TaxRate.objects.filter(code__in=purchase.tax_rate_codes)),
        )
        block = add_block(
            wallet,
            entry_kind=entry_kind,
            now=now,
            amount=granted,
            kind=CreditBlock.PAID,
            source=source,
            price_paid=amount,
            currency=currency,
            pack=purchase.pack,
            invoice=invoice,
            applies_to=purchase.applies_to,
        )
        purchase.status = Purchase.PAID
        purchase.paid_at = now
        purchase.closed_at = None
        purchase.block = block
        purchase.invoice = invoice
        purchase.save(update_fields=["status", "paid_at", "closed_at", "block", "invoice"])
        if source == CreditBlock.AUTO_TOP_UP:
            auto_top_up_alert_raise(
                block=block,
                wallet=wallet,
                customer=customer,
                period=alert_period_bounds(customer, now),
                now=now,
            )
    return block


def auto_top_up_set(
    *, customer: Customer, enabled: bool, threshold: Decimal, pack: CreditPack
) -> AutoTopUp:
    """Turn auto top-up on or off for the customer's credit wallet. Turning it off
    is always possible, also when its pack is no longer sold."""
    if not isinstance(threshold, Decimal) or not threshold.is_finite() or threshold < 0:
        raise InvalidRequest("threshold must be a number >= 0", fields={"threshold": [">= 0"]})
    if enabled:
        _check_pack(customer, pack)
    with transaction.atomic():
        wallet = wallet_lock(wallet_get_or_create(customer=customer, kind=Wallet.CREDITS))
        setting, _ = AutoTopUp.objects.update_or_create(
            wallet=wallet, defaults={"enabled": enabled, "threshold": threshold, "pack": pack}
        )
    return setting

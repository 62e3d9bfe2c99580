"""Wallet alerts: a balance at or below its low balance threshold, and a pack
bought by auto top-up. Raised through billing.notifications.alerts, once per
period, with the period in the customer's time zone like every alert."""

from datetime import datetime
from decimal import Decimal

from billing.models import Alert, Subscription
from billing.notifications import alerts
from common.money import format_decimal, format_money
from customers.models import Customer
from wallets.models import CreditBlock, Wallet

ZERO = Decimal(0)


def alert_period_bounds(customer: Customer, now: datetime) -> tuple[datetime, datetime]:
    """The current period [start, end) of the customer's live subscription (alerts
    belong to one), or the instant `now` for a customer without one."""
    period = (
        Subscription.objects.filter(customer=customer, status__in=Subscription.LIVE)
        .order_by("-current_period_start")
        .values_list("current_period_start", "current_period_end")
        .first()
    )
    return period or (now, now)


def _amount(wallet: Wallet, value: Decimal) -> str:
    # Money as money ("0.00"), credits as a plain number (as the API writes them).
    if wallet.kind == Wallet.MONEY:
        return format_money(value, wallet.currency)
    return format_decimal(value)


def low_balance_alert_raise(
    *, wallet: Wallet, customer: Customer, period: tuple[datetime, datetime], now: datetime
) -> Alert | None:
    """Raise the `low_balance` alert when the wallet's balance is at or below its
    threshold (zero when it sets none): once per period and threshold. Its data:
    the wallet's kind and currency (None for credits), the balance and the
    threshold, and the period. None when the balance is above it or the alert
    fired already."""
    threshold = ZERO if wallet.low_balance_threshold is None else wallet.low_balance_threshold
    if wallet.balance > threshold:
        return None
    name = wallet.kind if wallet.kind == Wallet.CREDITS else f"money:{wallet.currency}"
    start, end = period
    return alerts.alert_raise(
        customer=customer,
        kind=Alert.LOW_BALANCE,
        period_start=start,
        key=f"{name}:{format_decimal(threshold)}",
        payload=alerts.alert_payload(
            customer=customer,
            period_start=start,
            period_end=end,
            wallet=wallet.kind,
            currency=wallet.currency or None,
            balance=_amount(wallet, wallet.balance),
            threshold=_amount(wallet, threshold),
        ),
        now=now,
    )


def auto_top_up_alert_raise(
    *,
    block: CreditBlock,
    wallet: Wallet,
    customer: Customer,
    period: tuple[datetime, datetime],
    now: datetime,
) -> Alert | None:
    """Raise the `auto_top_up` alert of the pack an auto top-up granted (`block`),
    once: the pack, its credits, the price paid and its invoice, the credit
    wallet's balance after it, and the period. Raised whether the pack was paid by
    hand at ingestion (wallets.drawdown) or through Stripe (wallets.purchases)."""
    start, end = period
    return alerts.alert_raise(
        customer=customer,
        kind=Alert.AUTO_TOP_UP,
        period_start=start,
        key=f"block:{block.pk}",
        payload=alerts.alert_payload(
            customer=customer,
            period_start=start,
            period_end=end,
            pack=block.pack.code,
            credits=format_decimal(block.amount),
            price=format_money(block.price_paid, block.currency),
            currency=block.currency,
            invoice=block.invoice.number,
            balance=format_decimal(wallet.balance),
        ),
        now=now,
    )

"""Row locks on subscriptions and what belongs to them, in one place.

The order, whenever a transaction takes several locks: the customer
(customers.locks), its subscription, a coupon it redeems (plans.locks), the
subscription's billed periods, the invoices it writes (invoices.locks), then
wallets (wallets.locks); several rows of one table in primary-key order. Bulk
migrations lock their migration, then one item, then that item's subscription.

A customer's row is taken before any of its invoices', its wallets' and a
numbering sequence's (invoices.sequences: the invoice and credit note numbers,
one row a year shared by every customer), never while holding one of them: a
credit note (a void's too) locks the customer first, whatever the invoice
(invoices.credit_notes.credit_note_locks); finalizing locks the customers whose
credit balance it will touch before their drafts and the sequence
(invoices.services), and so a threshold invoice's writer, which finalizes under
its subscription's lock, locks the customer before the subscription
(billing.invoicing.progressive), as signing a prepaid commit does
(wallets.commits). A sale locks its wallet, then takes an invoice number, and never
the customer. Taken the other way round, a note on a purchase (customer,
wallet, invoice, then the note sequence) and a note paid back to the credit
balance (invoice, note sequence, then customer) deadlocked on PostgreSQL, as did
a finalizing (sequence, then customer), a sale (wallet, then sequence) and a note
on a purchase (customer, then wallet), and a void of a threshold invoice
(customer, then subscription) with the next one's writer, or with a prepaid commit's
signing (subscription, then customer): tests/invoices/test_lock_order_concurrency.py.

A numbering sequence comes after all of those: past it, a transaction locks only
rows it holds already or writes. As it commits, each row it wrote takes a key
share of the rows it refers to (deferred foreign keys), its customers' among
them, after the sequence; so no path holds a customer's row FOR UPDATE
(customer_lock is FOR NO KEY UPDATE, which no key share waits for, and a lock
that joins the customer takes its own row only: `of=("self",)`). A sale whose
wallet lock locked the customer too waited for the number a close's finalization
held, while that finalization's commit waited for the customer
(tests/invoices/test_purchases_beside_a_close.py)."""

from datetime import datetime
from functools import lru_cache

from django.db import connection

from billing.models import (
    BilledPeriod,
    ChannelMessage,
    PlanMigration,
    PlanMigrationItem,
    Subscription,
    WebhookDelivery,
)
from common import rawsql


def subscription_lock(subscription_id: int) -> Subscription:
    """Lock one subscription (not the rows it joins) and return it fresh, with its
    customer, version and scheduled version (and their plans) loaded. Fixed SQL
    (common.rawsql): the close takes this lock once per period."""
    found = subscriptions_lock([subscription_id])
    if not found:
        raise Subscription.DoesNotExist(f"no subscription {subscription_id}")
    return found[0]


def subscriptions_lock(subscription_ids: list[int]) -> list[Subscription]:
    """Lock these subscriptions in one statement, in id order, and return those
    that exist, in that order, loaded as subscription_lock loads one (the close
    locks a group of them for one transaction)."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return []
    sql, parts, columns = _subscription_lock_sql(connection.vendor, len(ids))
    return [_loaded(values, parts) for values in rawsql.rows(sql, ids, columns)]


def _loaded(values: tuple, parts: tuple) -> Subscription:
    """A subscription and what its lock joins, from one row of the lock's SELECT."""
    loaded = []
    for part in parts:
        taken, values = values[: len(part)], values[len(part) :]
        loaded.append(rawsql.instance(part, taken) if taken[0] is not None else None)
    subscription, customer, version, plan, scheduled, scheduled_plan = loaded
    version.plan = plan
    if scheduled is not None:
        scheduled.plan = scheduled_plan
    subscription.customer = customer
    subscription.version = version
    subscription.scheduled_version = scheduled
    return subscription


@lru_cache(maxsize=64)
def _subscription_lock_sql(vendor: str, count: int) -> tuple[str, tuple, tuple]:
    """The SELECT of subscriptions_lock for `count` ids, the fields of its
    columns model by model (the subscription, its customer, version, plan,
    scheduled version and its plan), and those fields in one tuple."""
    del vendor  # part of the cache key: the lock clause differs per backend
    from plans.models import Plan, PlanVersion

    subscription = Subscription._meta
    joins = (
        ("s", Subscription, ""),
        (
            "c",
            subscription.get_field("customer").related_model,
            "JOIN {t} c ON c.id = s.customer_id",
        ),
        ("v", PlanVersion, "JOIN {t} v ON v.id = s.version_id"),
        ("p", Plan, "JOIN {t} p ON p.id = v.plan_id"),
        ("sv", PlanVersion, "LEFT JOIN {t} sv ON sv.id = s.scheduled_version_id"),
        ("sp", Plan, "LEFT JOIN {t} sp ON sp.id = sv.plan_id"),
    )
    quote = connection.ops.quote_name
    parts, columns, tables = [], [], []
    for alias, model, join in joins:
        fields = tuple(model._meta.concrete_fields)
        parts.append(fields)
        columns += [f"{alias}.{quote(field.column)}" for field in fields]
        if join:
            tables.append(join.format(t=quote(model._meta.db_table)))
    # FOR NO KEY UPDATE, as the customer's lock (customers.locks): it excludes every
    # other holder of the lock, and no key share waits for it. A finalization
    # committing an invoice of the subscription it updated twice checks the
    # invoice's keys again (a key share of the subscription): under FOR UPDATE it
    # deadlocked with a cancel holding the subscription and waiting for that draft,
    # the start invoice whose unused time it credits
    # (tests/invoices/test_lock_order_concurrency.py).
    lock = " FOR NO KEY UPDATE OF s" if connection.features.has_select_for_update_of else ""
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(subscription.db_table)} s "  # noqa: S608 (names from the models; the id is a parameter)
        f"{' '.join(tables)} WHERE s.id IN ({', '.join(['%s'] * count)}) ORDER BY s.id{lock}"
    )
    return sql, tuple(parts), tuple(f for part in parts for f in part)


def billed_periods_lock(
    *, subscription: Subscription, ended_after: datetime, ended_by: datetime
) -> list[BilledPeriod]:
    """Lock the subscription's billed periods that ended in (ended_after, ended_by].
    Locked by fixed SQL, loaded only when there are any (the close asks for
    every period's late usage)."""
    found = rawsql.ids(
        "SELECT id FROM billing_billedperiod WHERE subscription_id = %s "  # noqa: S608 (a fixed clause)
        "AND period_end <= %s AND period_end > %s ORDER BY id" + rawsql.lock_clause(),
        [subscription.pk, ended_by, ended_after],
    )
    if not found:
        return []
    return list(
        BilledPeriod.objects.filter(pk__in=found).select_related("version__plan").order_by("pk")
    )


def plan_migration_lock(migration_id: int) -> PlanMigration:
    return PlanMigration.objects.select_for_update().get(pk=migration_id)


def plan_migration_item_lock(item_id: int) -> PlanMigrationItem:
    return PlanMigrationItem.objects.select_for_update().get(pk=item_id)


def channel_message_claim(message_id: int) -> ChannelMessage | None:
    """Lock a pending channel message unless another worker holds it (then None)."""
    return (
        ChannelMessage.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer")
        .filter(pk=message_id, status=ChannelMessage.PENDING)
        .first()
    )


def webhook_delivery_claim(delivery_id: int) -> WebhookDelivery | None:
    """Lock a pending delivery unless another worker holds it (then None)."""
    return (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("endpoint")
        .filter(pk=delivery_id, status=WebhookDelivery.PENDING)
        .first()
    )

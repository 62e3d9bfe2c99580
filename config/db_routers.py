"""Where the ORM reads and writes when read replicas are set (DATABASE_REPLICA_URLS,
docs/scaling.md): everything on the primary ("default"), except the reads of a
request that config.replica_reads let read from a replica, named in `reading_from`.

Those reads go to the replica only for the billing apps' models, never for Django's
own (sessions, users, django-axes' lockouts, the admin's log, content types) nor the
API keys: a session or key made a moment ago must be found by the next request. A read
inside a transaction of the primary, or after the request wrote anything, reads the
primary (what the request just wrote, or locked, is there). Writes, migrations and
tests are the primary's: a replica's aliases mirror it in tests (TEST MIRROR).

What a request or task wrote for a customer is noted (`written`) so that the
customer's reads stay on the primary for a while after it (config.replica_reads)."""

from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections

# The replica the current request reads from; None: the primary.
reading_from: ContextVar[str | None] = ContextVar("reading_from", default=None)
# The customers (ids) the current request or task wrote for, while one notes them.
written: ContextVar[set[int] | None] = ContextVar("written", default=None)

REPLICA_APPS = frozenset({"billing", "customers", "invoices", "plans", "wallets"})
PRIMARY_ONLY_MODELS = frozenset({"customers.apikey"})


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        alias = reading_from.get()
        if (
            alias is None
            or model._meta.app_label not in REPLICA_APPS
            or model._meta.label_lower in PRIMARY_ONLY_MODELS
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model, **hints):
        # What this request reads next may be what it writes now: from the primary.
        reading_from.set(None)
        customers = written.get()
        if customers is not None:
            customer = _customer_of(hints.get("instance"))
            if customer is not None:
                customers.add(customer)
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # A replica holds the primary's rows: objects read from either relate.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


def _customer_of(instance) -> int | None:
    """The customer a saved or deleted row belongs to: itself, or its customer_id."""
    if instance is None:
        return None
    if instance._meta.label_lower == "customers.customer":
        return instance.pk
    return getattr(instance, "customer_id", None)
